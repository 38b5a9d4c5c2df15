"""Errors as types, each with a stable code. No HTTP here: the functions that answer
HTTP map them to statuses in one place (sluice.core.http_api); the store function
only needs to know a dependency is down."""

from __future__ import annotations


class SluiceError(Exception):
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class EventRejected(SluiceError):
    """The request or one event in it is malformed; nothing of it is stored."""

    code = "invalid_event"


class EventBlocked(EventRejected):
    """An event its app's policies refuse (a broken rule, an unplanned name): not stored."""

    def __init__(self, message: str, *, code: str, errors: list | None = None) -> None:
        super().__init__(message, code=code)
        self.errors = errors or []


class RequestRejected(SluiceError):
    """An accounts request that is malformed or breaks a rule (a weak password, a bad address)."""

    code = "invalid_request"


class ChallengeFailed(SluiceError):
    """A mailed code or token that does not work: wrong, expired, used, or tried too often.

    The code says which; none of them says whether an account is behind the challenge.
    """

    code = "invalid_code"


class AlreadyRegistered(SluiceError):
    """A verified code for an address that meanwhile got an account (two registrations raced).

    Only the holder of the mailbox can see this, so it reveals nothing to anyone else.
    """

    code = "already_registered"


class RateLimited(SluiceError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(RateLimited):
    """A code or token tried too often: it never works again. Answered like every other
    throttle (429, Retry-After), the wait being until a new one may be asked for."""

    code = "too_many_attempts"


class Unauthorized(SluiceError):
    code = "unauthorized"


class AppNotFound(SluiceError):
    code = "app_not_found"


class NotFound(SluiceError):
    """An id the caller cannot see: unknown, deleted, or another account's (never a 403)."""

    code = "not_found"


class PayloadTooLarge(SluiceError):
    code = "payload_too_large"


class ServiceUnavailable(SluiceError):
    """A dependency (the queue, the database) cannot be reached; the client may retry."""

    code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"


class ConfigurationError(Exception):
    """The function's environment is incomplete or wrong: fail at cold start, loudly."""
