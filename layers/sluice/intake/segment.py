"""Segment's Tracking API (which RudderStack serves too): its messages as Sluice's events.

What the analytics libraries send (facts from their source, issue 23) and how each
message becomes an event of the one events table:

- A message is stored as sent (its `payload`), with what the request gave it: a
  batch's top-level `context` (merged under the message's own keys), `integrations`
  and `sentAt`; the call type of a single-message route as `type`; a `userId` or
  `anonymousId` sent as a number as its string; a generated `messageId` when it has
  none (or null).
- Its event name: `event` for a track call; the call type (identify, page, screen,
  group, alias) for the others. So rules, policies, the events list's `event_name`
  filter and the stats treat each call type as one event name: a rule named
  `identify` checks every identify call.
- Its times: the client's `timestamp` (or `originalTimestamp`) is the stored
  client_timestamp (Segment's originalTimestamp), `sentAt` the sent_at, and
  occurred_at is Segment's corrected timestamp, receivedAt - (sentAt - originalTimestamp).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sluice.core.errors import EventRejected
from sluice.intake.incoming_events import (
    MAX_EVENT_NAME_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    Envelope,
    check_storable,
    read_time,
)

# Decompressed: rudder-sdk-python batches up to 4 MB and drops a batch refused with a 4xx.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
CALL_TYPES = ("track", "identify", "page", "screen", "group", "alias")
# The path after /v1/: the call type it carries, None for a batch. analytics-next uses
# one letter per call; `import` is the batch route's legacy name.
ROUTES: dict[str, str | None] = {
    **{call: call for call in CALL_TYPES},
    **{call[0]: call for call in CALL_TYPES},
    "batch": None,
    "import": None,
    "b": None,
}
_SHARED = ("context", "integrations", "sentAt")


def write_key_in_body(document: Any) -> str | None:
    """The `writeKey` field the segment libraries also send, when it is a non-empty string."""
    if isinstance(document, dict):
        key = document.get("writeKey")
        if isinstance(key, str) and key.strip():
            return key.strip()
    return None


def messages(document: Any, call_type: str | None, message_id: Callable[[int], str]) -> list[Any]:
    """The request's messages, each as it is stored; items that are not objects as they are.

    `call_type` is the route's (None: a batch, `{"batch": [...]}`); `message_id(i)`
    names the `i`th message when it has no messageId, the same name each time asked.
    """
    if call_type is not None:
        if not isinstance(document, dict):
            raise EventRejected(
                "The body must be a JSON object: one Segment message.", code="not_an_object"
            )
        return [_normalised(document, {}, call_type, lambda: message_id(0))]
    if not isinstance(document, dict) or not isinstance(document.get("batch"), list):
        raise EventRejected(
            'A batch must be a JSON object {"batch": [...messages]}.', code="invalid_batch"
        )
    shared = {key: document[key] for key in _SHARED if document.get(key) is not None}
    return [
        _normalised(item, shared, None, lambda i=index: message_id(i))
        for index, item in enumerate(document["batch"])
    ]


def _normalised(
    item: Any, shared: dict[str, Any], call_type: str | None, message_id: Callable[[], str]
) -> Any:
    if not isinstance(item, dict):
        return item
    message = dict(item)
    for key, value in shared.items():
        own = message.get(key)
        if own is None:
            message[key] = value
        elif key == "context" and isinstance(own, dict) and isinstance(value, dict):
            message[key] = {**value, **own}
    if call_type is not None:
        message["type"] = call_type
    for key in ("userId", "anonymousId"):
        value = message.get(key)
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            message[key] = str(value)
    if message.get("messageId") is None:
        message["messageId"] = message_id()
    return message


def read_message(message: Any, *, check_nul: bool = True, check_depth: bool = True) -> Envelope:
    """Checks a normalised message (`messages`) and returns its envelope; EventRejected if bad."""
    if not isinstance(message, dict):
        raise EventRejected("A Segment message must be a JSON object.", code="not_an_object")
    call_type = message.get("type")
    if call_type not in CALL_TYPES:
        raise EventRejected(f"type must be one of {', '.join(CALL_TYPES)}.", code="invalid_type")
    if not (_identifier(message, "userId") or _identifier(message, "anonymousId")):
        raise EventRejected(
            "Every call needs a userId or an anonymousId (a non-empty string or a number).",
            code="missing_user",
        )
    if call_type == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_EVENT_NAME_LENGTH:
            raise EventRejected(
                f"A track call needs an event: a non-empty string of at most"
                f" {MAX_EVENT_NAME_LENGTH} characters.",
                code="invalid_event_name",
            )
    else:
        name = call_type
    if call_type == "group" and not _identifier(message, "groupId"):
        raise EventRejected("A group call needs a groupId.", code="missing_group_id")
    if call_type == "alias" and not (
        _identifier(message, "previousId") and _identifier(message, "userId")
    ):
        raise EventRejected(
            "An alias call needs a previousId and a userId.", code="missing_previous_id"
        )
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        raise EventRejected(
            f"messageId must be a string of 1 to {MAX_MESSAGE_ID_LENGTH} characters;"
            " leave it out for one to be made.",
            code="invalid_message_id",
        )
    check_storable(message, check_nul=check_nul, check_depth=check_depth)
    client_time = "timestamp" if message.get("timestamp") is not None else "originalTimestamp"
    return Envelope(
        event_name=name,
        message_id=message_id,
        client_timestamp=_time(message, client_time),
        sent_at=_time(message, "sentAt"),
    )


def _identifier(message: dict[str, Any], key: str) -> bool:
    """True when `key` holds an id: a non-empty string (numbers were made strings).

    null, like absence, is none; any other kind of value is refused.
    """
    value = message.get(key)
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return True  # groupId and previousId may be numbers too
    raise EventRejected(f"{key} must be a string or a number.", code="invalid_id")


def _time(message: dict[str, Any], key: str):
    # The libraries send null for times they do not know: that is none, not an error.
    return None if message.get(key) is None else read_time(message, key)
