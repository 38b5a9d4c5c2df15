"""Errors as types. Each knows its HTTP status and stable code; each HTTP handler
maps them to responses in one place."""

from __future__ import annotations


class SluiceError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class EventRejected(SluiceError):
    """The request or one event in it is malformed; nothing of it is stored."""

    status = 400
    code = "invalid_event"


class EventBlocked(EventRejected):
    """An event its app's policies refuse (a broken rule, an unplanned name): not stored."""

    status = 422

    def __init__(self, message: str, *, code: str, errors: list | None = None) -> None:
        super().__init__(message, code=code)
        self.errors = errors or []


class RequestRejected(SluiceError):
    """An accounts request that is malformed or breaks a rule (a weak password, a bad address)."""

    status = 400
    code = "invalid_request"


class ChallengeFailed(SluiceError):
    """A mailed code or token that does not work: wrong, expired, used, or tried too often.

    The code says which; none of them says whether an account is behind the challenge.
    """

    status = 400
    code = "invalid_code"


class AlreadyRegistered(SluiceError):
    """A verified code for an address that meanwhile got an account (two registrations raced).

    Only the holder of the mailbox can see this, so it reveals nothing to anyone else.
    """

    status = 409
    code = "already_registered"


class RateLimited(SluiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(SluiceError):
    status = 401
    code = "unauthorized"


class AppNotFound(SluiceError):
    status = 404
    code = "app_not_found"


class NotFound(SluiceError):
    """An id the caller cannot see: unknown, deleted, or another account's (never a 403)."""

    status = 404
    code = "not_found"


class PayloadTooLarge(SluiceError):
    status = 413
    code = "payload_too_large"


class ServiceUnavailable(SluiceError):
    """A dependency (the queue, the database) cannot be reached; the client may retry."""

    status = 503
    code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class QueueUnavailable(ServiceUnavailable):
    code = "queue_unavailable"


class ConfigurationError(Exception):
    """The function's environment is incomplete or wrong: fail at cold start, loudly."""
