"""The maintain run purges account records nothing uses any more, as its own role.

Rows are written by the accounts and email functions' own SQL (sluice.accounts.accounts_data,
sluice.accounts.sessions, sluice.email.email_data) as those functions would; the run is
sluice.retention.maintain.run on the maintain role's connection, with only its grants.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
from sluice.accounts import accounts_data, sessions
from sluice.accounts.limits import LIMIT_WINDOW, limit_key
from sluice.core.clock import ManualClock
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.email import email_data
from sluice.retention import account_purge, maintain

from tests.support import wait_for

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
KEPT = maintain.ACCOUNT_RECORDS_KEPT
CUTOFF = NOW - KEPT  # gone before this: purged; at it or after: kept
TICK = timedelta(microseconds=1)


def account(conn, email: str = "owner@sluice.test") -> uuid.UUID:
    made = accounts_data.create_account(conn, email, "scrypt$unused", NOW - timedelta(days=30))
    assert made is not None
    return made


def challenge(conn, expires_at: datetime, email: str = "someone@sluice.test") -> uuid.UUID:
    return accounts_data.insert_challenge(
        conn,
        kind="register",
        email=email,
        account_id=None,
        password_hash="scrypt$chosen",  # noqa: S106 - a stand-in, never checked
        now=expires_at - timedelta(minutes=10),
        expires_at=expires_at,
    )


def session(conn, account_id: uuid.UUID, expires_at: datetime, ended_at=None) -> uuid.UUID:
    opened = sessions.open_session(conn, account_id, expires_at - sessions.SESSION_LIFETIME)
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET ended_at = %s WHERE token_hash = %s RETURNING session_id",
            (ended_at, sessions.token_hash(opened.token)),
        )
        return cur.fetchone()[0]


def send_limit(conn, address: str, sent_at: list[datetime]) -> bytes:
    key = limit_key("register", address)
    accounts_data.lock_send_times(conn, key)
    accounts_data.save_send_times(conn, key, sent_at)
    return key


def ids(conn, statement: str) -> set:
    with conn.cursor() as cur:
        cur.execute(statement)
        return {row[0] for row in cur.fetchall()}


def limit_keys(conn) -> set[bytes]:
    return {bytes(key) for key in ids(conn, "SELECT limit_key FROM email_send_limits")}


def run(maintainer, bucket, **policy) -> maintain.MaintainResult:
    return maintain.run(maintainer, bucket, NOW, maintain.MaintainPolicy(**policy))


def test_challenges_a_week_past_expiry_go_with_their_deliveries(db, maintainer, bucket):
    # Given challenges either side of the cutoff, exactly at it, and one still open
    long_gone = challenge(db, NOW - timedelta(days=30))
    just_past = challenge(db, CUTOFF - TICK)
    at_cutoff = challenge(db, CUTOFF)
    just_inside = challenge(db, CUTOFF + TICK)
    unexpired = challenge(db, NOW + timedelta(minutes=5))
    # And the email function's records of what it did for them
    for challenge_id in (long_gone, just_past, at_cutoff, unexpired):
        email_data.record_delivery(db, challenge_id, state="sent", now=NOW, template="verify")
    # And one long expired whose delivery (somehow) still holds a live claim
    claimed = challenge(db, NOW - timedelta(days=30))
    email_data.record_delivery(
        db, claimed, state="sending", now=NOW, claimed_until=NOW + timedelta(seconds=30)
    )

    # When the maintain run goes, as its own role
    result = run(maintainer, bucket)

    # Then exactly those expired before the cutoff are gone, their deliveries with them
    assert result.challenges_purged == 2
    kept = {at_cutoff, just_inside, unexpired, claimed}
    assert ids(db, "SELECT challenge_id FROM email_challenges") == kept
    assert ids(db, "SELECT challenge_id FROM email_deliveries") == {at_cutoff, unexpired, claimed}
    # And the open challenge is still usable: the email function finds it
    found = accounts_data.lock_pending_challenge(db, unexpired)
    assert found is not None and found.expires_at > NOW
    assert result.finished


def test_sessions_a_week_after_they_expired_or_ended_go_and_live_ones_stay(db, maintainer, bucket):
    owner = account(db)
    # Given sessions that expired or ended either side of the cutoff and exactly at it
    session(db, owner, CUTOFF - TICK)
    expired_at = session(db, owner, CUTOFF)
    expired_inside = session(db, owner, CUTOFF + TICK)
    session(db, owner, NOW + timedelta(hours=1), ended_at=CUTOFF - TICK)
    ended_at = session(db, owner, NOW + timedelta(hours=1), ended_at=CUTOFF)
    # An expired session ended later (a password reset ends every session): over at expiry
    session(db, owner, CUTOFF - timedelta(days=1), ended_at=NOW)
    # And a live one, made as sign-in makes it
    live = sessions.open_session(db, owner, NOW - timedelta(hours=1))

    result = run(maintainer, bucket)

    assert result.sessions_purged == 3
    live_id = sessions.find_session(db, live.token, NOW).session_id
    assert ids(db, "SELECT session_id FROM sessions") == {
        expired_at,
        expired_inside,
        ended_at,
        live_id,
    }
    # And the live session still signs its owner in
    assert sessions.find_session(db, live.token, NOW).account_id == owner


def test_rate_limit_rows_with_no_send_inside_the_window_go(db, maintainer, bucket):
    window_start = NOW - LIMIT_WINDOW
    just_past = send_limit(db, "a@sluice.test", [NOW - timedelta(hours=3), window_start - TICK])
    at_start = send_limit(db, "b@sluice.test", [window_start])
    recent = send_limit(db, "c@sluice.test", [NOW - timedelta(hours=2), NOW - timedelta(minutes=1)])
    send_limit(db, "d@sluice.test", [])  # a send SQS refused, taken back

    result = run(maintainer, bucket)

    assert result.send_limits_purged == 2
    assert limit_keys(db) == {at_start, recent}
    # And an address whose row went starts again from nothing, as the accounts code expects
    assert accounts_data.lock_send_times(db, just_past) == []


def test_a_send_counted_while_the_purge_waits_for_its_row_keeps_the_row(
    db, database_url, maintainer
):
    # Given an address whose last send is past the window
    key = send_limit(db, "busy@sluice.test", [NOW - timedelta(hours=2)])
    # And the accounts function counting a new send, the row locked, not yet committed
    accounts = psycopg2.connect(database_url, user="sluice_accounts")
    try:
        assert accounts_data.lock_send_times(accounts, key) == [NOW - timedelta(hours=2)]
        accounts_data.save_send_times(accounts, key, [NOW])
        # When the purge picks the row (as it was) and waits for its lock
        purged: list[int] = []
        purge = threading.Thread(
            target=lambda: purged.append(
                maintainer.run(
                    lambda c: account_purge.purge_send_limits(
                        c, last_sent_before=NOW - LIMIT_WINDOW, limit=10
                    )
                )
            )
        )
        purge.start()

        def purge_waits_for_the_lock() -> bool:
            with db.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE usename = 'sluice_maintain' AND wait_event_type = 'Lock'"
                )
                return cur.fetchone()[0] == 1

        wait_for(purge_waits_for_the_lock, timeout=20)
        accounts.commit()
        purge.join(timeout=20)
    finally:
        accounts.close()
    # Then the DELETE judged the row as it now is, and kept it: the new send counts
    assert purged == [0]
    assert accounts_data.read_send_times(db, key) == [NOW]


def test_more_rows_than_a_chunk_all_go_in_one_run(db, maintainer, bucket):
    owner = account(db)
    old = NOW - timedelta(days=10)
    for n in range(7):
        email_data.record_delivery(db, challenge(db, old), state="skipped", now=old)
        session(db, owner, old)
        send_limit(db, f"user{n}@sluice.test", [old])

    result = run(maintainer, bucket, chunk_size=2)

    assert (result.challenges_purged, result.sessions_purged, result.send_limits_purged) == (
        7,
        7,
        7,
    )
    for table in ("email_challenges", "email_deliveries", "sessions", "email_send_limits"):
        assert ids(db, f"SELECT count(*) FROM {table}") == {0}, table  # noqa: S608 - fixed names
    assert result.finished


class SlowDatabase:
    """The maintain role's database where each transaction takes a second of `clock`."""

    def __init__(self, database: Database, clock: ManualClock) -> None:
        self.database = database
        self.clock = clock

    def run(self, work):
        try:
            return self.database.run(work)
        finally:
            self.clock.advance(1)


