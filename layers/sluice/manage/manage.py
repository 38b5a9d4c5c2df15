"""Owners manage their apps, keys and rules: what the manage function does, without AWS.

Every operation takes the session's account and sees only the apps it owns: an
app of another account answers exactly as an app that does not exist (404), so
nobody can learn which app ids are taken.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sluice.core.clock import Clock
from sluice.core.config import IngestCacheSettings
from sluice.core.db import Connection, Database
from sluice.core.errors import AppNotFound, NotFound, RequestRejected
from sluice.intake import event_ids
from sluice.intake.catalog_data import fetch_key_owner
from sluice.intake.keys import generate_api_key, hash_api_key, unauthorized
from sluice.intake.validation import InvalidRule, check_rule
from sluice.manage.manage_data import (
    AppRow,
    KeyRow,
    RuleVersion,
    app_keys,
    app_requires_key,
    app_rules,
    delete_app,
    event_id_key,
    find_duplicate,
    find_event,
    insert_key,
    insert_owned_app,
    list_events,
    list_rejections,
    owned_app,
    owned_apps,
    revoke_key,
    rule_schema,
    rule_version,
    rule_versions,
    save_rule,
    update_app,
)
from sluice.rollups import stats


def new_app_id() -> str:
    return "app_" + secrets.token_hex(16)


MAX_NAME_CHARS = 200
# Event names travel in URLs and in the envelope; the same limit as ingest's envelope.
EVENT_NAME = re.compile(r"^[^\x00-\x1f]{1,200}$")
POLICIES = {"invalid_events": ("store", "block"), "unplanned_events": ("allow", "block")}
# Days raw events are kept (then archived to S3 and deleted; rollups stay): the
# bounds of apps.retention_days (migrations/0007).
RETENTION_POLICY = "retention_days"
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 1, 3650


def _app_not_found(app_id: str) -> AppNotFound:
    return AppNotFound(f"You have no app with the id {app_id!r}.")


def app_view(app: AppRow) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "name": app.name,
        "require_key": app.require_key,
        "policies": {
            "invalid_events": app.invalid_events,
            "unplanned_events": app.unplanned_events,
            "retention_days": app.retention_days,
        },
        "created_at": app.created_at.isoformat(),
    }


def key_view(key: KeyRow) -> dict[str, Any]:
    return {
        "key_id": str(key.key_id),
        "prefix": key.prefix,
        "created_at": key.created_at.isoformat(),
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


def version_view(version: RuleVersion) -> dict[str, Any]:
    return {
        "event_name": version.event_name,
        "version": version.version,
        "schema": version.schema,
        "deleted": version.schema is None,
        "created_at": version.created_at.isoformat(),
    }


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
        raise RequestRejected(
            f"'name' must be a non-empty string of at most {MAX_NAME_CHARS} characters."
        )
    if "\x00" in name:
        raise RequestRejected("'name' may not contain NUL.")
    return name.strip()


def check_event_name(event_name: str) -> str:
    if not EVENT_NAME.match(event_name):
        raise RequestRejected(
            "An event name is 1 to 200 characters, none of them control characters."
        )
    return event_name


def parse_key_id(key_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(key_id)
    except ValueError:
        raise NotFound(f"This app has no key {key_id!r}.", code="key_not_found") from None


def ingest_follows(seconds: float) -> dict[str, int]:
    """What a change's answer adds: within how many seconds ingest applies it.

    Ingest caches apps, keys and rules per warm container (sluice.intake.catalog) and nothing
    tells it of a change, so each container sees one when its cached copy expires.
    While PostgreSQL is down it serves what it cached for longer (stale_max_age).
    """
    return {"ingest_follows_within_seconds": math.ceil(seconds)}


@dataclass(slots=True)
class Manager:
    database: Database
    clock: Clock
    max_body_bytes: int = 64 * 1024
    ingest_cache: IngestCacheSettings = IngestCacheSettings()

    def _follows_rules(self) -> dict[str, int]:
        """An app's rules, policies or existence: cached with the app."""
        return ingest_follows(self.ingest_cache.rules_ttl)

    def _follows_new(self) -> dict[str, int]:
        """Something new (an app, a key): only a miss just before may be cached."""
        return ingest_follows(self.ingest_cache.unknown_ttl)

    def _app(
        self, conn: Connection, owner: uuid.UUID, app_id: str, *, lock: bool = False
    ) -> AppRow:
        app = owned_app(conn, owner, app_id, lock=lock)
        if app is None:
            raise _app_not_found(app_id)
        return app

    # --- apps
    def create_app(self, owner: uuid.UUID, name: Any) -> dict[str, Any]:
        """The app and its first key, in plain text: the only time anyone sees it."""
        name = check_name(name)
        key = generate_api_key()

        def work(conn: Connection) -> tuple[AppRow, KeyRow]:
            now = self.clock.now()
            app = insert_owned_app(conn, new_app_id(), name, owner, now)
            return app, insert_key(conn, app.app_id, key.prefix, key.key_hash, now)

        app, key_row = self.database.run(work)
        return {
            **app_view(app),
            "api_key": {**key_view(key_row), "key": key.plaintext},
            **self._follows_new(),
        }

    def list_apps(self, owner: uuid.UUID) -> list[dict[str, Any]]:
        return [app_view(app) for app in self.database.run(lambda conn: owned_apps(conn, owner))]

    def get_app(self, owner: uuid.UUID, app_id: str) -> dict[str, Any]:
        return app_view(self.database.run(lambda conn: self._app(conn, owner, app_id)))

    def change_app(self, owner: uuid.UUID, app_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Renames the app and/or sets its policies; unknown fields are refused."""
        unknown = set(body) - {"name", "policies"}
        if unknown:
            raise RequestRejected(
                f"Unknown fields: {', '.join(sorted(map(str, unknown)))};"
                " send name and/or policies."
            )
        changes: dict[str, Any] = {}
        if "name" in body:
            changes["name"] = check_name(body["name"])
        if "policies" in body:
            changes.update(check_policies(body["policies"]))
        if not changes:
            raise RequestRejected("Send name and/or policies to change.")
        app = self.database.run(lambda conn: update_app(conn, owner, app_id, changes))
        if app is None:
            raise _app_not_found(app_id)
        return {**app_view(app), **self._follows_rules()}

    def delete_app(self, owner: uuid.UUID, app_id: str) -> dict[str, Any]:
        if not self.database.run(lambda conn: delete_app(conn, owner, app_id)):
            raise _app_not_found(app_id)
        return {"app_id": app_id, "deleted": True, **self._follows_rules()}

    # --- keys
    def list_keys(self, owner: uuid.UUID, app_id: str) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[KeyRow]:
            self._app(conn, owner, app_id)
            return app_keys(conn, app_id)

        return [key_view(key) for key in self.database.run(work)]

    def create_key(self, owner: uuid.UUID, app_id: str) -> dict[str, Any]:
        key = generate_api_key()

        def work(conn: Connection) -> KeyRow:
            self._app(conn, owner, app_id)
            return insert_key(conn, app_id, key.prefix, key.key_hash, self.clock.now())

        return {**key_view(self.database.run(work)), "key": key.plaintext, **self._follows_new()}

    def revoke_key(self, owner: uuid.UUID, app_id: str, key_id: str) -> dict[str, Any]:
        parsed = parse_key_id(key_id)

        def work(conn: Connection) -> KeyRow | None:
            self._app(conn, owner, app_id)
            return revoke_key(conn, app_id, parsed, self.clock.now())

        key = self.database.run(work)
        if key is None:
            raise NotFound(f"This app has no key {key_id!r}.", code="key_not_found")
        return {**key_view(key), **ingest_follows(self.ingest_cache.keys_ttl)}

    # --- rules
    def list_rules(self, owner: uuid.UUID, app_id: str) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list:
            self._app(conn, owner, app_id)
            return app_rules(conn, app_id)

        return [
            {"event_name": name, "schema": schema, "updated_at": updated.isoformat()}
            for name, schema, updated in self.database.run(work)
        ]

    def get_rule(self, owner: uuid.UUID, app_id: str, event_name: str) -> dict[str, Any]:
        def work(conn: Connection) -> tuple | None:
            self._app(conn, owner, app_id)
            return rule_schema(conn, app_id, event_name)

        found = self.database.run(work)
        if found is None:
            raise _rule_not_found(event_name)
        schema, updated_at = found
        return {"event_name": event_name, "schema": schema, "updated_at": updated_at.isoformat()}

    def put_rule(
        self, owner: uuid.UUID, app_id: str, event_name: str, schema: Any
    ) -> dict[str, Any]:
        """Checked before it is saved: a rule that does not compile never reaches ingest."""
        check_event_name(event_name)
        try:
            check_rule(schema)
        except InvalidRule as exc:
            raise RequestRejected(f"The rule is not usable: {exc}", code="invalid_rule") from None
        return {
            **version_view(self._save(owner, app_id, event_name, schema)),
            **self._follows_rules(),
        }

    def delete_rule(self, owner: uuid.UUID, app_id: str, event_name: str) -> dict[str, Any]:
        def work(conn: Connection) -> RuleVersion:
            self._app(conn, owner, app_id, lock=True)
            if rule_schema(conn, app_id, event_name) is None:
                raise _rule_not_found(event_name)
            return save_rule(conn, app_id, event_name, None, self.clock.now())

        return {**version_view(self.database.run(work)), **self._follows_rules()}

    def rule_history(self, owner: uuid.UUID, app_id: str, event_name: str) -> list[dict[str, Any]]:
        def work(conn: Connection) -> list[RuleVersion]:
            self._app(conn, owner, app_id)
            return rule_versions(conn, app_id, event_name)

        versions = self.database.run(work)
        if not versions:
            raise NotFound(f"The rule {event_name!r} has no saved versions.", code="rule_not_found")
        return [version_view(v) for v in versions]

    def restore_rule(
        self, owner: uuid.UUID, app_id: str, event_name: str, version: Any
    ) -> dict[str, Any]:
        """Saves an old version again, as the newest: one transaction, history kept."""
        if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31:
            raise RequestRejected("'version' must be a positive whole number.")

        def work(conn: Connection) -> RuleVersion:
            self._app(conn, owner, app_id, lock=True)
            old = rule_version(conn, app_id, event_name, version)
            if old is None:
                raise NotFound(
                    f"The rule {event_name!r} has no version {version}.", code="version_not_found"
                )
            if old.schema is not None:
                check_rule(orjson.loads(old.schema.text))  # saved by an older validator, perhaps
            return save_rule(conn, app_id, event_name, old.schema, self.clock.now())

        try:
            return {**version_view(self.database.run(work)), **self._follows_rules()}
        except InvalidRule as exc:
            raise RequestRejected(
                f"That version is not usable any more: {exc}", code="invalid_rule"
            ) from None

    # --- events
    def list_events(self, owner: uuid.UUID, app_id: str, query: dict[str, str]) -> dict[str, Any]:
        filters = event_filters(query)
        limit = filters.pop("limit")

        def work(conn: Connection) -> list[dict[str, Any]]:
            self._app(conn, owner, app_id)
            return list_events(conn, app_id, limit=limit + 1, **filters)

        page, next_cursor = _next_page(self.database.run(work), limit, "occurred_at", "event_id")
        return {"events": [_event_view(row) for row in page], "next_cursor": next_cursor}

    def list_rejections(
        self, owner: uuid.UUID, app_id: str, query: dict[str, str]
    ) -> dict[str, Any]:
        """The app's batch items ingest refused (where and why), newest first."""
        filters = rejection_filters(query)
        limit = filters.pop("limit")

        def work(conn: Connection) -> list[dict[str, Any]]:
            self._app(conn, owner, app_id)
            return list_rejections(conn, app_id, limit=limit + 1, **filters)

        page, next_cursor = _next_page(
            self.database.run(work), limit, "received_at", "rejection_id"
        )
        return {"rejections": [_rejection_view(row) for row in page], "next_cursor": next_cursor}

    def get_event(self, owner: uuid.UUID, app_id: str, event_id: str) -> dict[str, Any]:
        """Stored (the row), queued (an id ingest issued, not stored yet), or 404.

        The id of a copy the store skipped for its messageId answers the row stored for
        that messageId, with `duplicate_event_id` (the id asked about).
        """
        parsed = _parse_event_id(event_id)
        if parsed is None:
            raise _event_not_found(event_id)

        def work(conn: Connection) -> _EventState | None:
            self._app(conn, owner, app_id)
            return _event_state(conn, app_id, parsed, self.clock.now())

        state = self.database.run(work)
        if state is None:
            raise _event_not_found(event_id)
        return state.view(_event_view)

    def event_status(self, app_id: str, api_key: str | None, event_id: str) -> dict[str, Any]:
        """An event's state for the app's API key (the key ingest takes), not a session.

        The key may be public (in a browser), so the answer is what the sender already
        had or needs to act on: the state, the event name, the rule's errors, when it
        was received and stored. Never the payload or the messageId: anyone holding the
        key could read other users' events by their ids.
        """
        key_hash = None if api_key is None else hash_api_key(api_key)
        parsed = _parse_event_id(event_id)  # checked after the key: 401 comes first

        def work(conn: Connection) -> _EventState | None:
            # As ingest decides: the app first, then the key (keyless apps need none).
            require_key = app_requires_key(conn, app_id)
            if require_key is None:
                raise AppNotFound(f"No app has the id {app_id!r}; check the URL.")
            if key_hash is None and require_key:
                raise unauthorized()
            if key_hash is not None and fetch_key_owner(conn, key_hash) != app_id:
                raise unauthorized()
            if parsed is None:
                return None
            return _event_state(conn, app_id, parsed, self.clock.now())

        state = self.database.run(work)
        if state is None:
            raise _event_not_found(event_id)
        return state.view(_status_view)

    # --- stats
    def stats(self, owner: uuid.UUID, app_id: str, given: dict[str, str]) -> dict[str, Any]:
        """Counts from the rollups alone (never the events): cheap whatever the app's size."""
        query = stats_query(given)

        def work(conn: Connection) -> stats.StatsSeries:
            self._app(conn, owner, app_id)
            return stats.stats_series(
                conn,
                app_id,
                query.start,
                query.end,
                query.granularity,
                query.event_name,
                query.status,
            )

        series = self.database.run(work)
        return {
            "app_id": app_id,
            "granularity": series.granularity,
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            "complete_through": (
                series.complete_through.astimezone(UTC).isoformat()
                if series.complete_through
                else None
            ),
            "total": sum(count for _, count in series.points),
            "series": [
                {"start": start.isoformat(), "count": count} for start, count in series.points
            ],
        }

    def _save(
        self, owner: uuid.UUID, app_id: str, event_name: str, schema: dict | None
    ) -> RuleVersion:
        def work(conn: Connection) -> RuleVersion:
            self._app(conn, owner, app_id, lock=True)
            return save_rule(conn, app_id, event_name, schema, self.clock.now())

        return self.database.run(work)


MAX_PAGE = 100
DEFAULT_PAGE = 50


def _event_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in {**row, "event_id": str(row["event_id"])}.items()
    }


