"""The test database's tables, read from the migrated schema rather than listed by hand.

The `db` fixture empties every table the migrations make but those kept below, so a
table a new migration makes is emptied before each test without anyone naming it
(tests/unit/test_cleaning.py).
"""

from __future__ import annotations

from psycopg2 import sql

# Left as the migrations made them, each for its reason.
KEPT = {
    "schema_migrations": "which migrations ran (sluice.schema.migrate): emptied, the session's"
    " database would look unmigrated",
    "event_id_keys": "the one row its migration makes: the key ingest signs event ids with",
    "aggregate_position": "the one row its migration makes: how far the aggregator has"
    " counted; the aggregation suites reset it with the rollups",
}
# Also kept: the rollups (`rollups` below), which only the aggregation suites empty,
# together with the position they were counted to (tests/aggregate/conftest.py).


def tables(conn) -> set[str]:
    """The schema's tables; a partitioned one stands for its partitions (TRUNCATE reaches them)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition"
        )
        return {name for (name,) in cur.fetchall()}


def rollups(conn) -> set[str]:
    """The tables the aggregate function writes, as the migrations grant them to its role."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT relname FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition"
            " AND has_table_privilege('sluice_aggregate', oid, 'INSERT')"
        )
        return {name for (name,) in cur.fetchall()}


def truncate(conn, names: set[str]) -> None:
    """Empties these tables in one statement (so their foreign keys among them hold)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, sorted(names))))
        )


def empty(conn) -> None:
    """What the `db` fixture does before each test: every table but the kept and the rollups."""
    truncate(conn, tables(conn) - set(KEPT) - rollups(conn))
