"""Retention: events past their app's days are archived to S3 (moto), then dropped or deleted.

The maintain run uses its own database role; the rollups are counted by the aggregate
function's code first, and must be the same after the raw events are gone.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import psycopg2
import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.retention import archive, maintain
from sluice.retention import partitions as p
from sluice.rollups import aggregate

from tests.aggregate.support import rollups, store, wire_event
from tests.retention.conftest import BUCKET
from tests.unit.test_events_table import migrated_columns
from tools import archive as tools_archive

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
# A number jsonb keeps exactly and a double would not: the archive must too.
PAYLOAD = '{"eventName": "buy", "total": 12345678901234567890.123456789, "note": "tab\\there"}'


def make_app(db, app_id: str, retention_days: int) -> None:
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO apps (app_id, name, retention_days) VALUES (%s, %s, %s)",
            (app_id, app_id, retention_days),
        )


def event(app_id: str, day: date, hour: int = 12) -> dict:
    at = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    made = wire_event(app_id, "buy", at, received_at=at, message_id=f"{app_id}-{day}-{hour}")
    made["payload"] = PAYLOAD
    return made


def stored(db, app_id: str) -> dict[str, date]:
    """event_id -> the UTC day it was received, of the app's events still in the table."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT event_id::text, (received_at AT TIME ZONE 'UTC')::date FROM events"
            " WHERE app_id = %s",
            (app_id,),
        )
        return dict(cur.fetchall())


def count_all(database_url: str) -> None:
    database = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    try:
        assert aggregate.run(database, 1000).caught_up
    finally:
        database.close()


def archived(bucket, app_id: str, day: date) -> list[dict]:
    return [json.loads(line) for line in bucket.read(app_id, day)]


@pytest.fixture
def history(db, maintainer):
    """Apps short (1 day) and long (3 days); events on 1, 5, 8 and 9 March.

    5-9 March have partitions; 1 March is in the default partition (no partition was
    made for it), so it can only be deleted row by row.
    """
    make_app(db, "app_short", 1)
    make_app(db, "app_long", 3)
    maintainer.run(lambda c: p.make_partitions(c, date(2026, 3, 5), date(2026, 3, 9)))
    days = [date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 8), date(2026, 3, 9)]
    events = [
        event(app, day, hour)
        for app in ("app_short", "app_long")
        for day in days
        for hour in (1, 2, 3)
    ]
    conn = psycopg2.connect(db.dsn)
    try:
        store(conn, events)
    finally:
        conn.close()
    return events


def test_an_archived_line_holds_every_column_of_the_event_but_the_store_transaction(db, maintainer):
    # Given an event stored
    day = date(2026, 3, 8)
    conn = psycopg2.connect(db.dsn)
    try:
        store(conn, [event("app_short", day)])
    finally:
        conn.close()

    # When its day is read for the archive
    def read(conn) -> list[dict]:
        lines = p.archive_lines(conn, "app_short", day, detached=False)
        return [json.loads(line) for line in lines]

    (line,) = maintainer.run(read)

    # Then the line names each column of the migrated table, but the transaction that
    # stored the row (the aggregator's position, no fact of the event)
    assert set(line) == set(migrated_columns(db)) - {"store_xid"}


def test_expired_events_are_archived_then_dropped_or_deleted_and_rollups_stay(
    db, database_url, maintainer, bucket, history
):
    # Given every event counted into the rollups
    count_all(database_url)
    counted = rollups(db)
    by_id = {e["event_id"]: e for e in history}

    # When the maintain run expires what is past each app's retention, in chunks of 2
    policy = maintain.MaintainPolicy(chunk_size=2)
    result = maintain.run(maintainer, bucket, NOW, policy)

    # Then 5 and 6 March, expired for both apps, were detached, archived and dropped whole
    assert result.days_dropped == [date(2026, 3, 5), date(2026, 3, 6)]
    assert [day for day, _ in maintainer.run(p.partition_days)][:3] == [
        date(2026, 3, 7),
        date(2026, 3, 8),
        date(2026, 3, 9),
    ]
    # And each app keeps exactly what its retention allows
    assert sorted(set(stored(db, "app_short").values())) == [date(2026, 3, 9)]
    assert sorted(set(stored(db, "app_long").values())) == [date(2026, 3, 8), date(2026, 3, 9)]
    # And everything that went is in the archive, exactly as stored
    for app_id, days in {
        "app_short": [date(2026, 3, 1), date(2026, 3, 5), date(2026, 3, 8)],
        "app_long": [date(2026, 3, 1), date(2026, 3, 5)],
    }.items():
        for day in days:
            lines = archived(bucket, app_id, day)
            assert len(lines) == 3, (app_id, day)
            for line in lines:
                sent = by_id[line["event_id"]]
                assert (line["app_id"], line["event_name"], line["status"]) == (
                    app_id,
                    "buy",
                    "valid",
                )
                # Every digit of the number kept (compared as text, not as doubles)
                assert json.loads(line["payload"], parse_float=str) == json.loads(
                    PAYLOAD, parse_float=str
                )
                assert line["message_id"] == sent["message_id"]
                assert datetime.fromisoformat(line["received_at"]) == datetime.fromisoformat(
                    sent["received_at"]
                )
                assert line["received_at"].endswith("+00:00")
    assert result.archived_events == 15 and result.deleted_events == 9
    # And the rollups are what they were
    assert rollups(db) == counted

    # When a late copy of an expired day arrives (a DLQ redrive), the next run archives
    # it as the day's next part and deletes it; what was archived is not archived again
    late = event("app_short", date(2026, 3, 8), hour=23)
    conn = psycopg2.connect(database_url)
    try:
        store(conn, [late])
    finally:
        conn.close()
    count_all(database_url)
    again = maintain.run(maintainer, bucket, NOW, policy)
    assert (again.archived_events, again.deleted_events, again.days_dropped) == (1, 1, [])
    assert late["event_id"] not in stored(db, "app_short")
    keys = list(bucket.keys(archive.day_prefix("app_short", date(2026, 3, 8))))
    assert [k.rsplit("/", 1)[1] for k in sorted(keys)] == [
        "part-0000.jsonl.gz",
        "part-0001.jsonl.gz",
    ]
    assert len(archived(bucket, "app_short", date(2026, 3, 8))) == 4
    # And a run with nothing to do does nothing
    idle = maintain.run(maintainer, bucket, NOW, policy)
    assert (idle.archived_events, idle.deleted_events, idle.days_dropped) == (0, 0, [])


