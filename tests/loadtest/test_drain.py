"""The drain's release waits for a run of make dev's aggregator to catch up, seen by
the aggregator's position."""

import threading
from datetime import UTC, datetime

import psycopg2
import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.rollups import aggregate
from sluice.store.events_data import copy_events
from uuid_utils.compat import uuid7

from loadtest import drain


@pytest.fixture
def watching(db, database_url):
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def database(database_url):
    database = Database(DatabaseSettings(url=database_url))
    yield database
    database.close()


def _store(database_url: str, count: int) -> None:
    now = datetime.now(UTC).isoformat()
    rows = [
        {
            "event_id": str(uuid7()),
            "app_id": "app_drain",
            "event_name": "user_login",
            "payload": '{"eventName": "user_login", "userId": 1}',
            "status": "valid",
            "validation_errors": None,
            "message_id": None,
            "client_timestamp": None,
            "sent_at": None,
            "occurred_at": now,
            "received_at": now,
        }
        for _ in range(count)
    ]
    conn = psycopg2.connect(database_url)
    with conn:
        copy_events(conn, rows)
    conn.close()


def _a_minute_since_the_last_run(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE aggregate_position SET updated_at = updated_at - interval '1 minute'")


def test_without_a_run_of_the_aggregator_the_wait_ends_at_its_timeout(watching):
    since, _ = drain.aggregator_position(watching)
    assert drain.wait_for_aggregator(watching, since, timeout=0.5) is False


def test_a_run_that_catches_up_ends_the_wait_even_with_nothing_new_to_count(watching, database):
    _a_minute_since_the_last_run(watching)
    since, _ = drain.aggregator_position(watching)
    run = threading.Thread(target=aggregate.run, args=(database, 1000))
    run.start()
    try:
        assert drain.wait_for_aggregator(watching, since, timeout=30) is True
    finally:
        run.join()
    assert drain.aggregator_position(watching) != (since, True)


def test_only_a_run_that_comes_and_goes_at_once_ends_the_wait(watching, database, database_url):
    _store(database_url, 3)
    since, _ = drain.aggregator_position(watching)
    database.run(lambda conn: aggregate.aggregate_chunk(conn, chunk_size=1))  # 1 of 3

    chunk, caught_up = drain.aggregator_position(watching)
    assert chunk != since and not caught_up  # the window is still open
    assert drain.wait_for_aggregator(watching, since, timeout=0.5) is False

    aggregate.run(database, 1000)  # the rest, right after its chunk: the end of a catch-up
    assert drain.aggregator_position(watching)[1] is True
    assert drain.wait_for_aggregator(watching, chunk, timeout=0.5) is False

    # A minute later (as the schedule goes), a run with nothing new: the next is a minute on.
    _a_minute_since_the_last_run(watching)
    since, _ = drain.aggregator_position(watching)
    aggregate.run(database, 1000)
    assert drain.wait_for_aggregator(watching, since, timeout=5) is True
