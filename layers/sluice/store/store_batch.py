"""Storing queued events: what the store function does, without AWS.

Redelivery is safe (inserts ignore rows already there). The unit of failure is
the event, not the message: an event that does not fit the model, or that
Postgres refuses (found by halving the batch), fails alone, and its message is
handed back while every other event, of that message too, is stored. A message
handed back is retried, then kept in the DLQ; its stored events are skipped on
every retry and redrive. A database that is down fails the whole batch so SQS
brings it back.

A rejections message (records of batch items ingest refused) is stored beside: its
records never fail the batch. Their texts are capped and cleaned again (as ingest
does), so a record is stored cut rather than lost; one that does not fit the model is
logged and dropped, as is one Postgres still refuses; a redelivered record lands once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import psycopg2
from pydantic import ValidationError

from sluice.core.db import Connection, Database
from sluice.core.observability import logger
from sluice.queued_events import (
    QueuedEvent,
    Rejection,
    cleaned,
    is_rejections,
    parse_events,
    parse_rejection,
)
from sluice.store.events_data import insert_events, store_new_events
from sluice.store.rejections_data import insert_rejections


@dataclass(frozen=True, slots=True)
class QueueRecord:
    message_id: str
    body: str


@dataclass(slots=True)
class StoreResult:
    failed: list[str]  # SQS message ids to hand back to the queue
    events: int = 0  # events that fit the model
    stored: int = 0  # rows added (the rest were already there)
    # Event ids for the batch's one log line (a search for an event id finds it):
    # in the table now (added, or there already), skipped as a retry of a messageId
    # stored under another id, and refused (their message goes back).
    stored_ids: list[str] = field(default_factory=list)
    returned_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    rejections: int = 0  # rejection records added


# One event in its wire form (QueuedEvent fields as decoded from the message
# body, times still ISO 8601 strings), with the SQS message that carried it.
_Pending = tuple[str, dict[str, Any]]


def store_records(database: Database, records: list[QueueRecord]) -> StoreResult:
    """Stores what it can; raises DatabaseUnavailable when Postgres cannot be reached."""
    batch = _Batch(records)
    stored = 0
    duplicates: list[str] = []
    # A batch in which no message fits needs no round trip: its messages go back even
    # while the database is down.
    if batch.has_events():
        try:
            # The common case, fresh events only, goes in with COPY, the messages read
            # and checked while the COPY streams...
            stored = database.run(lambda conn: store_new_events(conn, batch.messages()))
        except _REFUSED:
            # ...and a batch holding a redelivered event, or a value Postgres refuses,
            # takes the INSERT path, which skips what is stored and isolates the rest.
            stored = _insert(database, batch.pending(), batch.failed, batch.returned, duplicates)
    pending = batch.pending()
    rejections = _store_rejections(database, batch.rejections) if batch.rejections else 0
    return StoreResult(
        rejections=rejections,
        failed=list(batch.failed),
        events=len(pending),
        stored=stored,
        stored_ids=_stored_ids(pending, {*batch.returned, *duplicates}),
        returned_ids=batch.returned,
        duplicate_ids=duplicates,
    )


def _stored_ids(pending: list[_Pending], left_out: set[str]) -> list[str]:
    if not left_out:  # the common case: a comprehension without a test per event
        return [event["event_id"] for _, event in pending]
    return [event["event_id"] for _, event in pending if event["event_id"] not in left_out]


class _Batch:
    """The batch's messages, read and checked once, on demand, in order.

    messages() may be iterated again (a retry on a new connection): it yields what was
    read already, then reads on.
    """

    def __init__(self, records: list[QueueRecord]) -> None:
        self._unread = iter(records)
        self._read: list[tuple[str, list[dict[str, Any]]]] = []  # (messageId, its events)
        self.failed: dict[str, None] = {}  # ordered, without repeats
        self.returned: list[str] = []
        self.rejections: list[Rejection] = []

    def messages(self) -> Iterator[list[dict[str, Any]]]:
        """Each message's events that fit the model, in wire form."""
        position = 0
        while True:
            while position < len(self._read):
                yield self._read[position][1]
                position += 1
            record = next(self._unread, None)
            if record is None:
                return
            events, whole = _read_message(record, self.returned, self.rejections)
            if not whole:
                self.failed[record.message_id] = None
            self._read.append((record.message_id, events))

    def has_events(self) -> bool:
        return any(self.messages())  # reads up to the first message with an event

    def pending(self) -> list[_Pending]:
        """Every event that fits the model, with its message (reads what is left)."""
        for _ in self.messages():
            pass
        return [(message_id, event) for message_id, events in self._read for event in events]


def event_ids(records: list[QueueRecord]) -> list[str]:
    """Every event id the messages carry, as far as they can be read (for a log line)."""
    ids: list[str] = []
    for record in records:
        try:
            events = orjson.loads(record.body).get("events")
        except (orjson.JSONDecodeError, AttributeError):
            continue
        ids.extend(_ids_of(events))
    return ids


