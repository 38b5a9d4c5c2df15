"""Storing queued events: what the store function does, without AWS.

Redelivery is safe (inserts ignore rows already there), a message that does not
parse fails alone, a message Postgres refuses is found by halving the batch and
fails alone, and a database that is down fails the whole batch so SQS brings it
back. A failed message goes back to the queue, and after its retries to the DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2
from pydantic import ValidationError

from sluice.db import Database
from sluice.messages import parse_message
from sluice.observability import logger
from sluice.storage import insert_message_bodies


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
    for record in records:
        try:
            result.events += len(parse_message(record.body).events)
        except ValidationError as exc:
            logger.error(
                "message does not fit the events model",
                message_id=record.message_id,
                problems=exc.error_count(),
            )
            result.failed.append(record.message_id)
            continue
        parsed.append(record)
    _insert(database, parsed, result)
    return result


def _insert(database: Database, records: list[QueueRecord], result: StoreResult) -> None:
    if not records:
        return
    bodies = [record.body for record in records]
    try:
        result.stored += database.run(lambda conn: insert_message_bodies(conn, bodies))
        return
    except (psycopg2.DataError, psycopg2.IntegrityError, psycopg2.ProgrammingError) as exc:
        # A value Postgres refuses. Halve until the message that holds it stands alone.
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
