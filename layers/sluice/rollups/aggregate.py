"""Rolling stored events up into exact counts: what the aggregate function runs.

    python -m tools.aggregate run
    python -m tools.aggregate rebuild --from 2026-03-01 --to 2026-03-08 [--app APP_ID]

Both use DATABASE_URL.

**Which rows are new: transaction snapshots.** A watermark on `stored_at` (or on any
value set while the storing transaction runs) misses rows of a transaction that began
before a run and committed after it: their value is older than the watermark by the
time they become visible. So the position is not a value but a snapshot
(`pg_current_snapshot()`): the set of transactions that had finished when it was
taken. Every event row carries the id of the transaction that stored it
(`events.store_xid`, 64 bits, indexed; migrations/0004). A row has been counted when
its transaction is visible in the recorded snapshot `counted`; a run takes a new
snapshot `target` and counts the rows visible in `target` and not in `counted`, then
records `target` as `counted`. A transaction still open at `target` is in its
in-progress list, so its rows are not visible there and are taken by the first run
whose snapshot sees it committed, never twice and never skipped. Aborted
transactions leave no rows to read.

The rows to examine are bounded by the index: every transaction below
`xmin(counted)` had finished (so its rows are counted), and none at or above
`xmax(target)` had. A run pages through `store_xid` in [xmin(counted),
xmax(target)) in index order, `chunk_size` rows at a time, whatever the filter keeps;
each chunk is one transaction that adds its counts and moves the recorded position
(`after_xid`, `after_event_id`) together. So a crash loses nothing and counts nothing
twice (the chunk's counts and its position commit or vanish together), a re-run
starts where the last stopped, and a run that runs out of time leaves the next to
finish the window. A transaction held open for long keeps `xmin(counted)` back, and
every window then re-reads (and skips) the rows stored since it began: slower, still
exact, still in bounded chunks.

Two runs at once, and a rebuild, serialise on the position row (SELECT ... FOR
UPDATE, released at commit): nothing session-scoped, so RDS Proxy pins nothing. Only
the storing transaction's own id is used, never `xmin` (32 bits, which would need the
epoch and wraparound reasoning); xid8 does not wrap in the life of a database.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sluice.core.clock import Clock, SystemClock
from sluice.core.db import Connection, Database

NIL_UUID = "00000000-0000-0000-0000-000000000000"
MAX_UUID = "ffffffff-ffff-ffff-ffff-ffffffffffff"

_LOCK_POSITION = """
SELECT counted::text, target::text, after_xid::text, after_event_id::text, complete_through,
       statement_timestamp(), pg_snapshot_xmin(counted)::text
FROM aggregate_position FOR UPDATE
"""

# A window opens with the snapshot of this very statement (READ COMMITTED: each
# statement has its own); statement_timestamp() is when it was taken, near enough for
# "complete through".
_OPEN_WINDOW = """
UPDATE aggregate_position
SET target = pg_current_snapshot(), target_taken_at = statement_timestamp(),
    after_xid = NULL, after_event_id = NULL, updated_at = statement_timestamp()