def _ids_of(events: Any) -> list[str]:
    if not isinstance(events, list):
        return []
    return [
        event["event_id"]
        for event in events
        if isinstance(event, dict) and isinstance(event.get("event_id"), str)
    ]


def _read_message(
    record: QueueRecord, returned: list[str], rejections: list[Rejection]
) -> tuple[list[dict[str, Any]], bool]:
    """The events of a message that fit the model, and whether all of them did.

    The ids of the events that do not fit (those that have one) go into `returned`; a
    rejections message's records that fit go into `rejections` (it has no events).
    """
    try:
        # COPY wants the wire form (times and ids as the body carries them): one read
        # checks the body against the model and gives it.
        return parse_events(record.body), True
    except ValidationError as exc:
        problems = exc.error_count()
    # Salvage the events that fit, one by one: the others must not take them along.
    try:
        document = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        document = None
    if is_rejections(document):
        rejections.extend(_read_rejections(record.message_id, document))
        return [], True
    events = document.get("events") if isinstance(document, dict) else None
    if not isinstance(events, list) or document.get("version") not in (1, 2):
        # Not JSON at all, or JSON with NaN or 1e400 (which the model reads and no column
        # holds): the whole message goes back, and after its retries to the DLQ.
        problem = "not JSON the store can read" if document is None else "not an events message"
        logger.error("message is " + problem, message_id=record.message_id, problems=problems)
        returned.extend(_ids_of(events))
        return [], False
    fitting: list[dict[str, Any]] = []
    unfit: list[Any] = []
    for event in events:
        (fitting if _fits(event) else unfit).append(event)
    returned.extend(_ids_of(unfit))
    logger.error(
        "events do not fit the events model",
        message_id=record.message_id,
        events=len(events),
        unfit=len(events) - len(fitting),
    )
    return fitting, False


def _read_rejections(message_id: str, document: dict[str, Any]) -> list[Rejection]:
    records = document.get("rejections")
    fitting: list[Rejection] = []
    for record in records if isinstance(records, list) else []:
        try:
            fitting.append(cleaned(parse_rejection(record)))
        except (ValidationError, orjson.JSONEncodeError):
            pass
    unfit = len(records) - len(fitting) if isinstance(records, list) else 1
    if unfit or document.get("version") != 2:
        # Only records of a refusal: dropped (and said here), never a batch held back.
        logger.error("rejection records do not fit", message_id=message_id, unfit=unfit)
    return fitting


def _store_rejections(database: Database, rejections: list[Rejection]) -> int:
    """Adds the records; one Postgres refuses is found by halving, logged and dropped."""
    try:
        return database.run(lambda conn: insert_rejections(conn, rejections))
    except (*_REFUSED, ValueError) as exc:  # ValueError: psycopg2's own refusals
        if len(rejections) == 1:
            logger.error(
                "rejection record refused by the database",
                rejection_id=str(rejections[0].rejection_id),
                app_id=rejections[0].app_id,
                sqlstate=getattr(exc, "pgcode", None),
            )
            return 0
    middle = len(rejections) // 2
    return _store_rejections(database, rejections[:middle]) + _store_rejections(
        database, rejections[middle:]
    )


def _fits(event: Any) -> bool:
    try:
        _event_adapter().validate_json(orjson.dumps(event), strict=True)
    except (ValidationError, orjson.JSONEncodeError):
        return False
    return True


@cache
def _event_adapter():  # built on first use, like queued_events._message_adapter
    from pydantic import TypeAdapter

    return TypeAdapter(QueuedEvent)


# A value or a row the database refuses, as opposed to a database it cannot reach.
_REFUSED = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError)


def _insert(
    database: Database,
    pending: list[_Pending],
    failed: dict[str, None],
    returned: list[str],
    duplicates: list[str],
) -> int:
    """Inserts `pending`, halving around what Postgres refuses; returns rows added."""
    if not pending:
        return 0

    skipped: list[str] = []  # kept once the transaction committed

    def work(conn: Connection) -> int:
        skipped.clear()  # run again on a new connection, it finds them again
        return insert_events(conn, [event for _, event in pending], skipped)

    try:
        stored = database.run(work)
        duplicates.extend(skipped)
        return stored
    except _REFUSED as exc:
        if len(pending) == 1:
            message_id, event = pending[0]
            logger.error(
                "event refused by the database",
                message_id=message_id,
                event_id=event.get("event_id"),
                sqlstate=exc.pgcode,
            )
            failed[message_id] = None
            returned.extend(_ids_of([event]))
            return 0
    middle = len(pending) // 2
    return _insert(database, pending[:middle], failed, returned, duplicates) + _insert(
        database, pending[middle:], failed, returned, duplicates
    )
