"""The maintain function's SQL: day partitions of events, expiry, the dedup window.

Partitions are made, detached and dropped through the SECURITY DEFINER functions of
migrations/0007 (the maintain role owns nothing); everything else is plain,
parameterised SQL. Functions leave transactions to the caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg2.errors
from psycopg2 import sql

from sluice.core.db import Connection
from sluice.store.events_table import COLUMNS, SHOWN


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day: the range of received_at its partition holds."""
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def partition_name(day: date) -> str:
    return f"events_p{day:%Y%m%d}"


def _unless_locked(conn: Connection, statement: str, args: tuple) -> Any:
    """The statement's one value, or None when it gave up at its lock timeout.

    psycopg2 reports a lock timeout as an OperationalError, which sluice.core.db takes
    for a lost connection; here it is an answer (the transaction is rolled back).
    """
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchone()[0]
    except psycopg2.errors.LockNotAvailable:
        conn.rollback()
        return None


def make_partitions(conn: Connection, first: date, last: date) -> int | None:
    """Makes the missing day partitions of [first, last]; returns how many were made.

    None: the default partition stayed locked past the lock timeout (a long reader).
    """
    return _unless_locked(conn, "SELECT sluice_make_event_partitions(%s, %s)", (first, last))


def partition_days(conn: Connection) -> list[tuple[date, bool]]:
    """(day, attached) of every day partition, oldest first."""
    with conn.cursor() as cur:
        cur.execute("SELECT day, attached FROM event_partitions ORDER BY day")
        return cur.fetchall()


def default_partition_days(conn: Connection) -> list[date]:
    """The days of received_at the default partition holds rows of (usually none)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM events_default ORDER BY 1"
        )
        return [day for (day,) in cur.fetchall()]


def detach_partition(conn: Connection, day: date) -> bool | None:
    """Whether the day was attached (and now is not); None: events stayed locked."""
    return _unless_locked(conn, "SELECT sluice_detach_event_partition(%s)", (day,))


def drop_detached_partition(conn: Connection, day: date) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT sluice_drop_detached_event_partition(%s)", (day,))
        return cur.fetchone()[0]


def app_retentions(conn: Connection) -> dict[str, int]:
    """Every live app's retention in days."""
    with conn.cursor() as cur:
        cur.execute("SELECT app_id, retention_days FROM apps")
        return dict(cur.fetchall())


def counted_through(conn: Connection) -> datetime | None:
    """Everything stored before this the rollups have counted (None: nothing yet)."""
    with conn.cursor() as cur:
        cur.execute("SELECT complete_through FROM aggregate_position")
        row = cur.fetchone()
    return row[0] if row else None


def purge_dedup(conn: Connection, before: datetime, limit: int) -> int:
    """Forgets up to `limit` messageIds first stored before `before`."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM event_dedup WHERE ctid = ANY(ARRAY("
            " SELECT ctid FROM event_dedup WHERE received_at < %s LIMIT %s))",
            (before, limit),
        )
        return cur.rowcount


def purge_duplicates(conn: Connection, queued_before: datetime, now: datetime, limit: int) -> int:
    """Forgets up to `limit` skipped copies (event_duplicates) no lookup needs any more.

    A copy's row goes once its id is past the time it could read `queued` (received
    before `queued_before`) and the row it leads to has expired by its app's retention
    (received over retention_days + 1 days ago: its whole UTC day is past), or its app
    is gone. Earlier, the id must still lead to the row, or to a 404 when the row has
    expired: without it, the id would read `queued` again.
    """
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM event_duplicates WHERE ctid = ANY(ARRAY("
            " SELECT d.ctid FROM event_duplicates d LEFT JOIN apps a ON a.app_id = d.app_id"
            " WHERE d.received_at < %s AND (a.app_id IS NULL"
            "  OR d.original_received_at < %s - make_interval(days => a.retention_days + 1))"
            " LIMIT %s))",
            (queued_before, now, limit),
        )
        return cur.rowcount


# --- the archive's reads ----------------------------------------------------------

# One JSON object per event, made by the server, with every column an event is shown
# with: timestamps ISO 8601 in UTC, the payload and errors as JSON text (Athena's
# json_extract reads them; jsonb's text keeps every digit of every number).
_ARCHIVE_FIELDS = sql.SQL(", ").join(
    sql.SQL("{}, {}::text" if COLUMNS[name] == "jsonb" else "{}, {}").format(
        sql.Literal(name), sql.Identifier(name)
    )
    for name in SHOWN
)
_ARCHIVE_LINE = sql.SQL(
    "SELECT json_build_object({fields})::text"
    " FROM {table} WHERE app_id = %s AND received_at >= %s AND received_at < %s"
)


def begin_snapshot(conn: Connection) -> str:
    """Makes the transaction REPEATABLE READ and returns its snapshot (pg_snapshot text).

    Everything the transaction reads is exactly the rows visible in that snapshot,
    so deleting "rows of the slice whose store_xid the snapshot sees" later deletes
    what was archived and nothing stored since (as the aggregator counts, see 0004).
    """
    with conn.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT pg_current_snapshot()::text")
        return cur.fetchone()[0]


def archive_lines(
    conn: Connection, app_id: str, day: date, *, detached: bool, fetch: int = 5000
) -> Iterator[str]:
    """The app's events received on `day`, one JSON line each, read in bounded batches.

    From events (the partitions) or, `detached`, from the day's detached partition.
    """
    table = sql.Identifier(partition_name(day) if detached else "events")
    start, end = day_bounds(day)
    with conn.cursor() as cur:
        cur.execute("SET LOCAL TimeZone = 'UTC'")  # the lines' timestamps end in +00:00
    with conn.cursor(name="archive_lines") as cur:
        cur.itersize = fetch
        cur.execute(_ARCHIVE_LINE.format(fields=_ARCHIVE_FIELDS, table=table), (app_id, start, end))
        for (line,) in cur:
            yield line


def apps_in_detached(conn: Connection, day: date, app_ids: list[str]) -> list[str]:
    """Which of `app_ids` have rows in the day's detached partition (one index probe each)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT a FROM unnest(%s::text[]) AS a"
                " WHERE EXISTS (SELECT FROM {table} e WHERE e.app_id = a)"
            ).format(table=sql.Identifier(partition_name(day))),
            (app_ids,),
        )
        return [app_id for (app_id,) in cur.fetchall()]


