"""Day partitions and deduplication: no event refused at a boundary, no retry stored twice.

Real PostgreSQL; events go in through the store function's own path (COPY, and the
INSERT fallback a redelivery takes), as the store role.
"""

from __future__ import annotations

import re
import shutil
import uuid
from datetime import UTC, date, datetime, timedelta

import orjson
import psycopg2
from sluice.retention import maintain
from sluice.retention import partitions as p
from sluice.schema.migrate import apply_migrations
from sluice.store.store_batch import QueueRecord, store_records

from tests.aggregate.support import wire_event
from tests.support import REPO_ROOT, scratch_database

MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def store(database, *batches: list[dict]) -> int:
    """Each list of events is one SQS message; all of them one store invocation."""
    records = [
        QueueRecord(str(uuid.uuid4()), orjson.dumps({"version": 2, "events": events}).decode())
        for events in batches
    ]
    result = store_records(database, records)
    assert result.failed == []
    return result.stored


def where(db, event_id: str) -> str:
    with db.cursor() as cur:
        cur.execute("SELECT tableoid::regclass::text FROM events WHERE event_id = %s", (event_id,))
        return cur.fetchone()[0]


def count(db, sql: str = "SELECT count(*) FROM events", *args) -> int:
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def test_each_event_goes_to_its_days_partition_and_the_rest_to_the_default(db, maintainer, storer):
    # Given partitions for 1 and 2 March only
    assert maintainer.run(lambda c: p.make_partitions(c, date(2026, 3, 1), date(2026, 3, 2))) == 2
    # When events arrive either side of midnight, and with an ingest clock far off
    received = {
        "before_midnight": MIDNIGHT - timedelta(microseconds=1),
        "midnight": MIDNIGHT,
        "far_future": datetime(2099, 1, 1, 12, tzinfo=UTC),
        "far_past": datetime(1999, 12, 31, tzinfo=UTC),
    }
    events = {name: wire_event("app_a", name, at, received_at=at) for name, at in received.items()}
    assert store(storer, list(events.values())) == 4
    # Then every one is stored: each in its day's partition, or in the default one
    assert {name: where(db, e["event_id"]) for name, e in events.items()} == {
        "before_midnight": "events_p20260301",
        "midnight": "events_p20260302",
        "far_future": "events_default",
        "far_past": "events_default",
    }
    # And making the far day's partition later moves its row in, unchanged
    with db.cursor() as cur:
        cur.execute("SELECT store_xid::text FROM events WHERE event_name = 'far_future'")
        xid = cur.fetchone()[0]
    assert maintainer.run(lambda c: p.make_partitions(c, date(2099, 1, 1), date(2099, 1, 1))) == 1
    assert where(db, events["far_future"]["event_id"]) == "events_p20990101"
    assert count(db, "SELECT count(*) FROM events WHERE store_xid::text = %s", xid) >= 1
    assert count(db) == 4
    # And making partitions again makes none twice
    assert maintainer.run(lambda c: p.make_partitions(c, date(2026, 3, 1), date(2026, 3, 2))) == 0


def test_a_run_makes_the_next_week_of_partitions(db, maintainer, bucket):
    result = maintain.run(maintainer, bucket, MIDNIGHT + timedelta(hours=5))
    assert result.partitions_made == 8
    days = [day for day, attached in maintainer.run(p.partition_days) if attached]
    assert days == [date(2026, 3, 2) + timedelta(days=n) for n in range(8)]


