"""Each function's database role can do what the function needs, and nothing else."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import errors
from sluice.schema.roles import UnknownRole, set_role_passwords

from tests.support import make_app


def as_role(database_url: str, role: str):
    conn = psycopg2.connect(database_url, user=role)
    conn.autocommit = True
    return conn


def run(conn, statement: str, *args):
    with conn.cursor() as cur:
        cur.execute(statement, args)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def app_id(db) -> str:
    return make_app(db)[0]


def test_ingest_reads_apps_keys_and_rules_and_nothing_else(database_url, app_id):
    conn = as_role(database_url, "sluice_ingest")
    for table in ("apps", "api_keys", "rules"):
        run(conn, f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    assert run(conn, "SELECT app_id FROM apps") == [(app_id,)]
    with pytest.raises(errors.InsufficientPrivilege):
        run(conn, "SELECT * FROM events")
    with pytest.raises(errors.InsufficientPrivilege):
        run(conn, "UPDATE api_keys SET revoked_at = now()")
    with pytest.raises(errors.InsufficientPrivilege):
        run(conn, "INSERT INTO apps (app_id, name) VALUES ('app_x', 'x')")
    conn.close()


def test_store_only_adds_events(database_url, app_id):
    conn = as_role(database_url, "sluice_store")
    run(
        conn,
        "INSERT INTO events (event_id, app_id, event_name, payload, status, occurred_at,"
        " received_at) VALUES (gen_random_uuid(), %s, 'e', '{}', 'valid', now(), now())",
        app_id,
    )
    for statement in (
        "SELECT * FROM events",
        "SELECT * FROM api_keys",
        "DELETE FROM events",
        "UPDATE events SET status = 'invalid'",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run(conn, statement)
    conn.close()


def test_passwords_are_set_as_scram_verifiers_and_only_for_function_roles(database_url, db):
    conn = psycopg2.connect(database_url)
    assert set_role_passwords(conn, [("sluice_store", "a-long-random-password")]) == [
        "sluice_store"
    ]
    stored = run(db, "SELECT rolpassword FROM pg_authid WHERE rolname = 'sluice_store'")
    assert stored[0][0].startswith("SCRAM-SHA-256$")
    assert "a-long-random-password" not in stored[0][0]
    for role in ("postgres", "sluice_store; DROP TABLE events", "Sluice_Ingest"):
        with pytest.raises(UnknownRole):
            set_role_passwords(conn, [(role, "x")])
    conn.close()


@pytest.mark.parametrize(
    "role, table",
    [
        ("sluice_ingest", "accounts"),  # password hashes
        ("sluice_ingest", "sessions"),  # session token hashes
        ("sluice_ingest", "email_challenges"),
        ("sluice_store", "accounts"),
        ("sluice_store", "sessions"),
        ("sluice_email", "sessions"),
        ("sluice_email", "accounts"),  # password hashes (it may read account_id, email)
        ("sluice_email", "email_challenges"),  # registrations' password hashes, secret hashes
        ("sluice_email", "apps"),
        ("sluice_accounts", "events"),
        ("sluice_accounts", "api_keys"),
        ("sluice_accounts", "rule_versions"),
        ("sluice_manage", "accounts"),  # password hashes
        ("sluice_manage", "email_challenges"),
        ("sluice_ingest", "rule_versions"),
        ("sluice_store", "event_id_keys"),
        ("sluice_accounts", "event_id_keys"),
        ("sluice_maintain", "accounts"),
        ("sluice_maintain", "email_challenges"),  # addresses, password hashes
        ("sluice_maintain", "sessions"),  # token hashes
    ],
)
def test_no_function_reads_what_is_not_its_own(database_url, role, table):
    conn = as_role(database_url, role)
    with pytest.raises(errors.InsufficientPrivilege):
        run(conn, f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    conn.close()


def test_manage_changes_apps_keys_and_rules_but_only_reads_sessions(database_url, app_id):
    conn = as_role(database_url, "sluice_manage")
    run(conn, "UPDATE apps SET name = 'renamed' WHERE app_id = %s", app_id)
    run(conn, "UPDATE api_keys SET revoked_at = now() WHERE app_id = %s", app_id)
    run(conn, "SELECT * FROM events WHERE app_id = %s", app_id)
    run(conn, "SELECT * FROM event_id_keys")
    for statement in (
        "UPDATE sessions SET ended_at = now()",
        "DELETE FROM api_keys",
        "DELETE FROM rule_versions",
        "UPDATE rule_versions SET schema = NULL",
        "INSERT INTO events (event_id, app_id, event_name, payload, status, occurred_at,"
        " received_at) VALUES (gen_random_uuid(), 'a', 'e', '{}', 'valid', now(), now())",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run(conn, statement)
    conn.close()


def test_manage_reads_the_rollups_for_stats_and_never_changes_them(database_url):
    conn = as_role(database_url, "sluice_manage")
    for table in ("event_counts_hourly", "event_counts_daily", "aggregate_position"):
        run(conn, f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
    for statement in (
        "DELETE FROM event_counts_hourly",
        "UPDATE event_counts_daily SET events = events + 1",
        "UPDATE aggregate_position SET complete_through = now()",
        "SELECT * FROM daily_users",  # the stats route does not count users
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run(conn, statement)
    conn.close()


def test_maintain_deletes_old_account_records_without_reading_what_they_hold(database_url, db):
    """It may name only the keys and times its purge needs (migrations/0009)."""
    conn = as_role(database_url, "sluice_maintain")
    for statement in (
        "SELECT challenge_id, expires_at FROM email_challenges",
        "SELECT challenge_id, state, claimed_until FROM email_deliveries",
        "SELECT session_id, expires_at, ended_at FROM sessions",
        "SELECT limit_key, sent_at FROM email_send_limits",
        "DELETE FROM email_challenges WHERE expires_at < now() - interval '7 days'",
        "DELETE FROM sessions WHERE least(expires_at, ended_at) < now() - interval '7 days'",
        "DELETE FROM email_send_limits WHERE now() - interval '1 hour' > ALL (sent_at)",
    ):
        run(conn, statement)
    for statement in (
        "SELECT email FROM email_challenges",
        "SELECT password_hash FROM email_challenges",
        "SELECT secret_hash FROM email_challenges",
        "SELECT ctid FROM email_challenges",
        "SELECT token_hash FROM sessions",
        "SELECT account_id FROM sessions",
        "SELECT template FROM email_deliveries",
        "DELETE FROM email_deliveries",  # they go with their challenge, by cascade
        "UPDATE sessions SET ended_at = now()",
        "UPDATE email_send_limits SET sent_at = '{}'",
        "INSERT INTO email_send_limits (limit_key, sent_at) VALUES ('\\x00', '{}')",
        "DELETE FROM accounts",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            run(conn, statement)
    conn.close()
