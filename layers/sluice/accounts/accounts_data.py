"""The accounts function's SQL: accounts, challenges, send limits. Parameterised, no commits.

Tables: accounts (read, write), email_challenges (read, write), email_send_limits
(read, write: the recent request times of every limit key of sluice.accounts.limits, an
address per kind of request or a source, and the hashing slots). Sessions are in
sluice.accounts.sessions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sluice.accounts.challenges import Challenge
from sluice.core.db import Connection

_CHALLENGE_COLUMNS = (
    "challenge_id, kind, email, account_id, password_hash, secret_hash, expires_at,"
    " failed_tries, used_at"
)


def find_account(conn: Connection, email: str) -> uuid.UUID | None:
    """The address's account (columns the email function's role may read, too)."""
    with conn.cursor() as cur:
        cur.execute("SELECT account_id FROM accounts WHERE email = %s", (email,))
        row = cur.fetchone()
    return row[0] if row else None


def find_sign_in(conn: Connection, email: str) -> tuple[uuid.UUID, str] | None:
    """(account_id, password_hash) of the address's account."""
    with conn.cursor() as cur:
        cur.execute("SELECT account_id, password_hash FROM accounts WHERE email = %s", (email,))
        return cur.fetchone()


def account_email(conn: Connection, account_id: uuid.UUID) -> str | None:
    with conn.cursor() as cur:
        cur.execute("SELECT email FROM accounts WHERE account_id = %s", (account_id,))
        row = cur.fetchone()
    return row[0] if row else None


def create_account(
    conn: Connection, email: str, password_hash: str, now: datetime
) -> uuid.UUID | None:
    """The new account's id; None when the address already has one."""
    account_id = uuid.uuid4()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts"
            " (account_id, email, password_hash, created_at, password_changed_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (email) DO NOTHING",
            (account_id, email, password_hash, now, now),
        )
        return account_id if cur.rowcount == 1 else None


def set_password(
    conn: Connection, account_id: uuid.UUID, password_hash: str, now: datetime
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE accounts SET password_hash = %s, password_changed_at = %s"
            " WHERE account_id = %s",
            (password_hash, now, account_id),
        )


def lock_password_hash(conn: Connection, account_id: uuid.UUID) -> str | None:
    """The account's password hash, the row locked against a reset until the transaction ends."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT password_hash FROM accounts WHERE account_id = %s FOR SHARE", (account_id,)
        )
        row = cur.fetchone()
    return row[0] if row else None


def expire_pending_challenges(conn: Connection, email: str, now: datetime) -> int:
    """Ends every unused challenge of the address: codes and tokens answer "expired".

    Every challenge of an account names its address (a sign-in's, a reset's not yet
    mailed, a registration's), so the address finds them all. Waits for the row lock
    of a challenge being verified.
    """
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_challenges SET expires_at = %s"
            " WHERE email = %s AND used_at IS NULL AND expires_at > %s",
            (now, email, now),
        )
        return cur.rowcount


def insert_challenge(
    conn: Connection,
    *,
    kind: str,
    email: str,
    account_id: uuid.UUID | None,
    password_hash: str | None,
    now: datetime,
    expires_at: datetime,
) -> uuid.UUID:
    challenge_id = uuid.uuid4()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO email_challenges (challenge_id, kind, email, account_id, password_hash,"
            " created_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (challenge_id, kind, email, account_id, password_hash, now, expires_at),
        )
    return challenge_id


def delete_challenge(conn: Connection, challenge_id: uuid.UUID) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM email_challenges WHERE challenge_id = %s", (challenge_id,))


def lock_challenge(conn: Connection, challenge_id: uuid.UUID, kind: str) -> Challenge | None:
    """The challenge, locked until the transaction ends (tries are counted one at a time)."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_CHALLENGE_COLUMNS} FROM email_challenges"  # noqa: S608 - a constant
            " WHERE challenge_id = %s AND kind = %s FOR UPDATE",
            (challenge_id, kind),
        )
        row = cur.fetchone()
    return Challenge(*row) if row else None


def count_failed_try(conn: Connection, challenge_id: uuid.UUID) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_challenges SET failed_tries = failed_tries + 1 WHERE challenge_id = %s",
            (challenge_id,),
        )


