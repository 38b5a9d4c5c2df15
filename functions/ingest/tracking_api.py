"""The HTTP side of Segment's Tracking API (/v1/...): the write key, the body, the answers.

Answers are what the libraries need (FACTS in issue 23): success is exactly 200 with
`{"success": true}` (rudder-sdk-python resends a batch on any other 2xx), and every
error body carries `code` and `message` (rudder-sdk-python crashes without them).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Mapping

from aws_lambda_powertools.event_handler import Response
from sluice.core.errors import EventRejected, PayloadTooLarge, SluiceError, Unauthorized
from sluice.core.http_api import http_status, json_response
from sluice.core.observability import logger
from sluice.intake.ingest import BatchOutcome
from sluice.intake.keys import api_key_from_headers
from sluice.intake.segment import MAX_REQUEST_BYTES

UNAUTHORIZED = (
    "A valid write key (an API key of the app) is required: HTTP Basic auth with the key"
    " as the user name and an empty password, or writeKey in the body."
)
# Seconds a client that honours Retry-After (the segment libraries) waits after a 503.
RETRY_AFTER_SECONDS = 5


def write_key(headers: Mapping[str, str]) -> str | None:
    """The key in `Authorization: Basic base64(key:)`, or as ingest's other routes take it."""
    authorization = headers.get("authorization", "").strip()
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return api_key_from_headers(headers)
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized(UNAUTHORIZED) from None
    key = decoded.partition(":")[0].strip()
    if not key:
        raise Unauthorized(UNAUTHORIZED)
    return key


def decoded_body(raw: bytes, headers: Mapping[str, str]) -> bytes:
    """The body, inflated when it is gzip; never more than MAX_REQUEST_BYTES inflated."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise EventRejected(
            "Content-Encoding may be gzip or none.", code="unsupported_content_encoding"
        )
    return inflate(raw, MAX_REQUEST_BYTES)


def inflate(data: bytes, limit: int) -> bytes:
    """gzip's members inflated, up to `limit` bytes: a bomb costs at most that much memory."""
    inflated = bytearray()
    while True:
        stream = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            inflated += stream.decompress(data, limit + 1 - len(inflated))
        except zlib.error:
            raise _bad_gzip() from None
        if len(inflated) > limit:
            raise PayloadTooLarge(
                f"A request may be at most {limit} bytes once inflated.", code="request_too_large"
            )
        if not stream.eof:
            raise _bad_gzip()  # cut short
        data = stream.unused_data
        if not data:
            return bytes(inflated)


def _bad_gzip() -> EventRejected:
    return EventRejected("The body is not complete, valid gzip.", code="invalid_gzip")


def success(batch: BatchOutcome) -> Response:
    """200 `{"success": true}` with counts; 503 when an event could not be queued.

    A 503 is resent whole by every library, and messageId dedup stores nothing twice.
    A batch whose every message was refused is a 400: nothing in it can ever be stored.
    """
    if batch.count("failed"):
        return json_response(
            503,
            {
                "success": False,
                "code": "queue_unavailable",
                "error": "queue_unavailable",
                "message": "Not every message could be queued; resend the request.",
            },
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    rejected = [
        {"index": o.index, "code": o.error.code, "message": o.error.message}
        for o in batch.outcomes
        if o.status == "rejected" and o.error is not None
    ]
    counts = {
        "accepted": batch.count("valid"),
        "invalid": batch.count("invalid"),
        "rejected": len(rejected),
    }
    if not batch.queued:
        return json_response(
            400,
            {
                "success": False,
                "code": "invalid_batch",
                "error": "invalid_batch",
                "message": "Every message in the batch was refused; see rejections.",
                **counts,
                "rejections": rejected,
            },
        )
    body: dict[str, object] = {"success": True, **counts}
    if rejected:
        body["rejections"] = rejected
    return json_response(200, body)


def log_rejected(batch: BatchOutcome) -> None:
    """What the owner sees of refused messages (the client's answer lists them too)."""
    rejected = [o for o in batch.outcomes if o.status == "rejected" and o.error is not None]
    if rejected:
        logger.info(
            "messages rejected",
            codes=sorted({o.error.code for o in rejected if o.error is not None}),
            indexes=[o.index for o in rejected][:100],
        )


def error(error: SluiceError) -> Response:
    status = http_status(error)
    message = UNAUTHORIZED if isinstance(error, Unauthorized) else error.message
    body = {"success": False, "code": error.code, "error": error.code, "message": message}
    if error.code == "validation_failed" and getattr(error, "errors", None):
        body["errors"] = error.errors  # type: ignore[attr-defined]
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return json_response(status, body, headers)
