"""Aggregation tests: the session's migrated database, emptied of events and rollups."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database

from tests.database import rollups, truncate


def reset(conn) -> None:
    """No events, no rollups, nothing counted: as after migration 0004 on an empty table."""
    truncate(conn, {"events", *rollups(conn)})
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE aggregate_position SET counted = '1:1:', complete_through = NULL,"
            " target = NULL, target_taken_at = NULL, after_xid = NULL, after_event_id = NULL"
        )


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    reset(conn)
    yield conn
    conn.close()


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """The aggregate function's connection: its own role, as in AWS."""
    database = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    yield database
    database.close()
