"""Storing queued events: what the store function does, without AWS.

Redelivery is safe (inserts ignore rows already there), a message that does not
parse fails alone, a message Postgres refuses is found by halving the batch and
fails alone, and a database that is down fails the whole batch so SQS brings it
back. A failed message goes back to the queue, and after its retries to the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import psycopg2
from pydantic import ValidationError

from sluice.db import Database
from sluice.messages import parse_message
from sluice.observability import logger
from sluice.storage import copy_events, insert_message_bodies


@dataclass(frozen=True, slots=True)
class QueueRecord:
    message_id: str
    body: str


@dataclass(slots=True)
class StoreResult:
    failed: list[str]  # SQS message ids to hand back to the queue
    events: int = 0  # events in the messages that parsed
    stored: int = 0  # rows added (the rest were already there)


def store_records(database: Database, records: list[QueueRecord]) -> StoreResult:
    """Stores what it can; raises DatabaseUnavailable when Postgres cannot be reached."""
    result = StoreResult(failed=[])
    parsed: list[QueueRecord] = []
    events: list[dict] = []
    for record in records:
        try:
            parse_message(record.body)
        except ValidationError as exc:
            logger.error(
                "message does not fit the events model",
                message_id=record.message_id,
                problems=exc.error_count(),
            )
            result.failed.append(record.message_id)
            continue
        parsed.append(record)
        # The model accepted it; COPY wants the wire form, which orjson gives faster
        # than turning the model's datetimes and UUIDs back into text.
        events.extend(orjson.loads(record.body)["events"])
    result.events = len(events)
    if not parsed:
        return result
    try:
        # The common case, fresh events only, goes in with COPY...
        result.stored = database.run(lambda conn: copy_events(conn, events))
    except _REFUSED:
        # ...and a batch holding a redelivered event, or a value Postgres refuses,
        # takes the INSERT path, which skips what is stored and isolates the rest.
        _insert(database, parsed, result)
    return result


# A value or a row the database refuses, as opposed to a database it cannot reach.
_REFUSED = (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError)


def _insert(database: Database, records: list[QueueRecord], result: StoreResult) -> None:
    if not records:
        return
    bodies = [record.body for record in records]
    try:
        result.stored += database.run(lambda conn: insert_message_bodies(conn, bodies))
        return
    except _REFUSED as exc:
        # Halve until the message that holds the refused value stands alone.
        if len(records) == 1:
            logger.error(
                "message refused by the database",
                message_id=records[0].message_id,
                sqlstate=exc.pgcode,
            )
            result.failed.append(records[0].message_id)
            return
    middle = len(records) // 2
    _insert(database, records[:middle], result)
    _insert(database, records[middle:], result)