def use_challenge(conn: Connection, challenge_id: uuid.UUID, now: datetime) -> None:
    """Spent: it opens nothing again, and a registration's password hash is not kept twice."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_challenges SET used_at = %s, password_hash = NULL"
            " WHERE challenge_id = %s",
            (now, challenge_id),
        )


def lock_send_times(conn: Connection, limit_key: bytes) -> list[datetime]:
    """The key's recent sends, its row locked so concurrent requests decide one at a time.

    One statement that inserts the row or locks the one there: the maintain function
    deletes rows with no recent send, and between an insert that found the row and a
    separate SELECT ... FOR UPDATE it could be gone.
    """
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO email_send_limits (limit_key, sent_at) VALUES (%s, '{}')"
            " ON CONFLICT (limit_key) DO UPDATE SET sent_at = email_send_limits.sent_at"
            " RETURNING sent_at",
            (limit_key,),
        )
        return list(cur.fetchone()[0])


def read_send_times(conn: Connection, limit_key: bytes) -> list[datetime]:
    with conn.cursor() as cur:
        cur.execute("SELECT sent_at FROM email_send_limits WHERE limit_key = %s", (limit_key,))
        row = cur.fetchone()
    return list(row[0]) if row else []


def save_send_times(conn: Connection, limit_key: bytes, sent_at: list[datetime]) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_send_limits SET sent_at = %s WHERE limit_key = %s", (sent_at, limit_key)
        )


_TAKE_FREE_SLOT = (
    "UPDATE email_send_limits SET sent_at = ARRAY[%(now)s::timestamptz]"
    " WHERE limit_key = (SELECT limit_key FROM email_send_limits"
    "   WHERE limit_key = ANY(%(keys)s::bytea[])"
    "   AND (cardinality(sent_at) = 0 OR sent_at[1] <= %(stale)s)"
    "   LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING limit_key"
)


def take_hash_slot(
    conn: Connection, keys: list[bytes], now: datetime, lease: timedelta
) -> bytes | None:
    """One free slot among `keys`, taken at `now`; None when every one is busy.

    Free: no time, or one older than `lease` (its invocation was killed). SKIP LOCKED:
    requests taking slots at once never wait for each other. Slot rows the maintain
    function deleted (free rows have no recent time) are made again.
    """
    params = {"now": now, "keys": keys, "stale": now - lease}
    with conn.cursor() as cur:
        cur.execute(_TAKE_FREE_SLOT, params)
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO email_send_limits (limit_key, sent_at)"
                " SELECT key, '{}' FROM unnest(%s::bytea[]) AS key"
                " ON CONFLICT (limit_key) DO NOTHING",
                (keys,),
            )
            if cur.rowcount:
                cur.execute(_TAKE_FREE_SLOT, params)
                row = cur.fetchone()
    return bytes(row[0]) if row else None


def free_hash_slot(conn: Connection, key: bytes, taken_at: datetime) -> None:
    """Gives the slot back, unless its lease ran out and another request took it since."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_send_limits SET sent_at = '{}'"
            " WHERE limit_key = %s AND sent_at = ARRAY[%s::timestamptz]",
            (key, taken_at),
        )


# --- what the email function's role may read and write (migrations/0012) ------------


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    challenge_id: uuid.UUID
    kind: str
    email: str
    account_id: uuid.UUID | None
    expires_at: datetime
    used_at: datetime | None


def lock_pending_challenge(conn: Connection, challenge_id: uuid.UUID) -> PendingChallenge | None:
    """The challenge, locked: two deliveries of one request decide one after the other."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT challenge_id, kind, email, account_id, expires_at, used_at"
            " FROM email_challenges WHERE challenge_id = %s FOR UPDATE",
            (challenge_id,),
        )
        row = cur.fetchone()
    return PendingChallenge(*row) if row else None


def set_secret(
    conn: Connection, challenge_id: uuid.UUID, secret_hash: bytes, account_id: uuid.UUID | None
) -> None:
    """Stores a new secret's hash (replacing one whose mail may never have gone out)."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE email_challenges SET secret_hash = %s, account_id = coalesce(account_id, %s)"
            " WHERE challenge_id = %s",
            (secret_hash, account_id, challenge_id),
        )
