"""What the HTTP functions (ingest, accounts, manage) share: the request body as bytes,
JSON answers, and domain errors as HTTP statuses (the one mapping)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

import orjson
from aws_lambda_powertools.event_handler import Response

from sluice.core.errors import (
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
from sluice.core.exact_json import check_exact, dumps
from sluice.core.observability import logger

if TYPE_CHECKING:  # the data_classes package is large: not imported at cold start for a type
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

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


def request_body(event: APIGatewayProxyEventV2) -> bytes:
    """The body's bytes as the client sent them; whether they are UTF-8 is for the parser to say.

    (Powertools' decoded_body decodes base64 and then UTF-8, failing on the second.)
    """
    if event.is_base64_encoded:
        return base64.b64decode(event.body or "")
    # surrogatepass: a lone surrogate that reached us in the event's text becomes
    # bytes that orjson refuses with a 400, not an encoding error here.
    return (event.body or "").encode("utf-8", "surrogatepass")


def json_object(raw: bytes, limit: int, *names: str, exact: bool = False) -> dict[str, Any]:
    """The JSON object in a body of at most `limit` bytes; 413 or 400 otherwise.

    `exact`, for a body saved as it is (a rule): a number orjson would not keep
    exactly (past 64 bits, more digits than a double holds) is a 400 `inexact_number`.
    """
    if len(raw) > limit:
        raise PayloadTooLarge(f"The body is over {limit} bytes.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestRejected("The body is not JSON in UTF-8.", code="invalid_json") from None
    if not isinstance(body, dict):
        fields = f" with {', '.join(names)}" if names else ""
        raise RequestRejected(f"The body must be a JSON object{fields}.")
    if exact:
        check_exact(raw, body)
    return body


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """`body` as JSON, stored JSON (JsonText) exactly as read; None is an empty body (204)."""
    return Response(
        status_code=status,
        content_type="application/json",
        body=dumps(body).decode() if body is not None else "",
        headers=headers,
    )


def error_response(
    error: SluiceError,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """`{"error", "message"}` at the error's status; a 5xx is logged (4xx are the client's).

    Every throttle (RateLimited) answers alike: 429, `Retry-After` and `retry_after`.
    """
    status = http_status(error)
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after), **(headers or {})}
        extra = {"retry_after": error.retry_after, **(extra or {})}
    if status >= 500:
        logger.warning("request failed", error=error.code)
    return json_response(
        status, {"error": error.code, "message": error.message, **(extra or {})}, headers
    )