RETURNING target::text
"""

# userId as text (42 and "42" are one user). The primary key's btree cannot hold keys
# past ~2.7 kB, and an event may be 32 KiB: a long id is kept as its SHA-256, exact for
# any purpose short of a hash collision.
#
# One chunk in one statement: the page of the index (bounded by LIMIT whatever the
# filter keeps), the rows of it that are new, their counts added, the page's last key.
_CHUNK = """
WITH page AS MATERIALIZED (
    SELECT store_xid, event_id, app_id, event_name, status, occurred_at, payload
    FROM events
    WHERE store_xid >= pg_snapshot_xmin(%(counted)s::pg_snapshot)
      AND store_xid < pg_snapshot_xmax(%(target)s::pg_snapshot)
      AND (store_xid, event_id) > (%(after_xid)s::xid8, %(after_event_id)s::uuid)
    ORDER BY store_xid, event_id
    LIMIT %(limit)s
),
fresh AS MATERIALIZED (
    SELECT app_id, event_name, status, occurred_at, payload FROM page
    WHERE pg_visible_in_snapshot(store_xid, %(target)s::pg_snapshot)
      AND NOT pg_visible_in_snapshot(store_xid, %(counted)s::pg_snapshot)
),
hourly AS (
    INSERT INTO event_counts_hourly AS c (app_id, hour, event_name, status, events)
    SELECT app_id, date_trunc('hour', occurred_at, 'UTC'), event_name, status, count(*)
    FROM fresh GROUP BY 1, 2, 3, 4
    ON CONFLICT (app_id, hour, event_name, status) DO UPDATE
        SET events = c.events + EXCLUDED.events
),
daily AS (
    INSERT INTO event_counts_daily AS c (app_id, day, event_name, status, events)
    SELECT app_id, date_trunc('day', occurred_at, 'UTC'), event_name, status, count(*)
    FROM fresh GROUP BY 1, 2, 3, 4
    ON CONFLICT (app_id, day, event_name, status) DO UPDATE
        SET events = c.events + EXCLUDED.events
),
users AS (
    INSERT INTO daily_users (app_id, day, user_id)
    SELECT DISTINCT app_id, date_trunc('day', occurred_at, 'UTC'),
        CASE WHEN octet_length(payload ->> 'userId') <= 256 THEN payload ->> 'userId'
             ELSE 'sha256:' || encode(sha256(convert_to(payload ->> 'userId', 'UTF8')), 'hex')
        END
    FROM fresh WHERE payload ->> 'userId' IS NOT NULL
    -- In key order, each insert lands next to the last in the btree: cheaper than
    -- random order (the biggest share of a chunk's cost, `make bench`).
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM page), (SELECT count(*) FROM fresh), last.store_xid::text,
       last.event_id::text
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT store_xid, event_id FROM page ORDER BY store_xid DESC, event_id DESC LIMIT 1
) AS last ON true
"""

_ADVANCE = """
UPDATE aggregate_position
SET after_xid = %s::xid8, after_event_id = %s::uuid, updated_at = statement_timestamp()
"""

# The window is done: everything visible in `target` is counted.
_CLOSE_WINDOW = """
UPDATE aggregate_position
SET counted = target, complete_through = target_taken_at, target = NULL,
    target_taken_at = NULL, after_xid = NULL, after_event_id = NULL,
    updated_at = statement_timestamp()
