"""A small time-to-live cache for what ingest looks up in Postgres.

Values are kept per warm container. When a reload fails because the database is
down, an expired value keeps being served until it is `stale_for` seconds past
its expiry, so an outage does not take down apps that were seen recently.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sluice.core.clock import Clock
from sluice.core.errors import DatabaseUnavailable

V = TypeVar("V")


@dataclass(slots=True)
class _Entry(Generic[V]):
    value: V
    expires_at: float


class TtlCache(Generic[V]):
    def __init__(
        self,
        clock: Clock,
        ttl: Callable[[V], float],
        *,
        stale_for: float,
        max_entries: int = 10_000,
    ) -> None:
        self._clock = clock
        self._ttl = ttl  # per value, so "not found" can be kept shorter than a hit
        self._stale_for = stale_for
        self._max_entries = max_entries
        self._entries: dict[Hashable, _Entry[V]] = {}

    def get(self, key: Hashable, load: Callable[[], V], *, fresh: bool = False) -> V:
        """The cached value, or `load()`'s (then cached); `fresh` loads even when cached.

        A fresh load that fails because the database is down serves the cached value
        as an ordinary get would: it is still what the real path uses.
        """
        now = self._clock.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now < entry.expires_at and not fresh:
            return entry.value
        try:
            value = load()
        except DatabaseUnavailable:
            if entry is not None and now < entry.expires_at + self._stale_for:
                return entry.value
            raise
        self._put(key, value, now)
        return value

    def _put(self, key: Hashable, value: V, now: float) -> None:
        self._entries.pop(key, None)
        if len(self._entries) >= self._max_entries:
            # Dicts keep insertion order: drop the entry written longest ago.
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(value, now + self._ttl(value))

    def clear(self) -> None:
        self._entries.clear()
