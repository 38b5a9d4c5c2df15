"""Event ids that say who issued them: how the management API tells `queued` from never issued.

Ingest answers an event id before the event is stored (the store function writes it
seconds later, or after a database outage, up to the dead-letter queue's retention).
A lookup that finds no row must tell "still on its way" from "never issued". Ingest
cannot write (its role only reads), so instead of keeping a record of every id it
hands out, each id proves itself: a UUIDv7 whose last 32 random bits are an HMAC of
the app id, the time and the bits above it, keyed with a secret made by the
migration (event_id_keys) that only ingest and manage can read. An id whose MAC
checks and whose time is within QUEUED_HORIZON is `queued`; any other is a 404.
A guessed id passes with probability 2^-32, and then only says "queued" about the
guesser's own app. The 42-bit counter above the MAC keeps ids unique and ordered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from uuid_utils.compat import uuid7

from sluice.core.db import Connection, Database
from sluice.core.errors import DatabaseUnavailable
from sluice.core.observability import logger

# The events queue keeps a message 4 days and its dead-letter queue 14 (template.yaml);
# a redriven message starts its 4 days again. An id older than that and not stored
# will never be.
QUEUED_HORIZON = timedelta(days=18)


def read_key(conn: Connection) -> bytes:
    with conn.cursor() as cur:
        cur.execute("SELECT secret FROM event_id_keys WHERE key_id = 1")
        return bytes(cur.fetchone()[0])


def _mac(key: bytes, app_id: str, head: int, random_bits: int) -> int:
    message = app_id.encode() + b"\0" + head.to_bytes(8, "big") + random_bits.to_bytes(4, "big")
    return int.from_bytes(hmac.new(key, message, hashlib.sha256).digest()[:4], "big")


def issue(key: bytes, app_id: str) -> uuid.UUID:
    # uuid_utils' UUIDv7 keeps ids made in one millisecond in order with a 42-bit counter
    # in the bits above the last 32 (store writes and tests read a batch in id order):
    # only those last 32, random in a plain UUIDv7, become the MAC.
    base = uuid7().int
    head, random_bits = base >> 64, base >> 32 & (2**30 - 1)
    return uuid.UUID(int=base & ~(2**32 - 1) | _mac(key, app_id, head, random_bits))


def issued(key: bytes, app_id: str, event_id: uuid.UUID) -> bool:
    value = event_id.int
    if event_id.version != 7 or value >> 62 & 0b11 != 0b10:
        return False
    head, random_bits, mac = value >> 64, value >> 32 & (2**30 - 1), value & (2**32 - 1)
    return hmac.compare_digest(
        mac.to_bytes(4, "big"), _mac(key, app_id, head, random_bits).to_bytes(4, "big")
    )


def recent(event_id: uuid.UUID, now: datetime) -> bool:
    """Whether the id's time is at most QUEUED_HORIZON before now.

    Compared in milliseconds, never as a datetime: any 128 bits reach this (a guessed
    or random id), and 48 bits of milliseconds run past datetime's year 9999.
    """
    issued_ms = event_id.int >> 80
    now_ms = int(now.timestamp() * 1000)
    return now_ms - issued_ms < QUEUED_HORIZON // timedelta(milliseconds=1)


def issued_at(event_id: uuid.UUID) -> datetime | None:
    """The time in a UUIDv7 (when ingest received the event), or None for any other id.

    None too for a time past 9999-12-30 (48 bits of milliseconds reach year 10889), so
    a day either side of it is still a datetime.
    """
    millis = event_id.int >> 80
    if event_id.version != 7 or millis > _LAST_ISSUE_MS:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


_LAST_ISSUE_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)


class EventIds:
    """Ingest's id maker: reads the key once per container, the first time it is needed."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._key: bytes | None = None

    def new(self, app_id: str) -> uuid.UUID:
        if self._key is None:
            try:
                self._key = self._database.run(read_key)
            except DatabaseUnavailable:
                # Events still flow; only their lookup before storage says 404, not queued.
                logger.warning("event id key unavailable: plain ids")
                return issue(secrets.token_bytes(32), app_id)
        return issue(self._key, app_id)
