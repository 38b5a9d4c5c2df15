"""The rollups count every stored event once and only once, whatever happens around a run.

Real PostgreSQL throughout: the runs use the aggregate function's own role, and the
events are written in separate transactions as the store function writes them.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg2 import errors
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.core.errors import DatabaseUnavailable
from sluice.rollups import aggregate

from tests.aggregate.conftest import reset
from tests.aggregate.support import direct_counts, rollups, store, total_counted, wire_event

START = datetime(2026, 3, 1, tzinfo=UTC)

PROPERTY_SETTINGS = settings(
    derandomize=True,  # a fixed seed: CI and a developer see the same cases
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def made_up_events(draw) -> dict:
    return wire_event(
        draw(st.sampled_from(["app_a", "app_b"])),
        draw(st.sampled_from(["login", "purchase", "logout"])),
        # Four days of hours, in any order: a later batch often holds an earlier hour
        # (an event sent today about yesterday), whose count must change.
        START + timedelta(minutes=draw(st.integers(0, 4 * 24 * 60 - 1))),
        status=draw(st.sampled_from(["valid", "invalid"])),
        user_id=draw(st.one_of(st.none(), st.integers(0, 4), st.sampled_from(["4", "u-9"]))),
        # A few ids per app, so retries by messageId come up often and store nothing.
        message_id=draw(st.one_of(st.none(), st.sampled_from(["m1", "m2", "m3"]))),
    )


# Batches of events, each stored in its own transaction, with a run of some chunk size
# (or none) after each.
batches = st.lists(
    st.tuples(
        st.lists(made_up_events(), min_size=1, max_size=12),
        st.one_of(st.none(), st.integers(1, 7)),
    ),
    min_size=1,
    max_size=6,
)


@PROPERTY_SETTINGS
@given(batches=batches, final_chunk=st.integers(1, 50))
def test_rollups_equal_a_direct_count_of_the_events(db, database, batches, final_chunk):
    reset(db)
    for events, chunk_size in batches:
        store(db, events)  # autocommit off inside `with conn`: one transaction
        if chunk_size is not None:
            aggregate.run(database, chunk_size)

    result = aggregate.run(database, final_chunk)

    assert result.caught_up
    assert rollups(db) == direct_counts(db)
    # Running again over the same range changes nothing.
    again = aggregate.run(database, final_chunk)
    assert again.counted == 0
    assert rollups(db) == direct_counts(db)


def some_events(count: int, hours: int = 30) -> list[dict]:
    return [
        wire_event(
            f"app_{i % 3}",
            f"event_{i % 4}",
            START + timedelta(minutes=(i * 37) % (hours * 60)),
            user_id=i % 11,
        )
        for i in range(count)
    ]


def test_two_runs_at_once_count_each_event_once(db, database_url, database):
    for start in range(0, 600, 100):
        store(db, some_events(600)[start : start + 100])
    other = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    results = {}
    both = threading.Barrier(2)

    def run(name, db_):
        both.wait()
        results[name] = aggregate.run(db_, 7)  # many small chunks, so the runs interleave

    threads = [
        threading.Thread(target=run, args=("a", database)),
        threading.Thread(target=run, args=("b", other)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    other.close()

    assert results["a"].caught_up and results["b"].caught_up
    assert results["a"].counted + results["b"].counted == 600
    assert results["a"].counted > 0 and results["b"].counted > 0  # both took chunks
    assert rollups(db) == direct_counts(db)


class Crash(Exception):
    pass


def test_a_crash_between_reading_and_committing_loses_nothing(db, database):
    store(db, some_events(50))
    aggregate.run(database, 10, seconds=0)  # one chunk of ten
    assert total_counted(db) == 10
    chunks = 0

    def crash_on_the_third_chunk(conn):
        nonlocal chunks
        chunks += 1
        if chunks == 3:
            raise Crash

    with pytest.raises(Crash):
        aggregate.run(database, 10, before_commit=crash_on_the_third_chunk)
    assert total_counted(db) == 30  # two chunks committed, the third rolled back

    aggregate.run(database, 10)
    assert total_counted(db) == 50
    assert rollups(db) == direct_counts(db)


def test_a_connection_lost_at_commit_loses_nothing(db, database):
    store(db, some_events(40))

    def kill_my_session(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            (pid,) = cur.fetchone()
        with db.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))

    with pytest.raises(DatabaseUnavailable):
        aggregate.run(database, 15, before_commit=kill_my_session)
    assert total_counted(db) == 0

    assert aggregate.run(database, 15).counted == 40
    assert rollups(db) == direct_counts(db)


def test_a_store_transaction_open_across_a_run_is_counted_by_a_later_run(
    db, database_url, database
):
    store(db, some_events(20))
    held = psycopg2.connect(database_url)
    late = some_events(5, hours=2)
    with held.cursor() as cur:  # BEGIN ... the rows are written, not yet committed
        from sluice.store.events_data import insert_events

        insert_events(held, late)
        cur.execute("SELECT now()")
        (began,) = cur.fetchone()
    # Stored and committed while that transaction stays open: the first run counts them,
    # and the second, whose window starts at the open transaction, must not again.
    store(db, some_events(7))

    first = aggregate.run(database, 100)
    held.commit()
    held.close()

    assert first.caught_up and first.counted == 27
    # A watermark on stored_at would have moved past these rows already: they carry the
    # time their transaction began, before the run that could not see them.
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM events WHERE stored_at = %s AND stored_at < %s",
            (began, first.complete_through),
        )
        assert cur.fetchone() == (5,)
    second = aggregate.run(database, 100)
    assert second.counted == 5
    assert total_counted(db) == 32
    assert rollups(db) == direct_counts(db)


def test_runs_read_bounded_chunks_and_catch_up_over_several_runs(db, database):
    for start in range(0, 90, 30):
        store(db, some_events(90)[start : start + 30])
    runs = []
    while not runs or not runs[-1].caught_up:
        runs.append(aggregate.run(database, 20, seconds=0))  # out of time after one chunk
        assert len(runs) < 20

    assert all(r.chunks == 1 and r.scanned <= 20 for r in runs)
    assert [r.caught_up for r in runs] == [False] * (len(runs) - 1) + [True]
    assert sum(r.counted for r in runs) == 90
    with db.cursor() as cur:
        cur.execute("SELECT target, complete_through FROM aggregate_position")
        target, complete_through = cur.fetchone()
    assert target is None and complete_through is not None
    assert rollups(db) == direct_counts(db)


def _blocks_read_by_a_run(database_url: str) -> int:
    """Buffers of the events table and its indexes one run fetched (one chunk).

    On a connection of its own: a backend keeps its table counts until it flushes them,
    so an earlier run on the same connection could still be counted.
    """
    fetched: list[int] = []

    def count(conn) -> None:  # inside the chunk's transaction: its own fetches so far
        with conn.cursor() as cur:
            cur.execute(
                "SELECT sum(pg_stat_get_xact_blocks_fetched(oid)) FROM pg_class"
                " WHERE relname LIKE 'events%%'"
            )
            fetched.append(int(cur.fetchone()[0]))

    database = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    try:
        result = aggregate.run(database, 1_000, before_commit=count)
    finally:
        database.close()
    assert result.chunks == 1 and result.caught_up
    return fetched[0]


def test_what_a_run_reads_does_not_grow_with_what_was_counted_before(db, database_url, database):
    # A window's page is found by the index from its oldest transaction on. Starting the
    # scan at the table's first row instead read every row counted before: seconds a
    # run on a day of a few million events.
    store(db, some_events(100))
    aggregate.run(database, 1_000)
    store(db, some_events(10))
    after_a_little = _blocks_read_by_a_run(database_url)
    for _ in range(4):
        store(db, some_events(5_000))
    aggregate.run(database, 50_000)
    store(db, some_events(10))
    after_much_more = _blocks_read_by_a_run(database_url)

    assert after_much_more <= after_a_little + 10, (after_a_little, after_much_more)


def test_an_idle_run_counts_nothing_and_moves_completeness_on(db, database):
    store(db, some_events(10))
    first = aggregate.run(database, 100)
    second = aggregate.run(database, 100)

    assert (first.counted, second.counted) == (10, 0)
    assert second.chunks == 1
    assert second.complete_through > first.complete_through


def test_late_events_change_the_count_of_their_own_hour(db, database):
    yesterday = START + timedelta(hours=3, minutes=10)
    store(db, [wire_event("app_a", "login", yesterday)])
    aggregate.run(database, 100)
    store(
        db,
        [
            wire_event(
                "app_a",
                "login",
                yesterday + timedelta(minutes=20),
                received_at=yesterday + timedelta(days=1),
            )
        ],
    )
    aggregate.run(database, 100)

    with db.cursor() as cur:
        cur.execute("SELECT hour, events FROM event_counts_hourly")
        assert cur.fetchall() == [(START + timedelta(hours=3), 2)]


def test_long_user_ids_are_kept_as_a_hash_and_counted(db, database):
    long_id = "u" * 5000  # past what a btree entry can hold
    day = START + timedelta(hours=1)
    store(db, [wire_event("app_a", "login", day, user_id=u) for u in (long_id, long_id, 7, "7")])

    aggregate.run(database, 100)

    with db.cursor() as cur:
        cur.execute("SELECT user_id FROM daily_users ORDER BY user_id")
        users = [u for (u,) in cur.fetchall()]
    assert users[0] == "7"  # 7 and "7" are one user
    assert users[1].startswith("sha256:") and len(users[1]) == 71
    assert len(users) == 2


def test_rebuild_recounts_a_range_after_history_changed(db, database):
    store(db, some_events(200, hours=72))
    aggregate.run(database, 50)
    # History changes behind the rollups' back: a day of one app's events is deleted.
    with db.cursor() as cur:
        cur.execute(
            "DELETE FROM events WHERE app_id = 'app_1' AND occurred_at >= %s AND occurred_at < %s",
            (START + timedelta(days=1), START + timedelta(days=2)),
        )
        assert cur.rowcount > 0
    assert rollups(db) != direct_counts(db)

    pairs = aggregate.rebuild(
        database, START + timedelta(days=1, hours=5), START + timedelta(days=2)
    )

    assert pairs == 3  # three apps, one day
    assert rollups(db) == direct_counts(db)


def test_rebuild_in_the_middle_of_a_window_agrees_with_the_run_that_finishes_it(db, database):
    store(db, some_events(100, hours=48))
    aggregate.run(database, 30, seconds=0)  # a window open, 30 rows in
    store(db, some_events(10, hours=48))  # not in that window

    aggregate.rebuild(database, START, START + timedelta(days=2))
    aggregate.run(database, 30)

    assert total_counted(db) == 110
    assert rollups(db) == direct_counts(db)


def test_the_aggregate_role_reads_events_and_writes_only_rollups(database):
    conn = database.connection()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        conn.rollback()
        for statement in (
            "DELETE FROM events",
            "INSERT INTO apps (app_id, name) VALUES ('app_x', 'x')",
            "SELECT * FROM api_keys",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                cur.execute(statement)
            conn.rollback()


def test_a_transaction_committing_inside_an_open_window_is_counted_once(db, database_url, database):
    store(db, some_events(30))
    held = psycopg2.connect(database_url)
    from sluice.store.events_data import insert_events

    insert_events(held, some_events(5))  # open when the window's snapshot is taken...
    # ...and a later transaction has committed, so the open one's id is inside the
    # window's range of ids, though not in its snapshot.
    store(db, some_events(3))
    aggregate.run(database, 10, seconds=0)  # the window opens; 10 rows in
    held.commit()  # now visible to the window's later reads, but not in its snapshot
    held.close()

    aggregate.run(database, 10)

    assert total_counted(db) == 38
    assert rollups(db) == direct_counts(db)