def test_the_deadline_stops_the_purge_between_chunks_and_the_next_run_finishes(
    db, database_url, bucket
):
    owner = account(db)
    old = NOW - timedelta(days=10)
    for _ in range(7):
        challenge(db, old)
        session(db, owner, old)
    clock = ManualClock()
    maintainer = Database(DatabaseSettings(url=database_url, user="sluice_maintain"))
    try:
        # When a run has 4 seconds and every transaction takes one, in chunks of 2
        policy = maintain.MaintainPolicy(chunk_size=2)
        slow = SlowDatabase(maintainer, clock)
        first = maintain.run(slow, bucket, NOW, policy, seconds=4, clock=clock)  # type: ignore[arg-type]

        # Then it stopped between chunks of challenges, and started nothing after them
        assert first.finished is False
        assert 0 < first.challenges_purged < 7
        assert first.challenges_purged % 2 == 0  # whole chunks: each its own transaction
        assert ids(db, "SELECT count(*) FROM email_challenges") == {7 - first.challenges_purged}
        assert first.sessions_purged == 0
        assert ids(db, "SELECT count(*) FROM sessions") == {7}

        # When the next run has time, it finishes the work
        second = maintain.run(maintainer, bucket, NOW, policy, clock=clock)
    finally:
        maintainer.close()
    assert second.finished is True
    assert first.challenges_purged + second.challenges_purged == 7
    assert second.sessions_purged == 7
    assert ids(db, "SELECT count(*) FROM email_challenges") == {0}
    assert ids(db, "SELECT count(*) FROM sessions") == {0}
