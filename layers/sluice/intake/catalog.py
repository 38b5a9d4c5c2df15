"""What ingest needs to know about apps, keys and rules, cached per warm container."""

from __future__ import annotations

from dataclasses import dataclass

from sluice.core.cache import TtlCache
from sluice.core.clock import Clock
from sluice.core.config import IngestSettings
from sluice.core.db import Database
from sluice.core.errors import AppNotFound
from sluice.core.observability import logger
from sluice.intake.catalog_data import fetch_app, fetch_key_owner
from sluice.intake.keys import hash_api_key, unauthorized
from sluice.intake.validation import RuleSet


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    require_key: bool
    rules: RuleSet
    invalid_events: str = "store"  # or "block": refused with 422, not stored
    unplanned_events: str = "allow"  # or "block": an event name with no rule is refused


class Catalog:
    def __init__(self, database: Database, settings: IngestSettings, clock: Clock) -> None:
        self._database = database
        ttl = settings.cache
        self._apps: TtlCache[App | None] = TtlCache(
            clock,
            lambda app: ttl.rules_ttl if app else ttl.unknown_ttl,
            stale_for=ttl.stale_max_age,
        )
        self._key_owners: TtlCache[str | None] = TtlCache(
            clock,
            lambda owner: ttl.keys_ttl if owner else ttl.unknown_ttl,
            stale_for=ttl.stale_max_age,
        )

    def authorize(self, app_id: str, api_key: str | None, *, fresh: bool = False) -> App:
        """The app events are sent to, once the caller has shown it may send them.

        `fresh` (a dry run) reads the app and the key from the database even when they
        are cached, and caches what it read. Raises AppNotFound, Unauthorized, or
        DatabaseUnavailable when Postgres is down and nothing fresh enough is cached.
        """
        app = self._apps.get(app_id, lambda: self._load_app(app_id), fresh=fresh)
        if app is None:
            raise AppNotFound(f"No app has the id {app_id!r}; check the URL.")
        if api_key is None:
            if app.require_key:
                raise unauthorized()
            return app
        key_hash = hash_api_key(api_key)
        owner = self._key_owners.get(
            key_hash,
            lambda: self._database.run(lambda conn: fetch_key_owner(conn, key_hash)),
            fresh=fresh,
        )
        if owner != app_id:
            raise unauthorized()
        return app

    def authorize_key(self, api_key: str | None) -> App:
        """The app a key alone names (a Segment write key); Unauthorized without a live one."""
        if api_key is None:
            raise unauthorized()
        key_hash = hash_api_key(api_key)
        owner = self._key_owners.get(
            key_hash, lambda: self._database.run(lambda conn: fetch_key_owner(conn, key_hash))
        )
        if owner is None:
            raise unauthorized()
        return self.authorize(owner, api_key)

    def _load_app(self, app_id: str) -> App | None:
        record = self._database.run(lambda conn: fetch_app(conn, app_id))
        if record is None:
            return None
        rules = RuleSet(record.rules)
        if rules.broken:
            # Their events are stored as invalid (sluice.intake.validation.UNUSABLE_RULE).
            logger.error("rules unusable: invalid schema", app_id=app_id, event_names=rules.broken)
        return App(
            app_id=app_id,
            require_key=record.require_key,
            rules=rules,
            invalid_events=record.invalid_events,
            unplanned_events=record.unplanned_events,
        )
