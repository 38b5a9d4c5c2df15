"""The store function's SQL: events in (COPY, then ON CONFLICT), their messageIds claimed.

Functions take a psycopg2 connection (or cursor) and leave transactions to the
caller. All SQL is parameterised.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from psycopg2 import sql

from sluice.core.db import Connection
from sluice.store.events_table import WRITTEN, names, typed


class _Rendered:
    """A statement composed once, at import, and made text the first time it runs.

    psycopg2 quotes the identifiers of a composed statement with a connection, again at
    each execute; rendered once and kept, the text costs no batch anything.
    """

    __slots__ = ("_composed", "_text")

    def __init__(self, composed: sql.Composable) -> None:
        self._composed = composed
        self._text: str | None = None

    def text(self, conn: Connection) -> str:
        if self._text is None:
            self._text = self._composed.as_string(conn)
        return self._text


# Events go to Postgres as one jsonb array, unpacked server-side: no per-value
# adaptation in Python, one statement per batch. A redelivered event (same event_id
# and received_at, so the same partition) meets the primary key and ON CONFLICT DO
# NOTHING skips it; a client's retry (same messageId, a new event) meets the dedup
# row its first copy claimed (migrations/0007), and only the events whose claim
# succeeded (or that carry no messageId) are inserted, in the same statement. Within
# one batch the first event of a messageId wins. A payload is the client's JSON text
# (a jsonb string, version 2 messages) or, from version 1 messages, the object itself.
_PAYLOAD = sql.SQL(
    "CASE jsonb_typeof(b.payload) WHEN 'string' THEN (b.payload #>> '{}')::jsonb ELSE b.payload END"
)
_INSERT_EVENTS = _Rendered(
    sql.SQL("""
WITH batch AS (
    SELECT *
    FROM ROWS FROM (jsonb_to_recordset(%s::jsonb) AS ({typed}))
         WITH ORDINALITY AS e({columns}, n)
), claimed AS (
    INSERT INTO event_dedup (app_id, message_id, event_id, received_at)
    SELECT DISTINCT ON (app_id, message_id) app_id, message_id, event_id, received_at
    FROM batch WHERE message_id IS NOT NULL ORDER BY app_id, message_id, n
    ON CONFLICT DO NOTHING
    RETURNING event_id
)
INSERT INTO events ({columns})
SELECT {values}
FROM batch b
WHERE b.message_id IS NULL OR b.event_id IN (SELECT event_id FROM claimed)
ON CONFLICT DO NOTHING
""").format(
        typed=typed(WRITTEN),
        columns=names(WRITTEN),
        values=sql.SQL(", ").join(
            _PAYLOAD if name == "payload" else sql.Identifier("b", name) for name in WRITTEN
        ),
    )
)


# A copy skipped for its messageId leaves the id ingest answered it with: recorded with
# the row its messageId's claim points at (migrations/0010), so a lookup of that id
# finds the stored row instead of reading `queued` for 18 days. A separate statement,
# after the claims: its snapshot sees a claim made by this batch and one that a
# concurrent store committed while this batch's claim waited on it. A redelivery of the
# stored event itself (the claim is its own) records nothing.
_KEYED = ("event_id", "app_id", "message_id", "received_at")  # what a duplicate is found by
_RECORD_DUPLICATES = _Rendered(
    sql.SQL("""