@dataclass(frozen=True, slots=True)
class _EventState:
    """What an id leads to: the stored row (None while queued), and the id asked about
    when it is a copy the store skipped for its messageId."""

    event_id: uuid.UUID
    row: dict[str, Any] | None
    duplicate_event_id: uuid.UUID | None = None

    def view(self, row_view: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        if self.row is None:
            return {"event_id": str(self.event_id), "status": "queued"}
        view = row_view(self.row)
        if self.duplicate_event_id is not None:
            view["duplicate_event_id"] = str(self.duplicate_event_id)
        return view


def _event_state(
    conn: Connection, app_id: str, event_id: uuid.UUID, now: datetime
) -> _EventState | None:
    """Stored, a skipped copy of a stored event, queued, or nothing (None: a 404).

    Each state is known from the database alone: a row; a row of event_duplicates
    (written by the store with the skip, in its transaction), whose original may have
    expired since (then nothing); an id whose MAC says ingest issued it for this app,
    young enough to be still in a queue or its dead-letter queue (sluice.intake.event_ids).
    """
    row = find_event(conn, app_id, event_id, event_ids.issued_at(event_id))
    if row is not None:
        return _EventState(event_id, row)
    original = find_duplicate(conn, app_id, event_id)
    if original is not None:
        original_id, original_received_at = original
        row = find_event(conn, app_id, original_id, original_received_at)
        return None if row is None else _EventState(original_id, row, event_id)
    if event_ids.recent(event_id, now) and event_ids.issued(event_id_key(conn), app_id, event_id):
        return _EventState(event_id, None)
    return None


def _parse_event_id(event_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return None


# What the key's lookup shows of a stored event (see Manager.event_status).
STATUS_FIELDS = (
    "event_id",
    "event_name",
    "status",
    "validation_errors",
    "received_at",
    "stored_at",
)


def _status_view(row: dict[str, Any]) -> dict[str, Any]:
    view = _event_view(row)
    return {name: view[name] for name in STATUS_FIELDS}


def _event_not_found(event_id: str) -> NotFound:
    return NotFound(f"This app has no event {event_id!r}.", code="event_not_found")


def _next_page(
    rows: list[dict[str, Any]], limit: int, time_column: str, id_column: str
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of `limit` rows (fetched as limit + 1) and the cursor after its last row,
    if more rows follow."""
    page = rows[:limit]
    if len(rows) <= limit:
        return page, None
    text = f"{page[-1][time_column].isoformat()}|{page[-1][id_column]}"
    return page, base64.urlsafe_b64encode(text.encode()).decode()


def _rejection_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "rejection_id": str(row["rejection_id"]),
        "received_at": row["received_at"].isoformat(),
        "route": row["route"],
        "index": row["item_index"],
        "message_id": row["message_id"],
        "code": row["code"],
        "message": row["message"],
    }


def _read_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        when, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(when), uuid.UUID(event_id)
    except (ValueError, UnicodeError):
        raise RequestRejected(
            "'cursor' is not one this API gave out.", code="invalid_cursor"
        ) from None


def query_time(name: str, value: str, *, code: str = "invalid_request") -> datetime:
    """A time from a query string, in UTC: the one rule for every route that takes one.

    An ISO 8601 date-time that names its offset (Z or +hh:mm); a time without one, or a
    date alone, is refused rather than read as UTC, since the caller may have meant their
    own zone. The instant must fall in the years 1 to 9999 in UTC too.
    """
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise RequestRejected(
        f"'{name}' must be an ISO 8601 date-time with its offset (Z or +hh:mm),"
        " in the years 1 to 9999; for example 2026-03-01T00:00:00Z.",
        code=code,
    )


def _time(name: str, value: str | None) -> datetime | None:
    return None if value is None else query_time(name, value)


def event_filters(query: dict[str, str]) -> dict[str, Any]:
    """The list's filters from the query string; 400 for anything unknown or malformed."""
    unknown = set(query) - {"status", "event_name", "since", "until", "limit", "cursor"}
    if unknown:
        raise RequestRejected(f"Unknown query parameters: {', '.join(sorted(unknown))}.")
    status = query.get("status")
    if status not in (None, "valid", "invalid"):
        raise RequestRejected("'status' must be valid or invalid.")
    limit = _page_limit(query)
    return {
        "status": status,
        "event_name": query.get("event_name"),
        "since": _time("since", query.get("since")),
        "until": _time("until", query.get("until")),
        "limit": limit,
        "after": _read_cursor(query["cursor"]) if "cursor" in query else None,
    }


def rejection_filters(query: dict[str, str]) -> dict[str, Any]:
    """The rejections list's filters: the events list's rules, without status or name."""
    unknown = set(query) - {"since", "until", "limit", "cursor"}
    if unknown:
        raise RequestRejected(f"Unknown query parameters: {', '.join(sorted(unknown))}.")
    return {
        "since": _time("since", query.get("since")),
        "until": _time("until", query.get("until")),
        "limit": _page_limit(query),
        "after": _read_cursor(query["cursor"]) if "cursor" in query else None,
    }


def _page_limit(query: dict[str, str]) -> int:
    try:
        limit = int(query.get("limit", DEFAULT_PAGE))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise RequestRejected(f"'limit' must be a whole number from 1 to {MAX_PAGE}.")
    return limit


# --- stats: the query's parameters --------------------------------------------------------

# The longest range one request may ask for, per granularity: a month of hours (745
# buckets at most, a partial hour at each end) or a leap year of days. The answer stays
# small (tens of kB) and the query a few hundred index probes.
MAX_RANGE = {"hour": timedelta(days=31), "day": timedelta(days=366)}
STATUSES = ("valid", "invalid")
PARAMETERS = ("from", "to", "granularity", "event_name", "status")


@dataclass(frozen=True, slots=True)
class StatsQuery:
    start: datetime  # UTC
    end: datetime  # UTC, after start
    granularity: str
    event_name: str | None
    status: str | None


def _moment(name: str, value: str | None) -> datetime:
    if value is None:
        raise RequestRejected(
            f"'{name}' is required (an ISO 8601 date-time with its offset).", code="invalid_range"
        )
    return query_time(name, value, code="invalid_range")


def stats_query(given: dict[str, str]) -> StatsQuery:
    """The route's parameters (each once, only PARAMETERS); RequestRejected (400) otherwise."""
    start, end = _moment("from", given.get("from")), _moment("to", given.get("to"))
    if end <= start:
        raise RequestRejected("'to' must be after 'from'.", code="invalid_range")
    granularity = given.get("granularity", "hour")
    if granularity not in stats.GRANULARITIES:
        raise RequestRejected(
            f"'granularity' must be one of {', '.join(stats.GRANULARITIES)}.",
            code="invalid_granularity",
        )
    if end - start > MAX_RANGE[granularity]:
        raise RequestRejected(
            f"At most {MAX_RANGE[granularity].days} days by {granularity}"
            f" ({', '.join(f'{d.days} days by {g}' for g, d in MAX_RANGE.items())}).",
            code="range_too_large",
        )
    status = given.get("status")
    if status is not None and status not in STATUSES:
        raise RequestRejected(
            f"'status' must be one of {', '.join(STATUSES)}.", code="invalid_status"
        )
    event_name = given.get("event_name")
    if event_name is not None and not EVENT_NAME.match(event_name):
        raise RequestRejected(
            "'event_name' is 1 to 200 characters, none of them control characters.",
            code="invalid_query",
        )
    return StatsQuery(start, end, granularity, event_name, status)


def _rule_not_found(event_name: str) -> NotFound:
    return NotFound(f"This app has no rule for {event_name!r}.", code="rule_not_found")


def check_policies(policies: Any) -> dict[str, Any]:
    if not isinstance(policies, dict) or not policies:
        raise RequestRejected(
            "'policies' must be an object with invalid_events (store|block),"
            " unplanned_events (allow|block) and/or retention_days (1 to 3650)."
        )
    changes: dict[str, Any] = {}
    for name, value in policies.items():
        if name == RETENTION_POLICY:
            # bool is an int in Python; JSON's true is no number of days.
            if type(value) is not int or not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
                raise RequestRejected(
                    f"'{RETENTION_POLICY}' must be a whole number of days from"
                    f" {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}."
                )
        elif name not in POLICIES:
            known = ", ".join([*POLICIES, RETENTION_POLICY])
            raise RequestRejected(f"Unknown policy {name!r}; known: {known}.")
        elif value not in POLICIES[name]:
            raise RequestRejected(f"'{name}' must be one of {', '.join(POLICIES[name])}.")
        changes[name] = value
    return changes