def test_a_retry_inside_the_window_adds_no_row_across_a_partition_boundary(
    db, maintainer, storer, bucket
):
    maintainer.run(lambda c: p.make_partitions(c, date(2026, 3, 1), date(2026, 3, 2)))
    # Given an event with a messageId received a moment before midnight
    first = wire_event(
        "app_a", "buy", MIDNIGHT, message_id="m-1", received_at=MIDNIGHT - timedelta(seconds=1)
    )
    assert store(storer, [first]) == 1
    # When the client retries it after midnight: a new event id, the next day's partition
    retry = wire_event(
        "app_a", "buy", MIDNIGHT, message_id="m-1", received_at=MIDNIGHT + timedelta(seconds=1)
    )
    other = wire_event(
        "app_a", "buy", MIDNIGHT, message_id="m-2", received_at=MIDNIGHT + timedelta(seconds=1)
    )
    # (the COPY of its messageId fails, and the INSERT path skips the retry alone)
    assert store(storer, [retry, other]) == 1
    # And SQS redelivers the first event itself beside a fresh one (the INSERT path)
    fresh = wire_event("app_a", "buy", MIDNIGHT, received_at=MIDNIGHT + timedelta(seconds=2))
    assert store(storer, [first], [fresh]) == 1
    # And a batch holds two events of one messageId: the first one wins
    twin_a = wire_event("app_a", "buy", MIDNIGHT, message_id="m-3", received_at=MIDNIGHT)
    twin_b = wire_event("app_a", "buy", MIDNIGHT, message_id="m-3", received_at=MIDNIGHT)
    assert store(storer, [twin_a, twin_b]) == 1
    # Then each messageId is one row, and the same app's other ids are untouched
    with db.cursor() as cur:
        cur.execute("SELECT message_id, event_id::text FROM events ORDER BY 1 NULLS LAST")
        rows = cur.fetchall()
    assert rows == [
        ("m-1", first["event_id"]),
        ("m-2", other["event_id"]),
        ("m-3", twin_a["event_id"]),
        (None, fresh["event_id"]),
    ]
    # And another app may use the same messageId
    assert store(storer, [wire_event("app_b", "buy", MIDNIGHT, message_id="m-1")]) == 1

    # When the window (72 hours) has passed, the messageId is forgotten...
    later = MIDNIGHT + maintain.MaintainPolicy().dedup_window + timedelta(minutes=1)
    assert maintain.run(maintainer, bucket, later).dedup_forgotten >= 3
    # ...so a retry that late is a new event (docs/sending-events.md states the window)
    late = wire_event("app_a", "buy", MIDNIGHT, message_id="m-1", received_at=later)
    assert store(storer, [late]) == 1
    # But an SQS redelivery is still turned away by the primary key, whatever its age
    assert store(storer, [first], [wire_event("app_a", "x", MIDNIGHT)]) == 1
    assert count(db, "SELECT count(*) FROM events WHERE event_id = %s", first["event_id"]) == 1


def test_the_migration_converts_a_populated_events_table(postgres_server_url, tmp_path):
    # Given a database at migration 0006 with events on two days, counted and not
    before = tmp_path / "before"
    before.mkdir()
    for path in sorted((REPO_ROOT / "migrations").glob("000[1-6]_*.sql")):
        shutil.copy(path, before / path.name)
    with scratch_database(postgres_server_url, "sluice_convert") as url:
        conn = psycopg2.connect(url)
        try:
            apply_migrations(conn, before)
            day1 = datetime(2026, 2, 27, 23, 59, tzinfo=UTC)
            day2 = datetime(2026, 2, 28, 0, 1, tzinfo=UTC)
            with conn, conn.cursor() as cur:
                for n, received in enumerate([day1, day1, day2]):
                    cur.execute(
                        "INSERT INTO events (event_id, app_id, event_name, payload, status,"
                        " message_id, occurred_at, received_at)"
                        " VALUES (gen_random_uuid(), 'app_a', 'e', %s, 'valid', %s, %s, %s)",
                        (
                            '{"n": 12345678901234567890.5}',
                            f"m{n}" if n < 2 else None,
                            received,
                            received,
                        ),
                    )
            columns = (
                "event_id, app_id, event_name, payload::text, status, validation_errors,"
                " message_id, client_timestamp, sent_at, occurred_at, received_at, stored_at,"
                " store_xid::text"
            )
            with conn, conn.cursor() as cur:
                cur.execute(f"SELECT {columns} FROM events ORDER BY event_id")  # noqa: S608
                rows = cur.fetchall()

            # When every migration is applied
            assert "0007_partitioned_events.sql" in apply_migrations(conn, REPO_ROOT / "migrations")

            # Then the same rows are there, each in its day's partition
            with conn, conn.cursor() as cur:
                cur.execute(f"SELECT {columns} FROM events ORDER BY event_id")  # noqa: S608
                assert cur.fetchall() == rows
                cur.execute(
                    "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1"
                )
                assert cur.fetchall() == [("events_p20260227", 2), ("events_p20260228", 1)]
                cur.execute("SELECT relkind FROM pg_class WHERE relname = 'events'")
                assert cur.fetchone() == ("p",)
                # And the messageIds are remembered: a retry of one stores nothing
                cur.execute("SELECT message_id FROM event_dedup ORDER BY 1")
                assert cur.fetchall() == [("m0",), ("m1",)]
                cur.execute("SELECT to_regclass('events_unpartitioned')")
                assert cur.fetchone() == (None,)
                # And partitions stand ready from the oldest day to a week from now
                cur.execute(
                    "SELECT max(day) - (now() AT TIME ZONE 'UTC')::date FROM event_partitions"
                )
                assert cur.fetchone() == (7,)
        finally:
            conn.close()