WITH duplicate AS (
    SELECT b.event_id, b.app_id, d.event_id AS original_event_id,
           d.received_at AS original_received_at, b.received_at
    FROM jsonb_to_recordset(%s::jsonb) AS b({keyed})
    JOIN event_dedup d ON d.app_id = b.app_id AND d.message_id = b.message_id
    WHERE d.event_id <> b.event_id
), recorded AS (
    INSERT INTO event_duplicates (event_id, app_id, original_event_id, original_received_at,
                                  received_at)
    SELECT * FROM duplicate
    ON CONFLICT DO NOTHING
)
SELECT event_id::text FROM duplicate
""").format(keyed=typed(_KEYED))
)


def insert_events(
    conn: Connection, events: list[dict[str, Any]], duplicates: list[str] | None = None
) -> int:
    """Stores events in their wire form (see copy_events), skipping any already stored.

    The copies skipped for their messageId are recorded as duplicates, in the same
    transaction (the caller's), and their ids added to `duplicates`.
    """
    with conn.cursor() as cur:
        cur.execute(_INSERT_EVENTS.text(conn), (orjson.dumps(events).decode(),))
        stored = cur.rowcount
        keyed = [
            {key: event[key] for key in _KEYED}
            for event in events
            if event.get("message_id") is not None
        ]
        if keyed:
            cur.execute(_RECORD_DUPLICATES.text(conn), (orjson.dumps(keyed).decode(),))
            if duplicates is not None:
                duplicates.extend(event_id for (event_id,) in cur.fetchall())
        return stored


def store_new_events(conn: Connection, messages: Iterable[list[dict[str, Any]]]) -> int:
    """The fast path: COPY of the events, then of their messageIds into event_dedup.

    One transaction (the caller's). Retries are rare, so this path assumes there are
    none: a messageId already claimed (a client's retry, or twice in the batch) or an
    event already stored (a redelivery) makes a COPY raise UniqueViolation, which undoes
    both, and the caller falls back to insert_events, which skips them.

    `messages` yields each message's events and may be lazy (the store checks each
    message as it is read): it is read once, while the events' COPY streams, a
    message's rows going to the server while the next message is checked, so that the
    checking overlaps the server's inserting, the bigger of the two COPYs. The claims'
    rows are made in the same pass.
    """
    claims: list[str] = []
    stored = _copy(conn, _COPY_EVENTS.text(conn), (_copy_rows(e, claims) for e in messages))
    _copy(conn, _COPY_CLAIMS, iter(claims))
    return stored


_COPY_CLAIMS = "COPY event_dedup (app_id, message_id, event_id, received_at) FROM STDIN"


class _CopyStream:
    """COPY's input, made a message's rows at a time as psycopg2 reads it.

    libpq sends each chunk on, so PostgreSQL parses, inserts and indexes one message's
    rows while this process reads and checks the next: the two work at once (on two
    cores, or two machines in AWS) instead of the server waiting for the whole text.
    """

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks = chunks
        self._next = self._chunk()

    def _chunk(self) -> str:
        # An empty chunk would end the COPY (psycopg2 reads "" as the end of the file):
        # a message without events adds nothing.
        return next((chunk for chunk in self._chunks if chunk), "")

    def empty(self) -> bool:
        return not self._next

    def read(self, size: int = -1) -> str:
        chunk, self._next = self._next, self._chunk() if self._next else ""
        return chunk


def _copy(conn: Connection, statement: str, chunks: Iterator[str]) -> int:
    stream = _CopyStream(chunks)
    if stream.empty():
        return 0
    with conn.cursor() as cur:
        cur.copy_expert(statement, stream)
        return cur.rowcount


# The benchmarks' raw COPYs use it too, as the floor the store is measured against.
COPY_EVENTS = sql.SQL("COPY events ({}) FROM STDIN").format(names(WRITTEN))
_COPY_EVENTS = _Rendered(COPY_EVENTS)
# COPY's text format: backslash escapes, \N for NULL.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_text(value: str | None) -> str:
    if value is None:
        return _NULL
    # Most values hold nothing to escape, and four searches are far cheaper than translate.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


def _copy_rows(events: list[dict[str, Any]], claims: list[str] | None = None) -> str:
    """The events' rows in COPY's text format, the values in COPY_EVENTS' order; their
    messageIds' rows for event_dedup added to `claims` (when given), one text a message.

    The events are in their wire form: QueuedEvent fields as decoded from a message
    body the model accepts (parse_events), times still ISO 8601 strings. Ids, status and
    times were checked by the model (UUIDs, a fixed word, ISO 8601): nothing in them
    needs escaping. The client's texts (app, name, payload, messageId) rarely do: they
    are searched once together, and escaped one by one only when something is found.
    One loop, and no call for an event with nothing to escape: this runs for every event
    the store writes.
    """
    rows: list[str] = []
    claimed: list[str] = []
    text = _copy_text
    for event in events:
        app_id, name, message_id = event["app_id"], event["event_name"], event["message_id"]
        payload = event["payload"]
        if not isinstance(payload, str):  # version 1 carried the object itself
            payload = orjson.dumps(payload).decode()
        # Version 2 carries the client's JSON text: written as it is, every number exact.
        texts = f"{app_id}{name}{payload}{message_id}"
        if "\\" in texts or "\t" in texts or "\n" in texts or "\r" in texts:
            app_id, name, payload = text(app_id), text(name), text(payload)
            if message_id is not None:
                message_id = text(message_id)
        errors = event["validation_errors"]
        received_at = event["received_at"]
        rows.append(
            f"{event['event_id']}\t{app_id}\t{name}\t{event['status']}\t{payload}\t"
            f"{_NULL if errors is None else text(orjson.dumps(errors).decode())}\t"
            f"{_NULL if message_id is None else message_id}\t"
            f"{event['client_timestamp'] or _NULL}\t{event['sent_at'] or _NULL}\t"
            f"{event['occurred_at']}\t{received_at}\n"
        )
        if message_id is not None:
            claimed.append(f"{app_id}\t{message_id}\t{event['event_id']}\t{received_at}\n")
    if claims is not None and claimed:
        claims.append("".join(claimed))
    return "".join(rows)


def copy_events(conn: Connection, events: Iterable[dict[str, Any]]) -> int:
    """Writes events with COPY: the fastest way in, but with no ON CONFLICT.

    `events` are in their wire form (see _copy_rows). Raises
    psycopg2.errors.UniqueViolation if any event is already stored; the caller then
    falls back to insert_events. COPY holds no session state, so it does
    not pin an RDS Proxy connection.
    """
    rows = list(events)
    # Sent on in chunks of a typical message's size, as the store sends them: the
    # server inserts one while the next is made.
    chunks = (_copy_rows(rows[first : first + 100]) for first in range(0, len(rows), 100))
    return _copy(conn, _COPY_EVENTS.text(conn), chunks)