RETURNING complete_through
"""


@dataclass(frozen=True, slots=True)
class Chunk:
    scanned: int  # index entries read
    counted: int  # rows added to the rollups
    complete_through: datetime | None  # after this chunk
    started_at: datetime  # the database's time when the chunk began


def aggregate_chunk(
    conn: Connection, chunk_size: int, before_commit: Callable[[Connection], None] | None = None
) -> Chunk:
    """Counts the next chunk of new rows; the caller commits (Database.run).

    `before_commit` runs last, inside the transaction: tests crash there.
    """
    with conn.cursor() as cur:
        cur.execute(_LOCK_POSITION)
        row = cur.fetchone()
        counted, target, after_xid, after_event_id, complete_through, started_at, oldest = row
        if target is None:
            cur.execute(_OPEN_WINDOW)
            (target,) = cur.fetchone()
            after_xid, after_event_id = None, None
        if after_xid is None:
            # A window's page starts just before the oldest transaction it can hold. The
            # index scan starts where the row comparison says, not at `store_xid >= xmin`
            # beside it: from (0, nil) it read every entry counted before, ever more as
            # the table grows (a 5,000-event chunk on a day of 5 M rows: 1.7 s and 232,000
            # buffers, against 35 ms and 515).
            after_xid, after_event_id = str(int(oldest) - 1), MAX_UUID
        cur.execute(
            _CHUNK,
            {
                "counted": counted,
                "target": target,
                "after_xid": after_xid,
                "after_event_id": after_event_id,
                "limit": chunk_size,
            },
        )
        scanned, fresh, last_xid, last_event_id = cur.fetchone()
        if scanned < chunk_size:
            cur.execute(_CLOSE_WINDOW)
            (complete_through,) = cur.fetchone()
        else:
            cur.execute(_ADVANCE, (last_xid, last_event_id))
    if before_commit is not None:
        before_commit(conn)
    return Chunk(scanned, fresh, complete_through, started_at)


@dataclass(frozen=True, slots=True)
class RunResult:
    chunks: int
    scanned: int
    counted: int
    caught_up: bool  # False: out of time; the next run goes on from where this one stopped
    complete_through: datetime | None


def run(
    database: Database,
    chunk_size: int,
    *,
    seconds: float | None = None,
    clock: Clock | None = None,
    before_commit: Callable[[Connection], None] | None = None,
) -> RunResult:
    """Counts new rows, chunk after chunk, until caught up or `seconds` have passed.

    Caught up means every row committed before this run began is counted: some window
    opened after the run began (by this run or one beside it) is closed. Comparing
    times rather than "the window I opened" keeps two runs at once from handing each
    other new windows forever.
    """
    clock = clock or SystemClock()
    deadline = None if seconds is None else clock.monotonic() + seconds
    chunks = scanned = counted = 0
    began: datetime | None = None
    while True:
        chunk = database.run(lambda conn: aggregate_chunk(conn, chunk_size, before_commit))
        chunks += 1
        scanned += chunk.scanned
        counted += chunk.counted
        began = began or chunk.started_at
        done = chunk.complete_through is not None and chunk.complete_through >= began
        if done or (deadline is not None and clock.monotonic() >= deadline):
            return RunResult(chunks, scanned, counted, done, chunk.complete_through)


# --- rebuild ------------------------------------------------------------------------

# Distinct app ids through the (app_id, occurred_at) index, one probe per app, instead
# of reading every row: a loose index scan.
_APPS = """
WITH RECURSIVE apps AS (
    (SELECT app_id FROM events ORDER BY app_id LIMIT 1)
    UNION ALL
    SELECT (SELECT e.app_id FROM events e WHERE e.app_id > apps.app_id ORDER BY e.app_id LIMIT 1)
    FROM apps WHERE apps.app_id IS NOT NULL
)
SELECT app_id FROM apps WHERE app_id IS NOT NULL
UNION
SELECT DISTINCT app_id FROM event_counts_daily WHERE day >= %s AND day < %s
"""

# A row is counted when its transaction is visible in `counted`, or, while a window is
# open, visible in `target` and at or before the position in the window's index order
# (exactly what aggregate_chunk has added so far).
_RECOUNT = """
WITH position AS (
    SELECT counted, target, coalesce(after_xid, '0'::xid8) AS after_xid,
           coalesce(after_event_id, %(nil)s::uuid) AS after_event_id
    FROM aggregate_position
),
fresh AS MATERIALIZED (
    SELECT e.app_id, e.event_name, e.status, e.occurred_at, e.payload
    FROM events e, position p
    WHERE e.app_id = %(app_id)s AND e.occurred_at >= %(start)s AND e.occurred_at < %(end)s
      AND (pg_visible_in_snapshot(e.store_xid, p.counted)
           OR (p.target IS NOT NULL AND pg_visible_in_snapshot(e.store_xid, p.target)
               AND (e.store_xid, e.event_id) <= (p.after_xid, p.after_event_id)))
),
hourly AS (
    INSERT INTO event_counts_hourly (app_id, hour, event_name, status, events)
    SELECT app_id, date_trunc('hour', occurred_at, 'UTC'), event_name, status, count(*)
    FROM fresh GROUP BY 1, 2, 3, 4
),
daily AS (
    INSERT INTO event_counts_daily (app_id, day, event_name, status, events)
    SELECT app_id, date_trunc('day', occurred_at, 'UTC'), event_name, status, count(*)
    FROM fresh GROUP BY 1, 2, 3, 4
)
INSERT INTO daily_users (app_id, day, user_id)
SELECT DISTINCT app_id, date_trunc('day', occurred_at, 'UTC'),
        CASE WHEN octet_length(payload ->> 'userId') <= 256 THEN payload ->> 'userId'
             ELSE 'sha256:' || encode(sha256(convert_to(payload ->> 'userId', 'UTF8')), 'hex')
        END
