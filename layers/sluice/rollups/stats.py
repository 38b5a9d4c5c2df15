"""Reading the rollups: what `GET /api/apps/{app_id}/stats` will answer from.

Only the rollup tables are read (never events), in one indexed query: the hourly or
daily counts of one app in a time range, summed over event names and statuses unless
one is asked for, with a zero for every bucket that has none, and the time up to which
the rollups are complete (every event stored before it is counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sluice.core.db import Connection
from sluice.core.errors import RequestRejected

GRANULARITIES = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# A year of hours: bounds the answer (and the series the database builds) whatever is asked.
MAX_BUCKETS = 366 * 24


class InvalidStatsQuery(RequestRejected):
    code = "invalid_stats_query"


@dataclass(frozen=True, slots=True)
class StatsSeries:
    granularity: str
    points: list[tuple[datetime, int]]  # (bucket start in UTC, events), every bucket
    # Every event stored before this time is in the counts (None: no run has finished).
    # Rows stored later may be counted already, in part: the counts only ever grow to it.
    complete_through: datetime | None


# The table and its time column are chosen from GRANULARITIES, never from input; the
# rest are parameters. With the literals psycopg2 inlines, `NULL IS NULL OR ...` folds
# away, so a query for one event name uses the (app_id, event_name, bucket) index and
# one for all names the primary key's (app_id, bucket) prefix. Buckets are bounded by the
# last one's start (not the end of it, which is year 10000 for the last hour of 9999),
# and come back as UTC wall times, so the session's time zone cannot shift year 1 into
# BC, which Python's datetime cannot hold.
_SERIES = {
    name: f"""
WITH counts AS (
    SELECT {column} AS bucket, sum(events)::bigint AS events
    FROM {table}
    WHERE app_id = %(app_id)s AND {column} >= %(start)s AND {column} <= %(last)s
      AND (%(event_name)s::text IS NULL OR event_name = %(event_name)s)
      AND (%(status)s::text IS NULL OR status = %(status)s)
    GROUP BY {column}
)
SELECT b.bucket AT TIME ZONE 'UTC', coalesce(c.events, 0),
       (SELECT complete_through FROM aggregate_position)
FROM generate_series(%(start)s::timestamptz, %(last)s::timestamptz, %(step)s::interval) AS b(bucket)
LEFT JOIN counts c ON c.bucket = b.bucket
ORDER BY b.bucket
"""  # noqa: S608 - table and column names are this module's constants
    for name, table, column in (
        ("hour", "event_counts_hourly", "hour"),
        ("day", "event_counts_daily", "day"),
    )
}


def _floor(moment: datetime, granularity: str) -> datetime:
    moment = moment.astimezone(UTC)
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if granularity == "day" else moment


def stats_series(
    conn: Connection,
    app_id: str,
    start: datetime,
    end: datetime,
    granularity: str = "hour",
    event_name: str | None = None,
    status: str | None = None,
) -> StatsSeries:
    """The buckets from the one holding `start` to the one before `end` (end exclusive)."""
    if granularity not in GRANULARITIES:
        raise InvalidStatsQuery(f"granularity must be one of {', '.join(GRANULARITIES)}")
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidStatsQuery("from and to need a time zone (UTC: a trailing Z)")
    step = GRANULARITIES[granularity]
    first = _floor(start, granularity)
    buckets = -(-(end - first) // step)  # ceiling: a partial last bucket is included
    if buckets < 1:
        raise InvalidStatsQuery("to must be after from")
    if buckets > MAX_BUCKETS:
        raise InvalidStatsQuery(f"at most {MAX_BUCKETS} {granularity}s at a time")
    with conn.cursor() as cur:
        cur.execute(
            _SERIES[granularity],
            {
                "app_id": app_id,
                "start": first,
                "last": first + (buckets - 1) * step,
                # A fixed length: "1 day" would follow the session time zone's DST.
                "step": f"{int(step.total_seconds())} seconds",
                "event_name": event_name,
                "status": status,
            },
        )
        rows = cur.fetchall()
    return StatsSeries(
        granularity=granularity,
        points=[(bucket.replace(tzinfo=UTC), events) for bucket, events, _ in rows],
        complete_through=rows[0][2] if rows else None,
    )
