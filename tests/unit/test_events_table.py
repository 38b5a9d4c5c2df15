"""The events table's one definition (sluice.store.events_table) against what else knows it.

Every statement naming the table's columns is built from the definition; these tests
hold the definition itself against the migrated table, the queued message, and the
management API's document, so a column added, renamed or retyped in one of them and
not in the definition fails here.
"""

from __future__ import annotations

from dataclasses import fields

from sluice.manage.manage_data import EVENT_FIELDS
from sluice.queued_events import QueuedEvent
from sluice.store.events_table import COLUMNS, WRITTEN

from tests.openapi import document


def migrated_columns(db) -> dict[str, str]:
    """{column: type} of the events table the migrations made."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT column_name, udt_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND table_name = 'events' ORDER BY ordinal_position"
        )
        return dict(cur.fetchall())


def test_the_definition_is_the_migrated_events_table(db):
    assert migrated_columns(db) == COLUMNS


def test_the_written_columns_are_the_queued_events_fields():
    # The store hands message bodies to PostgreSQL as they are: each field is a column.
    assert sorted(field.name for field in fields(QueuedEvent)) == sorted(WRITTEN)


def test_the_api_shows_a_stored_event_as_its_document_describes():
    stored_event = document()["components"]["schemas"]["StoredEvent"]
    assert list(stored_event["properties"]) == [*EVENT_FIELDS, "duplicate_event_id"]
    assert stored_event["required"] == list(EVENT_FIELDS)