def test_an_event_found_by_id_is_looked_for_in_the_days_around_its_id_only(
    db, maintainer, storer, database_url
):
    from psycopg2.extras import LoggingConnection
    from sluice.intake import event_ids
    from sluice.manage.manage_data import find_event
    from uuid_utils.compat import uuid7

    # Given 20 days of partitions and an event received on the 10th, its id made then
    maintainer.run(lambda c: p.make_partitions(c, date(2026, 3, 1), date(2026, 3, 20)))
    at = datetime(2026, 3, 10, 12, tzinfo=UTC)
    millis = int(at.timestamp() * 1000)
    event_id = uuid.UUID(int=millis << 80 | uuid7().int & (2**80 - 1))
    event = wire_event("app_a", "found", at) | {"event_id": str(event_id)}
    assert store(storer, [event]) == 1
    assert event_ids.issued_at(event_id) == at

    # When the management API's lookup runs (its statement recorded as sent)
    sent: list[str] = []

    class Recorder:
        def write(self, statement: str) -> None:
            sent.append(statement)

    conn = psycopg2.connect(database_url, connection_factory=LoggingConnection)
    conn.initialize(Recorder())
    try:
        row = find_event(conn, "app_a", event_id, event_ids.issued_at(event_id))
        assert row is not None and row["event_name"] == "found"
        with conn.cursor() as cur:
            cur.execute("EXPLAIN " + sent[-1])
            plan = "\n".join(line for (line,) in cur.fetchall())
    finally:
        conn.close()
    # Then it probes the partitions of the days either side, not the other 17
    searched = sorted(set(re.findall(r"events_(p\d{8}|default)", plan)))
    assert searched == ["p20260309", "p20260310", "p20260311"], plan


def test_a_skipped_copys_id_is_kept_while_it_could_read_queued_or_lead_to_its_row(
    db, maintainer, storer, bucket
):
    # Given a retry skipped for its messageId in an app that keeps events 30 days, one
    # that keeps them a day, and one deleted since
    retention = {"app_long": 30, "app_short": 1, "app_gone": 30}
    with db.cursor() as cur:
        for app_id, days in retention.items():
            cur.execute(
                "INSERT INTO apps (app_id, name, retention_days) VALUES (%s, %s, %s)",
                (app_id, app_id, days),
            )
    retries = {}
    for app_id in retention:
        first = wire_event(app_id, "buy", MIDNIGHT, message_id="m", received_at=MIDNIGHT)
        retry = wire_event(app_id, "buy", MIDNIGHT, message_id="m", received_at=MIDNIGHT)
        assert store(storer, [first]) == 1
        assert store(storer, [retry]) == 0
        retries[app_id] = retry["event_id"]
    with db.cursor() as cur:
        cur.execute("DELETE FROM apps WHERE app_id = 'app_gone'")

    def kept() -> list[str]:
        with db.cursor() as cur:
            cur.execute("SELECT app_id FROM event_duplicates ORDER BY 1")
            return [app_id for (app_id,) in cur.fetchall()]

    # When maintain runs while the copies' ids could still read `queued` (18 days): all kept
    maintain.run(maintainer, bucket, MIDNIGHT + timedelta(days=17))
    assert kept() == ["app_gone", "app_long", "app_short"]
    # After 18 days: only where the original is still kept (its app's 30 days)
    result = maintain.run(maintainer, bucket, MIDNIGHT + timedelta(days=19))
    assert kept() == ["app_long"]
    assert result.duplicates_forgotten == 2
    # And once the original has expired too, that one goes as well
    maintain.run(maintainer, bucket, MIDNIGHT + timedelta(days=32))
    assert kept() == []