def has_events(conn: Connection, app_id: str, day: date) -> bool:
    start, end = day_bounds(day)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT FROM events"
            " WHERE app_id = %s AND received_at >= %s AND received_at < %s)",
            (app_id, start, end),
        )
        return cur.fetchone()[0]


def archived_parts(conn: Connection, app_id: str, day: date) -> tuple[int, bool]:
    """How many objects the app's day already has, and whether one was its whole day."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*), coalesce(bool_or(whole_day), false) FROM event_archives"
            " WHERE app_id = %s AND day = %s",
            (app_id, day),
        )
        count, whole = cur.fetchone()
    return count, whole


def record_archive(
    conn: Connection, app_id: str, day: date, key: str, events: int, *, whole_day: bool
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO event_archives (app_id, day, object_key, events, whole_day)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (object_key) DO UPDATE"
            " SET events = EXCLUDED.events, archived_at = now()",
            (app_id, day, key, events, whole_day),
        )


def delete_archived_chunk(
    conn: Connection, app_id: str, day: date, snapshot: str, limit: int
) -> int:
    """Deletes up to `limit` of the app's events of `day` that `snapshot` saw."""
    start, end = day_bounds(day)
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM events WHERE (event_id, received_at) IN ("
            " SELECT event_id, received_at FROM events"
            " WHERE app_id = %s AND received_at >= %s AND received_at < %s"
            " AND pg_visible_in_snapshot(store_xid, %s::pg_snapshot) LIMIT %s)"
            " AND received_at >= %s AND received_at < %s",
            (app_id, start, end, snapshot, limit, start, end),
        )
        return cur.rowcount


# --- deleted apps -----------------------------------------------------------------


def deleted_apps(conn: Connection) -> list[tuple[str, datetime]]:
    with conn.cursor() as cur:
        cur.execute("SELECT app_id, deleted_at FROM deleted_apps ORDER BY deleted_at")
        return cur.fetchall()


def delete_app_events_chunk(conn: Connection, app_id: str, limit: int) -> int:
    """Deletes up to `limit` events of a deleted app, and its dedup rows alongside."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM events WHERE (event_id, received_at) IN ("
            " SELECT event_id, received_at FROM events WHERE app_id = %s LIMIT %s)",
            (app_id, limit),
        )
        deleted = cur.rowcount
        cur.execute(
            "DELETE FROM event_dedup WHERE ctid = ANY(ARRAY("
            " SELECT ctid FROM event_dedup WHERE app_id = %s LIMIT %s))",
            (app_id, limit),
        )
        return deleted + cur.rowcount


def forget_deleted_app(conn: Connection, app_id: str) -> None:
    """Its events and archive are gone: drop the records of both."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM event_archives WHERE app_id = %s", (app_id,))
        cur.execute("DELETE FROM deleted_apps WHERE app_id = %s", (app_id,))
