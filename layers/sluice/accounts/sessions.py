"""Owner sessions: opaque bearer tokens, stored hashed, with a fixed lifetime.

`authenticate` is how any route that needs a signed-in owner (the management API)
finds one: `Authorization: Bearer <session token>`. Its SQL is here, so the role
that reads the `sessions` table is the one whose function imports this module.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sluice.core.clock import Clock
from sluice.core.db import Connection, Database
from sluice.core.errors import Unauthorized

# Fixed, not sliding: a stolen token is good for at most this long, whatever its use.
SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class Session:
    session_id: uuid.UUID
    account_id: uuid.UUID
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # given to the owner once, never stored
    expires_at: datetime


def token_hash(token: str) -> bytes:
    # 256 random bits: a fast hash is the right one (see keys.py for the same reasoning).
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer_token(headers: Mapping[str, str]) -> str:
    """The session token from `Authorization: Bearer <token>`; header names lower-cased."""
    scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Unauthorized("Sign in, then send 'Authorization: Bearer <session token>'.")
    return credentials.strip()


def open_session(
    conn: Connection, account_id: uuid.UUID, now: datetime, lifetime: timedelta = SESSION_LIFETIME
) -> NewSession:
    token = secrets.token_urlsafe(32)
    expires_at = now + lifetime
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO sessions (session_id, account_id, token_hash, created_at, expires_at)"
            " VALUES (%s, %s, %s, %s, %s)",
            (uuid.uuid4(), account_id, token_hash(token), now, expires_at),
        )
    return NewSession(token=token, expires_at=expires_at)


def find_session(conn: Connection, token: str, now: datetime) -> Session | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT session_id, account_id, expires_at FROM sessions"
            " WHERE token_hash = %s AND ended_at IS NULL AND expires_at > %s",
            (token_hash(token), now),
        )
        row = cur.fetchone()
    return Session(*row) if row else None


def end_session(conn: Connection, session_id: uuid.UUID, now: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET ended_at = %s WHERE session_id = %s AND ended_at IS NULL",
            (now, session_id),
        )


def end_all_sessions(conn: Connection, account_id: uuid.UUID, now: datetime) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE sessions SET ended_at = %s WHERE account_id = %s AND ended_at IS NULL",
            (now, account_id),
        )
        return cur.rowcount


def authenticate(database: Database, headers: Mapping[str, str], clock: Clock) -> Session:
    """The live session the request's bearer token names; 401 (Unauthorized) otherwise.

    Raises DatabaseUnavailable (503) when the database cannot be reached.
    """
    token = bearer_token(headers)
    session = database.run(lambda conn: find_session(conn, token, clock.now()))
    if session is None:
        raise Unauthorized("The session is unknown, ended or expired; sign in again.")
    return session
