"""What an incoming event is: its envelope, the checks that make it storable, its time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.errors import EventRejected

MAX_EVENT_NAME_LENGTH = 128
MAX_MESSAGE_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class Envelope:
    """The fields Sluice recognises in an event; everything else is the app's."""

    event_name: str
    message_id: str | None
    client_timestamp: datetime | None
    sent_at: datetime | None


def parse_json(body: bytes | str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EventRejected(f"The body is not valid JSON: {exc}.", code="invalid_json") from None


def may_contain_nul(body: bytes) -> bool:
    """False when no string parsed from this JSON body can hold U+0000.

    Strict JSON can only spell it as an escape, so a body without one needs no walk
    through every string of every event.
    """
    return b"\\u0000" in body


def read_envelope(event: Any, *, check_nul: bool = True) -> Envelope:
    """Checks that `event` is an object Sluice can store and returns its envelope."""
    if not isinstance(event, dict):
        raise EventRejected(
            "An event must be a JSON object with an eventName.", code="not_an_object"
        )
    name = event.get("eventName")
    if not isinstance(name, str) or not name.strip():
        raise EventRejected(
            "eventName is required and must be a non-empty string.", code="invalid_event_name"
        )
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise EventRejected(
            f"eventName must be at most {MAX_EVENT_NAME_LENGTH} characters.",
            code="invalid_event_name",
        )
    message_id = event.get("messageId")
    if message_id is not None and (
        not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH
    ):
        raise EventRejected(
            f"messageId must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters.",
            code="invalid_message_id",
        )
    if check_nul and contains_nul(event):
        raise EventRejected(
            "The event contains a \\u0000 character, which cannot be stored; remove it.",
            code="unstorable_value",
        )
    return Envelope(
        event_name=name,
        message_id=message_id,
        client_timestamp=_read_time(event, "timestamp"),
        sent_at=_read_time(event, "sentAt"),
    )


def _read_time(event: dict, field: str) -> datetime | None:
    value = event.get(field)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise EventRejected(
            f"{field} must be an ISO 8601 date-time string, such as 2026-01-31T12:00:00Z.",
            code="invalid_timestamp",
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def contains_nul(value: Any) -> bool:
    """True if any string in `value`, keys included, holds U+0000 (jsonb refuses it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or contains_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def occurred_at(
    received_at: datetime, client_timestamp: datetime | None, sent_at: datetime | None
) -> datetime:
    """When the event happened, on the server's clock.

    With both times from the client, its clock's error cancels out: the event is
    placed `sentAt - timestamp` before it arrived.
    """
    if client_timestamp is None:
        return received_at
    if sent_at is None:
        return client_timestamp
    return received_at - (sent_at - client_timestamp)
