"""stats_series: the rollups, every bucket present, zeros where nothing happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sluice.rollups import aggregate
from sluice.rollups.stats import InvalidStatsQuery, stats_series

from tests.aggregate.conftest import reset
from tests.aggregate.support import store, wire_event
from tests.aggregate.test_aggregate import PROPERTY_SETTINGS, START, made_up_events


def expected(db, table: str, column: str, app_id: str, start, end, name=None, status=None):
    with db.cursor() as cur:
        cur.execute(
            f"SELECT {column}, sum(events) FROM {table} WHERE app_id = %s"  # noqa: S608
            f" AND {column} >= %s AND {column} < %s"
            " AND (%s::text IS NULL OR event_name = %s) AND (%s::text IS NULL OR status = %s)"
            f" GROUP BY {column}",
            (app_id, start, end, name, name, status, status),
        )
        return {bucket: int(total) for bucket, total in cur.fetchall()}


@PROPERTY_SETTINGS
@given(
    events=st.lists(made_up_events(), min_size=1, max_size=40),
    granularity=st.sampled_from(["hour", "day"]),
    name=st.sampled_from([None, "login", "purchase"]),
    status=st.sampled_from([None, "valid", "invalid"]),
    offset=st.integers(0, 3 * 24),
    length=st.integers(1, 5 * 24),
)
def test_the_series_equals_the_rollups_and_fills_gaps_with_zeros(
    db, database, events, granularity, name, status, offset, length
):
    reset(db)
    store(db, events)
    aggregate.run(database, 100)
    start = START + timedelta(hours=offset, minutes=17)  # not on a bucket's edge
    end = start + timedelta(hours=length)

    series = stats_series(db, "app_a", start, end, granularity, name, status)

    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    first = start.replace(minute=0) if granularity == "hour" else start.replace(hour=0, minute=0)
    buckets = [b for b, _ in series.points]
    assert buckets[0] == first
    assert all(
        later - earlier == step for earlier, later in zip(buckets, buckets[1:], strict=False)
    )
    assert buckets[-1] < end <= buckets[-1] + step
    table, column = (
        ("event_counts_hourly", "hour") if granularity == "hour" else ("event_counts_daily", "day")
    )
    counts = expected(db, table, column, "app_a", first, buckets[-1] + step, name, status)
    assert dict(series.points) == {b: counts.get(b, 0) for b in buckets}
    assert sum(n for _, n in series.points) == sum(counts.values())


def test_thirty_days_of_hours_for_an_idle_app_are_all_zeros_and_complete(db, database):
    aggregate.run(database, 100)

    series = stats_series(db, "app_none", START, START + timedelta(days=30), "hour")

    assert len(series.points) == 720
    assert {n for _, n in series.points} == {0}
    assert series.complete_through is not None


def test_complete_through_is_none_before_any_run_and_then_the_last_snapshot(db, database):
    assert stats_series(db, "app_a", START, START + timedelta(days=1)).complete_through is None
    store(db, [wire_event("app_a", "login", START)])
    result = aggregate.run(database, 100)

    series = stats_series(db, "app_a", START, START + timedelta(hours=2))

    assert series.complete_through == result.complete_through
    assert series.points == [(START, 1), (START + timedelta(hours=1), 0)]


def test_times_in_other_zones_are_read_as_the_same_instants(db, database):
    store(db, [wire_event("app_a", "login", START + timedelta(hours=5))])
    aggregate.run(database, 100)
    plus_two = timezone(timedelta(hours=2))

    series = stats_series(
        db, "app_a", datetime(2026, 3, 1, 6, tzinfo=plus_two), START + timedelta(hours=6)
    )

    assert series.points == [(START + timedelta(hours=4), 0), (START + timedelta(hours=5), 1)]
    assert all(bucket.tzinfo == UTC for bucket, _ in series.points)


@pytest.mark.parametrize(
    ("start", "end", "granularity"),
    [
        (START, START, "hour"),  # empty
        (START, START - timedelta(hours=1), "hour"),  # backwards
        (START, START + timedelta(days=400), "hour"),  # too many buckets
        (START, START + timedelta(days=1), "minute"),
        (START.replace(tzinfo=None), START + timedelta(days=1), "hour"),
    ],
)
def test_malformed_queries_are_refused(db, start, end, granularity):
    with pytest.raises(InvalidStatsQuery):
        stats_series(db, "app_a", start, end, granularity)
