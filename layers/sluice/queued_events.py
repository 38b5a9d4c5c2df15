"""The message that crosses the events queue: one model for producer and consumer.

Ingest serialises QueuedEvent dataclasses with orjson (fast, and no pydantic
import on its cold start); the store function validates the same dataclasses
with pydantic, so a message that does not fit the model fails alone.
Field names are the events table's column names: the store hands message
bodies to Postgres as they are.

Version 2 carries each payload as the client's own JSON text (a string inside
the message), so numbers reach jsonb exactly as they were sent and the store
writes the text without parsing it. Version 1 carried the parsed object; the
store still reads it (messages in flight or in the DLQ across a deploy).

A second kind of message, `{"version": 2, "kind": "rejections", ...}`, carries the
records of a batch's refused items (RejectionsMessage), so their app's owner can list
them: ingest sends it in the same SendMessageBatch as the batch's events. A message
without `kind` is an events message, as every message was before.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from uuid import UUID

import orjson

MESSAGE_VERSION = 2
# SQS bills each 64 KiB of a message as one request: pack events up to that.
MAX_MESSAGE_BYTES = 64 * 1024
# SendMessageBatch takes at most 10 entries and 256 KiB in all.
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024

_HEAD = b'{"version":%d,"events":[' % MESSAGE_VERSION
_TAIL = b"]}"


@dataclass(slots=True)
class ValidationIssue:
    path: str  # JSON Pointer into the event
    message: str
    keyword: str


@dataclass(slots=True)
class QueuedEvent:
    event_id: UUID
    app_id: str
    event_name: str
    payload: str | dict[str, Any]  # JSON text of the event as sent (version 1: the object)
    status: Literal["valid", "invalid"]
    validation_errors: list[ValidationIssue] | None
    message_id: str | None
    client_timestamp: datetime | None
    sent_at: datetime | None
    occurred_at: datetime
    received_at: datetime


@dataclass(slots=True)
class EventsMessage:
    version: Literal[1, 2]
    events: list[QueuedEvent]


# A rejection record's texts are Sluice's own (a code, an error message) and the
# messageId as sent: capped, so a hostile batch cannot make a record large.
MAX_REJECTION_CODE = 64
MAX_REJECTION_MESSAGE = 1_000
MAX_REJECTION_MESSAGE_ID = 200
MAX_REJECTION_ROUTE = 200


@dataclass(slots=True)
class Rejection:
    """One refused item of a batch: where and why, never the item itself."""

    rejection_id: UUID  # makes a redelivered record land once
    app_id: str
    received_at: datetime
    route: str
    index: int
    message_id: str | None
    code: str
    message: str


@dataclass(slots=True)
class RejectionsMessage:
    version: Literal[2]
    kind: Literal["rejections"]
    rejections: list[Rejection]


def capped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, without NUL (a Postgres text refuses it)."""
    return text[:limit].replace("\x00", "\ufffd")


def cleaned(rejection: Rejection) -> Rejection:
    """The record with every text capped and without NUL (ingest makes them so already)."""
    rejection.route = capped(rejection.route, MAX_REJECTION_ROUTE)
    rejection.code = capped(rejection.code, MAX_REJECTION_CODE)
    rejection.message = capped(rejection.message, MAX_REJECTION_MESSAGE)
    rejection.app_id = rejection.app_id.replace("\x00", "\ufffd")
    if rejection.message_id is not None:
        rejection.message_id = capped(rejection.message_id, MAX_REJECTION_MESSAGE_ID)
    return rejection


def serialize_rejections(rejections: list[Rejection]) -> bytes:
    return orjson.dumps(RejectionsMessage(version=2, kind="rejections", rejections=rejections))


def is_rejections(document: object) -> bool:
    """Whether a decoded message body is a rejections message (not an events message)."""
    return isinstance(document, dict) and document.get("kind") == "rejections"


def serialize_event(event: QueuedEvent) -> bytes:
    return orjson.dumps(event)


