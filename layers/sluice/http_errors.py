"""Domain errors as HTTP statuses: the one mapping the HTTP functions share."""

from __future__ import annotations

from sluice.errors import (
    AlreadyRegistered,
    AppNotFound,
    ChallengeFailed,
    EventBlocked,
    EventRejected,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestRejected,
    ServiceUnavailable,
    SluiceError,
    Unauthorized,
)

# The most specific class an error is an instance of wins (EventBlocked before EventRejected).
_STATUS: dict[type[SluiceError], int] = {
    EventBlocked: 422,
    EventRejected: 400,
    RequestRejected: 400,
    ChallengeFailed: 400,
    Unauthorized: 401,
    AppNotFound: 404,
    NotFound: 404,
    AlreadyRegistered: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    ServiceUnavailable: 503,
}


def http_status(error: SluiceError) -> int:
    for kind in type(error).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 500