FROM fresh WHERE payload ->> 'userId' IS NOT NULL
"""


def _rebuild_day(conn: Connection, app_id: str, day: datetime) -> None:
    end = day + timedelta(days=1)
    with conn.cursor() as cur:
        # The same lock as a run's chunk: the position cannot move while this day is
        # recounted, so the recount and the incremental counts agree on every row.
        cur.execute("SELECT 1 FROM aggregate_position FOR UPDATE")
        cur.execute(
            "DELETE FROM event_counts_hourly WHERE app_id = %s AND hour >= %s AND hour < %s",
            (app_id, day, end),
        )
        cur.execute("DELETE FROM event_counts_daily WHERE app_id = %s AND day = %s", (app_id, day))
        cur.execute("DELETE FROM daily_users WHERE app_id = %s AND day = %s", (app_id, day))
        cur.execute(_RECOUNT, {"app_id": app_id, "start": day, "end": end, "nil": NIL_UUID})


def days_covering(start: datetime, end: datetime) -> list[datetime]:
    """Every UTC day that overlaps [start, end)."""
    first = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while first < end:
        days.append(first)
        first += timedelta(days=1)
    return days


class ExpiredHistory(Exception):
    """A rebuild would recount days whose events have partly expired into the archive."""

    def __init__(self, expired: dict[str, date]) -> None:
        self.expired = expired  # app id -> the latest day (received) it has archived
        listed = ", ".join(f"{app} (archived through {day})" for app, day in expired.items())
        super().__init__(
            f"events of {listed} have expired into the archive: a rebuild would count"
            " only what is left and lower the rollups. Rebuild from a later day, or pass"
            " --force to recount anyway."
        )


# An event's rollup day is the day it occurred, which is never after the day it was
# received (ingest corrects client clocks by sentAt): an archive of a received day at
# or after the first day rebuilt means some of the rebuilt days may have lost events.
_EXPIRED_SINCE = """
SELECT app_id, max(day) FROM event_archives
WHERE day >= %s AND app_id = ANY(%s)
GROUP BY app_id ORDER BY app_id
"""


def rebuild(
    database: Database,
    start: datetime,
    end: datetime,
    app_id: str | None = None,
    *,
    force: bool = False,
) -> int:
    """Recounts the rollups of every UTC day overlapping [start, end) from the events.

    For when history changed (events deleted or restored). One transaction per app and
    day, so a rebuild of a long range holds the position lock in short spells and the
    scheduled runs go on between them. Returns the (app, day) pairs rebuilt. Refuses
    (ExpiredHistory) days whose events may have expired, unless forced: the rollups are
    then the only count of them in the database.
    """
    days = days_covering(start, end)
    if not days:
        return 0

    def apps(conn: Connection) -> list[str]:
        with conn.cursor() as cur:
            cur.execute(_APPS, (days[0], days[-1] + timedelta(days=1)))
            return sorted(row[0] for row in cur.fetchall())

    def expired(conn: Connection) -> dict[str, date]:
        with conn.cursor() as cur:
            cur.execute(_EXPIRED_SINCE, (days[0].date(), app_ids))
            return dict(cur.fetchall())

    app_ids = [app_id] if app_id else database.run(apps)
    if not force:
        already_expired = database.run(expired)
        if already_expired:
            raise ExpiredHistory(already_expired)
    for app in app_ids:
        for day in days:
            database.run(functools.partial(_rebuild_day, app_id=app, day=day))
    return len(app_ids) * len(days)