def test_a_rebuild_refuses_days_whose_events_expired(db, database_url, maintainer, bucket, history):
    count_all(database_url)
    counted = rollups(db)
    maintain.run(maintainer, bucket, NOW)  # app_short keeps 9 March, app_long 8 and 9
    database = Database(DatabaseSettings(url=database_url, user="sluice_aggregate"))
    try:
        # When a rebuild reaches back to days whose events were archived and removed
        with pytest.raises(aggregate.ExpiredHistory) as refused:
            aggregate.rebuild(database, datetime(2026, 3, 8, tzinfo=UTC), NOW)
        # Then it names the apps and counts nothing: the rollups stay
        assert refused.value.expired == {"app_short": date(2026, 3, 8)}
        assert rollups(db) == counted
        with pytest.raises(aggregate.ExpiredHistory) as refused:
            aggregate.rebuild(database, datetime(2026, 3, 1, tzinfo=UTC), NOW, "app_long")
        assert refused.value.expired == {"app_long": date(2026, 3, 5)}
        # A rebuild of the days still whole goes on
        assert aggregate.rebuild(database, datetime(2026, 3, 9, tzinfo=UTC), NOW) > 0
        assert rollups(db) == counted
        # And --force recounts what is left, as asked: the expired days' counts change
        aggregate.rebuild(database, datetime(2026, 3, 1, tzinfo=UTC), NOW, force=True)
        assert rollups(db) != counted
    finally:
        database.close()


def test_nothing_is_expired_before_the_rollups_counted_it(db, maintainer, bucket, history):
    result = maintain.run(maintainer, bucket, NOW)
    assert (result.archived_events, result.deleted_events, result.days_dropped) == (0, 0, [])
    assert len(stored(db, "app_short")) == 12


def test_a_longer_retention_set_later_keeps_more(db, database_url, maintainer, bucket, history):
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET retention_days = 30")
    count_all(database_url)
    result = maintain.run(maintainer, bucket, NOW)
    assert (result.archived_events, result.days_dropped) == (0, [])
    assert len(stored(db, "app_short")) == len(stored(db, "app_long")) == 12


def test_a_detach_waits_for_no_long_reader_and_the_next_run_finishes(
    db, database_url, maintainer, bucket, history
):
    count_all(database_url)
    # Given a reader holding events (a long query) through the run
    reader = psycopg2.connect(database_url)
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")
        # (the transaction stays open: its lock on events stays)
        # When the run tries to detach 5 March, it gives up after its lock timeout
        result = maintain.run(maintainer, bucket, NOW)
        assert result.days_dropped == []
        assert date(2026, 3, 5) in set(stored(db, "app_long").values())
    finally:
        reader.rollback()
        reader.close()
    # Then the next run, without the reader, does it
    assert maintain.run(maintainer, bucket, NOW).days_dropped == [
        date(2026, 3, 5),
        date(2026, 3, 6),
    ]


def test_a_deleted_apps_events_and_archive_are_removed_in_chunks(
    db, database_url, maintainer, bucket, history
):
    count_all(database_url)
    maintain.run(maintainer, bucket, NOW)
    assert archived(bucket, "app_short", date(2026, 3, 1))
    # Given the app deleted (as the management API does: a record, in one transaction)
    with db.cursor() as cur:
        cur.execute("DELETE FROM apps WHERE app_id = 'app_short'")
        cur.execute(
            "INSERT INTO deleted_apps (app_id, deleted_at) VALUES ('app_short', %s)", (NOW,)
        )
    # When the next run goes
    result = maintain.run(maintainer, bucket, NOW, maintain.MaintainPolicy(chunk_size=2))
    # Then its events, their messageIds and its archive are gone; the other app's are not
    assert stored(db, "app_short") == {}
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_dedup WHERE app_id = 'app_short'")
        assert cur.fetchone() == (0,)
    assert list(bucket.keys("events/app_id=app_short/")) == []
    assert archived(bucket, "app_long", date(2026, 3, 1))
    assert len(stored(db, "app_long")) == 6
    assert result.deleted_events >= 3
    # And the record stays while queued events may still arrive, then goes
    assert result.deleted_apps_done == 0
    later = maintain.run(maintainer, bucket, NOW + timedelta(days=19))
    assert later.deleted_apps_done == 1


def test_the_read_command_prints_a_days_archive(
    db, database_url, maintainer, bucket, history, monkeypatch, capsysbinary
):
    count_all(database_url)
    maintain.run(maintainer, bucket, NOW)
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    assert tools_archive.main(["read", "app_long", "2026-03-05"]) == 0
    lines = capsysbinary.readouterr().out.splitlines()
    wanted = {
        e["event_id"] for e in history if e["app_id"] == "app_long" and "03-05" in e["received_at"]
    }
    assert {json.loads(line)["event_id"] for line in lines} == wanted
