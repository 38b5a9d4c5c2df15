import json
from pathlib import Path

import psycopg2
import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database, _connect_kwargs
from sluice.core.errors import DatabaseUnavailable

from tests.support import HangingEndpoint, SwitchableProxy, answered_within, wait_for


def test_in_aws_credentials_come_from_the_rds_managed_secret(aws):
    import boto3

    arn = boto3.client("secretsmanager").create_secret(
        Name="rds!cluster-sluice",
        SecretString=json.dumps({"username": "sluice_admin", "password": "s3cret-from-rds"}),
    )["ARN"]
    settings = DatabaseSettings(secret_arn=arn, host="proxy.example.internal", name="sluice")
    kwargs = _connect_kwargs(settings)
    assert kwargs["user"] == "sluice_admin"
    assert kwargs["password"] == "s3cret-from-rds"  # noqa: S105
    assert kwargs["host"] == "proxy.example.internal"
    assert kwargs["sslmode"] == "verify-full"
    assert Path(kwargs["sslrootcert"]).read_text().count("BEGIN CERTIFICATE") > 100


def test_a_secrets_manager_failure_is_an_unavailable_database(aws):
    # Given a secret that cannot be read (here: none by that ARN)
    database = Database(
        DatabaseSettings(
            secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-AbCdEf",  # noqa: S106
            host="proxy.example.internal",
        )
    )
    # Then callers see what they see of any unreachable database (stale cache, 503, batch back)
    with pytest.raises(DatabaseUnavailable):
        database.run(lambda conn: None)


def test_locally_the_url_is_used_as_is():
    kwargs = _connect_kwargs(DatabaseSettings(url="postgresql://u@h/db", connect_timeout=2))
    assert kwargs == {"dsn": "postgresql://u@h/db", "connect_timeout": 2}


def test_unreachable_database_is_reported_as_unavailable():
    database = Database(
        DatabaseSettings(url="postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    )
    with pytest.raises(DatabaseUnavailable):
        database.run(lambda conn: None)


def test_connection_is_reused_and_reopened_after_it_breaks(database_url):
    database = Database(DatabaseSettings(url=database_url))
    first = database.connection()
    assert database.connection() is first
    first.close()
    assert database.run(lambda conn: conn.cursor().execute("SELECT 1") or "ok") == "ok"
    assert database.connection() is not first
    database.close()


def _terminate_backend(database_url: str, pid: int) -> None:
    """What a database restart, or RDS Proxy dropping an idle client, does to a kept connection."""
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


def test_a_reused_connection_found_dead_is_replaced_and_the_work_runs_once(database_url):
    database = Database(DatabaseSettings(url=database_url))
    old_pid = database.run(lambda conn: _backend_pid(conn))
    _terminate_backend(database_url, old_pid)
    calls = []

    def work(conn):
        calls.append(conn)
        return _backend_pid(conn)

    new_pid = database.run(work)

    assert new_pid != old_pid
    assert len(calls) == 2  # once on the dead connection, once on the new one
    assert calls[0] is not calls[1]
    database.close()


def test_a_fresh_connection_that_dies_is_not_retried(database_url):
    database = Database(DatabaseSettings(url=database_url))
    calls = []

    def work(conn):
        calls.append(conn)
        _terminate_backend(database_url, _backend_pid(conn))
        _backend_pid(conn)  # fails: the server is gone

    with pytest.raises(DatabaseUnavailable):
        database.run(work)
    assert len(calls) == 1
    # and the next call starts afresh
    assert database.run(lambda conn: _backend_pid(conn)) > 0
    database.close()


def test_a_database_that_stays_down_after_the_retry_is_unavailable(database_url):
    proxy = SwitchableProxy(database_url)
    proxy.on()
    database = Database(DatabaseSettings(url=proxy.url, connect_timeout=1))
    database.run(lambda conn: _backend_pid(conn))
    proxy.off()
    with pytest.raises(DatabaseUnavailable):
        database.run(lambda conn: _backend_pid(conn))
    proxy.on()
    assert database.run(lambda conn: _backend_pid(conn)) > 0
    database.close()
    proxy.off()


def test_refused_statements_are_not_retried_and_roll_back(database_url):
    database = Database(DatabaseSettings(url=database_url))
    calls = []

    def work(conn):
        calls.append(1)
        with conn.cursor() as cur:
            cur.execute("SELECT 1/0")

    with pytest.raises(psycopg2.errors.DivisionByZero):
        database.run(work)
    assert calls == [1]
    assert database.run(lambda conn: _backend_pid(conn)) > 0  # the connection is usable
    database.close()


def _backend_pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_a_bare_database_error_without_sqlstate_counts_as_a_lost_connection(database_url):
    # psycopg2 raises this, not OperationalError, when the server vanishes before
    # libpq has marked the connection bad (seen after a database crash-restart).
    database = Database(DatabaseSettings(url=database_url))
    database.run(lambda conn: _backend_pid(conn))
    calls = []

    def work(conn):
        calls.append(conn)
        if len(calls) == 1:
            raise psycopg2.DatabaseError("server closed the connection unexpectedly")
        return _backend_pid(conn)

    assert database.run(work) > 0
    assert len(calls) == 2 and calls[0] is not calls[1]
    database.close()


# --- deadlines: a database that makes a caller wait is waited for once


def test_a_reused_connection_that_failed_after_a_wait_is_not_retried(database_url, clock):
    # Given a kept connection, and a call whose statement waits (as for RDS Proxy's
    # connection borrow timeout) and then finds the connection gone
    database = Database(DatabaseSettings(url=database_url), monotonic=clock.monotonic)
    database.run(lambda conn: _backend_pid(conn))
    calls = []

    def work(conn):
        calls.append(conn)
        clock.advance(2)  # the wait
        _terminate_backend(database_url, _backend_pid(conn))
        _backend_pid(conn)

    # Then it is not tried again on a new connection (a second wait of as long)
    with pytest.raises(DatabaseUnavailable):
        database.run(work)
    assert len(calls) == 1
    database.close()


def test_after_a_wait_that_failed_calls_fail_at_once_for_the_hold():
    # Given a "database" that takes connections and never answers
    endpoint = HangingEndpoint(accept=True)
    settings = DatabaseSettings(
        url=f"postgresql://nobody@127.0.0.1:{endpoint.port}/none",
        connect_timeout=2,
        unavailable_hold=30,
    )
    database = Database(settings)
    try:
        # When a call waits out the connect timeout
        with pytest.raises(DatabaseUnavailable):
            answered_within(10, lambda: database.run(lambda conn: None))
        # Then the next one fails without trying (the endpoint saw one connection)
        with pytest.raises(DatabaseUnavailable):
            answered_within(1, lambda: database.run(lambda conn: None))
        assert endpoint.connections == 1
    finally:
        endpoint.close()


def test_the_hold_ends():
    endpoint = HangingEndpoint(accept=True)
    settings = DatabaseSettings(
        url=f"postgresql://nobody@127.0.0.1:{endpoint.port}/none",
        connect_timeout=2,
        unavailable_hold=0.1,
    )
    database = Database(settings)

    def tries_again() -> bool:
        with pytest.raises(DatabaseUnavailable):
            answered_within(10, lambda: database.run(lambda conn: None))
        return endpoint.connections == 2

    try:
        assert not tries_again()  # the first wait
        wait_for(tries_again)
    finally:
        endpoint.close()
