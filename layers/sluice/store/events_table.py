"""The events table's columns: the one definition every statement naming them is built from.

The store owns the table (it writes the rows); the management API and the archive
read it, and the benchmarks fill it, with the column lists made here.
tests/unit/test_events_table.py holds this definition against the migrated table.
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg2 import sql

# The columns a queued event fills (QueuedEvent's fields are named for them), with their
# PostgreSQL types, in the order an event is shown: the management API's answers and the
# archive's lines. The table holds payload before status (migrations/0007); no statement
# depends on the table's order, as each names its columns.
WRITTEN: dict[str, str] = {
    "event_id": "uuid",
    "app_id": "text",
    "event_name": "text",
    "status": "text",
    "payload": "jsonb",
    "validation_errors": "jsonb",
    "message_id": "text",
    "client_timestamp": "timestamptz",
    "sent_at": "timestamptz",
    "occurred_at": "timestamptz",
    "received_at": "timestamptz",
}
# Then those PostgreSQL fills as it stores the row (their defaults): when, and in which
# transaction (the aggregator's position, never shown).
COLUMNS: dict[str, str] = {**WRITTEN, "stored_at": "timestamptz", "store_xid": "xid8"}
# An event as it is read back and shown.
SHOWN: tuple[str, ...] = (*WRITTEN, "stored_at")


def names(columns: Iterable[str]) -> sql.Composed:
    """`event_id, app_id, ...`: a column list for SELECT, INSERT and COPY."""
    return sql.SQL(", ").join(sql.Identifier(name) for name in columns)


def typed(columns: Iterable[str]) -> sql.Composed:
    """`event_id uuid, app_id text, ...`: a record's column definition list."""
    return sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(COLUMNS[name])) for name in columns
    )