def pack(serialized_events: Iterable[bytes]) -> Iterator[tuple[bytes, list[int]]]:
    """Packs serialized events into message bodies of at most MAX_MESSAGE_BYTES.

    Yields each body with the positions of the events it holds. An event larger
    than the limit on its own still goes, alone in its message.
    """
    chunk: list[bytes] = []
    positions: list[int] = []
    size = len(_HEAD) + len(_TAIL)
    for position, data in enumerate(serialized_events):
        added = len(data) + (1 if chunk else 0)
        if chunk and size + added > MAX_MESSAGE_BYTES:
            yield _HEAD + b",".join(chunk) + _TAIL, positions
            chunk, positions, size = [], [], len(_HEAD) + len(_TAIL)
            added = len(data)
        chunk.append(data)
        positions.append(position)
        size += added
    if chunk:
        yield _HEAD + b",".join(chunk) + _TAIL, positions


@cache
def _message_adapter():  # pydantic is imported only by consumers
    from pydantic import TypeAdapter

    return TypeAdapter(EventsMessage)


def parse_message(body: str | bytes) -> EventsMessage:
    """Validates a message body; raises pydantic.ValidationError if it does not fit."""
    return _message_adapter().validate_json(body, strict=True)


def parse_events(body: str | bytes) -> list[dict[str, Any]]:
    """The events of a message the model accepts, in their wire form, from one read.

    Raises pydantic.ValidationError when parse_message does, and for a message it
    accepts that would be read again (below) but holds what orjson refuses (NaN,
    1e400; pydantic's JSON reads them): no column can hold those, and writing them
    through orjson would turn them into null. The wire form is
    the fields as the body carries them (times and ids still text): what the store
    writes. The body is read once, against the model with every time and id as text
    (pydantic makes dicts far faster than dataclasses, UUIDs and datetimes); then the
    texts of the times and ids are checked as JSON text, in strict mode (a Python str
    in lax mode would let a date pass as a datetime). A message with a payload as an
    object (version 1) or validation errors is read again with orjson and returned as
    that read gives it, as it always was: its rows stay what they were, to the byte.
    """
    events, checks = _wire_adapter().validate_json(body, strict=True)["events"], _text_checks()
    for names, adapter in checks:
        texts = {text: text for e in events for name in names if (text := e[name]) is not None}
        adapter.validate_strings(texts, strict=True)
    for event in events:
        if event["validation_errors"] is not None or type(event["payload"]) is not str:
            try:
                events = orjson.loads(body)["events"]
            except orjson.JSONDecodeError as exc:
                raise _unwritable(body, exc) from None
            break
    return events


def _unwritable(body: str | bytes, error: orjson.JSONDecodeError) -> Exception:
    from pydantic import ValidationError

    line_error = {"type": "json_invalid", "loc": (), "input": body, "ctx": {"error": str(error)}}
    return ValidationError.from_exception_data("EventsMessage", [line_error])  # type: ignore[list-item]


def _as_text(hint: Any) -> Any:
    """`hint` with datetime and UUID as the text that carries them, dataclasses as dicts."""
    if hint in (datetime, UUID):
        return str
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        from typing_extensions import TypedDict  # pydantic's own, before Python 3.12

        fields = {name: _as_text(field) for name, field in get_type_hints(hint).items()}
        return TypedDict(hint.__name__, fields)  # type: ignore[operator]
    origin, args = get_origin(hint), get_args(hint)
    if not args or origin is Literal:
        return hint
    if origin in (Union, types.UnionType):
        return Union[tuple(_as_text(arg) for arg in args)]  # noqa: UP007
    return origin[tuple(_as_text(arg) for arg in args)]


@cache
def _wire_adapter():
    from pydantic import TypeAdapter

    return TypeAdapter(_as_text(EventsMessage))


@cache
def _text_checks() -> list[tuple[list[str], Any]]:
    """For datetime, then UUID: the event's fields of that type, and a check of texts."""
    from pydantic import TypeAdapter

    hints = get_type_hints(QueuedEvent)
    checks = []
    for kind in (datetime, UUID):
        names = [name for name, hint in hints.items() if kind in (hint, *get_args(hint))]
        checks.append((names, TypeAdapter(dict[str, kind])))  # type: ignore[valid-type]
    return checks


@cache
def _rejection_adapter():
    from pydantic import TypeAdapter

    return TypeAdapter(Rejection)


def parse_rejection(record: object) -> Rejection:
    """Validates one decoded rejection record; raises pydantic.ValidationError if unfit."""
    return _rejection_adapter().validate_json(orjson.dumps(record), strict=True)
