"""The db fixture empties every table the migrations make, but the few it keeps, and why.

No list of tables is kept beside the migrations: a table a new migration makes is
emptied before each test without anyone naming it (tests/database.py reads them
from the migrated schema).
"""

from __future__ import annotations

import pytest
from psycopg2 import sql

from tests.aggregate.conftest import reset
from tests.database import KEPT, empty, rollups, tables


@pytest.fixture
def new_table(db):
    """A table as a new migration would make it, holding a row; dropped after the test."""
    with db.cursor() as cur:
        cur.execute("CREATE TABLE cleaning_probe (id integer PRIMARY KEY)")
        cur.execute("INSERT INTO cleaning_probe VALUES (1)")
    yield "cleaning_probe"
    with db.cursor() as cur:
        cur.execute("DROP TABLE cleaning_probe")


def rows(conn, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        return cur.fetchone()[0]


def test_a_table_a_new_migration_makes_is_emptied(db, new_table):
    empty(db)

    assert rows(db, new_table) == 0


def test_the_kept_tables_exist_and_keep_their_rows(db):
    # Given the migrated database, when it is emptied
    empty(db)

    # Then each kept table is one the migrations make, and still holds what they wrote
    assert set(KEPT) <= tables(db), "a kept table no migration makes: drop it from KEPT"
    for table in ("schema_migrations", "event_id_keys", "aggregate_position"):
        assert rows(db, table) > 0, table


def test_a_new_rollup_is_kept_by_the_db_fixture_and_emptied_with_the_others(db, new_table):
    # Given a table the aggregate function writes, as a new rollup would be
    with db.cursor() as cur:
        cur.execute(
            sql.SQL("GRANT SELECT, INSERT ON {} TO sluice_aggregate").format(
                sql.Identifier(new_table)
            )
        )

    # Then it is one of the rollups, which the db fixture leaves to the aggregation suites
    assert new_table in rollups(db)
    empty(db)
    assert rows(db, new_table) == 1
    reset(db)  # tests/aggregate's, which empties it with the others
    assert rows(db, new_table) == 0
