"""How often the accounts routes may be asked something, per key: the rules, as plain Python.

A key is an address for one kind of request, or a source (the client's IP address),
hashed; its row of email_send_limits holds the times of its recent requests, newest
last (sluice.accounts.accounts_data). Two shapes of rule:

* `Window`, a wall: at most so many a minute and an hour. Right for what only the
  asker suffers from (a source's own requests) and for mail, where a wall is no
  lockout: every reset an attacker asks for mails a working token to the owner.
* `Backoff`, a slope: a few free, then each must wait twice as long after the one
  before as the last did, up to a cap. Right for sign-in per address, which anyone
  can try: guessing is slowed to one try per cap, and the owner waits at most the cap.

Hashing slots bound how many passwords the whole function hashes at once: a slot is a
limit key whose row holds the start of the hash running in it, or nothing when free.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# The longest a request counts against its key. A row with no request this recent
# limits nothing: the maintain function deletes it (sluice.retention.account_purge).
LIMIT_WINDOW = HOUR


# A slot whose hash began this long ago belongs to an invocation that was killed at its
# timeout and never gave it back: the accounts function's Timeout (template.yaml, 10 s).
HASH_SLOT_LEASE = timedelta(seconds=10)


def limit_key(scope: str, value: str) -> bytes:
    """The key of an address for one kind of request ("register:"), or of a source."""
    return hashlib.sha256(scope.encode() + b":" + value.encode("utf-8", "surrogatepass")).digest()


def hash_slot_keys(count: int) -> list[bytes]:
    """The keys of the function's `count` hashing slots."""
    return [limit_key("hash_slot", str(n)) for n in range(count)]


def seconds(wait: timedelta) -> int:
    """A wait as Retry-After says it: whole seconds, at least one."""
    return max(1, math.ceil(wait.total_seconds()))


def _recent(times: list[datetime], now: datetime) -> list[datetime]:
    return sorted(t for t in times if t > now - LIMIT_WINDOW)


@dataclass(frozen=True, slots=True)
class Window:
    per_minute: int
    per_hour: int

    def wait(self, times: list[datetime], now: datetime) -> timedelta | None:
        recent = _recent(times, now)
        waits = []
        last_minute = [t for t in recent if t > now - MINUTE]
        if len(last_minute) >= self.per_minute:
            waits.append(last_minute[-self.per_minute] + MINUTE - now)
        if len(recent) >= self.per_hour:
            waits.append(recent[-self.per_hour] + HOUR - now)
        return max(waits) if waits else None

    def keep(self, times: list[datetime], now: datetime) -> list[datetime]:
        return _recent(times, now)[-self.per_hour :]


@dataclass(frozen=True, slots=True)
class Backoff:
    free: int  # requests in the last hour that wait for nothing
    cap: timedelta  # the longest any request waits after the one before

    def wait(self, times: list[datetime], now: datetime) -> timedelta | None:
        recent = _recent(times, now)
        over = len(recent) - self.free
        if over < 0:
            return None
        # 1 s after the first past the free ones, then 2, 4, ... up to the cap (the
        # exponent stops at 16: 18 hours is past any cap worth having).
        step = min(self.cap, timedelta(seconds=2 ** min(over, 16)))
        wait = recent[-1] + step - now
        return wait if wait > timedelta(0) else None

    def keep(self, times: list[datetime], now: datetime) -> list[datetime]:
        # Only the newest matter: past free + 16 the step is the cap whatever the count.
        return _recent(times, now)[-(self.free + 17) :]
