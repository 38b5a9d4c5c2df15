"""The manage function's SQL: an owner's apps, keys, rules and their versions, events.

Parameterised, no commits (the caller's Database.run is the transaction). Every
statement about an app names its owner too, so an app of another account is, to
these functions, an app that does not exist. Stored JSON (rules, payloads, validation
errors) is read as its text (JsonText, exact_json): served as stored, every digit kept.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg2 import sql
from psycopg2.extras import Json

from sluice.core.db import Connection
from sluice.core.exact_json import JsonText, exact_cursor
from sluice.store.events_table import SHOWN, names


@dataclass(frozen=True, slots=True)
class AppRow:
    app_id: str
    name: str
    require_key: bool
    invalid_events: str
    unplanned_events: str
    created_at: datetime
    retention_days: int


# Composed into statements below (S608): a constant, never anything from a request.
_APP_COLUMNS = (
    "app_id, name, require_key, invalid_events, unplanned_events, created_at, retention_days"
)


def insert_owned_app(
    conn: Connection, app_id: str, name: str, owner: uuid.UUID, now: datetime
) -> AppRow:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO apps (app_id, name, require_key, owner_account_id, created_at)"  # noqa: S608
            f" VALUES (%s, %s, true, %s, %s) RETURNING {_APP_COLUMNS}",
            (app_id, name, owner, now),
        )
        return AppRow(*cur.fetchone())


def owned_apps(conn: Connection, owner: uuid.UUID) -> list[AppRow]:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE owner_account_id = %s"  # noqa: S608
            " ORDER BY created_at, app_id",
            (owner,),
        )
        return [AppRow(*row) for row in cur.fetchall()]


def owned_app(
    conn: Connection, owner: uuid.UUID, app_id: str, *, lock: bool = False
) -> AppRow | None:
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {_APP_COLUMNS} FROM apps WHERE app_id = %s AND owner_account_id = %s"  # noqa: S608
            + (" FOR UPDATE" if lock else ""),
            (app_id, owner),
        )
        row = cur.fetchone()
    return AppRow(*row) if row else None


def app_requires_key(conn: Connection, app_id: str) -> bool | None:
    """Whether the app (any owner's, or none's) wants a key; None if there is no such app."""
    with conn.cursor() as cur:
        cur.execute("SELECT require_key FROM apps WHERE app_id = %s", (app_id,))
        row = cur.fetchone()
    return row[0] if row else None


def update_app(
    conn: Connection, owner: uuid.UUID, app_id: str, changes: dict[str, Any]
) -> AppRow | None:
    """Sets the named columns (keys from a fixed set, never from the request)."""
    allowed = {"name", "invalid_events", "unplanned_events", "retention_days"}
    assert set(changes) <= allowed, changes  # a programming error, not input
    assignments = ", ".join(f"{column} = %s" for column in changes)
    with conn.cursor() as cur:
        cur.execute(
            f"UPDATE apps SET {assignments} WHERE app_id = %s AND owner_account_id = %s"  # noqa: S608
            f" RETURNING {_APP_COLUMNS}",
            (*changes.values(), app_id, owner),
        )
        row = cur.fetchone()
    return AppRow(*row) if row else None


def delete_app(conn: Connection, owner: uuid.UUID, app_id: str) -> bool:
    """The app, its keys, rules and versions (cascades); its events and archive follow.

    An app can hold millions of events: the maintain function removes them (and the
    archive) in bounded chunks, from the record written here in the same transaction.
    """
    with conn.cursor() as cur:
        cur.execute("DELETE FROM apps WHERE app_id = %s AND owner_account_id = %s", (app_id, owner))
        if cur.rowcount != 1:
            return False
        cur.execute("INSERT INTO deleted_apps (app_id) VALUES (%s)", (app_id,))
    return True


# --- operators' apps (sluice.manage.admin): any owner's, or none's -------------------


def insert_app(conn: Connection, app_id: str, name: str, require_key: bool) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO apps (app_id, name, require_key) VALUES (%s, %s, %s)",
            (app_id, name, require_key),
        )


def lock_app(conn: Connection, app_id: str) -> bool:
    """Whether the app exists; its row stays locked until the transaction ends."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM apps WHERE app_id = %s FOR UPDATE", (app_id,))
        return cur.fetchone() is not None


def all_apps(conn: Connection) -> list[tuple[str, datetime, str | None, str]]:
    """Every app, oldest first: (app_id, created_at, its owner's email or None, name)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.app_id, a.created_at, o.email, a.name"
            " FROM apps a LEFT JOIN accounts o ON o.account_id = a.owner_account_id"
            " ORDER BY a.created_at, a.app_id"
        )
        return cur.fetchall()


def lock_app_owner(conn: Connection, app_id: str) -> tuple[bool, uuid.UUID | None]:
    """Whether the app exists, and its owner (None: nobody); the row stays locked."""
    with conn.cursor() as cur:
        cur.execute("SELECT owner_account_id FROM apps WHERE app_id = %s FOR UPDATE", (app_id,))
        row = cur.fetchone()
    return (True, row[0]) if row else (False, None)


def set_app_owner(conn: Connection, app_id: str, account_id: uuid.UUID) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE apps SET owner_account_id = %s WHERE app_id = %s", (account_id, app_id))


def set_require_key(conn: Connection, app_id: str, require_key: bool) -> bool:
    with conn.cursor() as cur:
        cur.execute("UPDATE apps SET require_key = %s WHERE app_id = %s", (require_key, app_id))
        return cur.rowcount == 1


def revoke_key_by_prefix(conn: Connection, app_id: str, prefix: str, now: datetime) -> bool:
    """Revokes the app's live key with that prefix; False when it has none."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api_keys SET revoked_at = %s"
            " WHERE app_id = %s AND prefix = %s AND revoked_at IS NULL",
            (now, app_id, prefix),
        )
        return cur.rowcount > 0


# --- keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRow:
    key_id: uuid.UUID
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def insert_key(
    conn: Connection, app_id: str, prefix: str, key_hash: bytes, now: datetime
) -> KeyRow:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO api_keys (app_id, prefix, key_hash, created_at) VALUES (%s, %s, %s, %s)"
            " RETURNING key_id, prefix, created_at, revoked_at",
            (app_id, prefix, key_hash, now),
        )
        return KeyRow(*cur.fetchone())


def app_keys(conn: Connection, app_id: str) -> list[KeyRow]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT key_id, prefix, created_at, revoked_at FROM api_keys WHERE app_id = %s"
            " ORDER BY created_at, key_id",
            (app_id,),
        )
        return [KeyRow(*row) for row in cur.fetchall()]


def revoke_key(conn: Connection, app_id: str, key_id: uuid.UUID, now: datetime) -> KeyRow | None:
    """The key, revoked now or before; None when the app has no such key."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, %s)"
            " WHERE app_id = %s AND key_id = %s RETURNING key_id, prefix, created_at, revoked_at",
            (now, app_id, key_id),
        )
        row = cur.fetchone()
    return KeyRow(*row) if row else None


# --- rules and their versions -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleVersion:
    event_name: str
    version: int
    schema: JsonText | None  # None: the rule was deleted
    created_at: datetime


def current_rule(conn: Connection, app_id: str, event_name: str) -> RuleVersion | None:
    with exact_cursor(conn) as cur:
        cur.execute(
            "SELECT event_name, version, schema, created_at FROM rule_versions"
            " WHERE app_id = %s AND event_name = %s ORDER BY version DESC LIMIT 1",
            (app_id, event_name),
        )
        row = cur.fetchone()
    return RuleVersion(*row) if row else None


def app_rules(conn: Connection, app_id: str) -> list[tuple[str, JsonText, datetime]]:
    with exact_cursor(conn) as cur:
        cur.execute(
            "SELECT event_name, schema, updated_at FROM rules WHERE app_id = %s"
            " ORDER BY event_name",
            (app_id,),
        )
        return cur.fetchall()


def rule_schema(conn: Connection, app_id: str, event_name: str) -> tuple[JsonText, datetime] | None:
    with exact_cursor(conn) as cur:
        cur.execute(
            "SELECT schema, updated_at FROM rules WHERE app_id = %s AND event_name = %s",
            (app_id, event_name),
        )
        return cur.fetchone()


def rule_versions(conn: Connection, app_id: str, event_name: str) -> list[RuleVersion]:
    with exact_cursor(conn) as cur:
        cur.execute(
            "SELECT event_name, version, schema, created_at FROM rule_versions"
            " WHERE app_id = %s AND event_name = %s ORDER BY version DESC",
            (app_id, event_name),
        )
        return [RuleVersion(*row) for row in cur.fetchall()]


def rule_version(
    conn: Connection, app_id: str, event_name: str, version: int
) -> RuleVersion | None:
    with exact_cursor(conn) as cur:
        cur.execute(
            "SELECT event_name, version, schema, created_at FROM rule_versions"
            " WHERE app_id = %s AND event_name = %s AND version = %s",
            (app_id, event_name, version),
        )
        row = cur.fetchone()
    return RuleVersion(*row) if row else None


def save_rule(
    conn: Connection,
    app_id: str,
    event_name: str,
    schema: dict[str, Any] | JsonText | None,
    now: datetime,
) -> RuleVersion:
    """Makes `schema` the rule (None deletes it) and records it as the next version.

    A JsonText (an old version restored) is saved as the very text it holds.

    The caller holds the app's row lock (owned_app(lock=True)), so two saves of one
    app cannot pick the same version number.
    """
    stored = None if schema is None else _jsonb(schema)
    with exact_cursor(conn) as cur:
        if schema is None:
            cur.execute(
                "DELETE FROM rules WHERE app_id = %s AND event_name = %s", (app_id, event_name)
            )
        else:
            cur.execute(
                "INSERT INTO rules (app_id, event_name, schema, updated_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (app_id, event_name)"
                " DO UPDATE SET schema = EXCLUDED.schema, updated_at = EXCLUDED.updated_at",
                (app_id, event_name, stored, now),
            )
        cur.execute(
            "INSERT INTO rule_versions (app_id, event_name, version, schema, created_at)"
            " SELECT %s, %s, coalesce(max(version), 0) + 1, %s, %s FROM rule_versions"
            " WHERE app_id = %s AND event_name = %s"
            " RETURNING event_name, version, schema, created_at",
            (
                app_id,
                event_name,
                stored,
                now,
                app_id,
                event_name,
            ),
        )
        return RuleVersion(*cur.fetchone())


def _jsonb(schema: dict[str, Any] | JsonText) -> Any:
    # The text as a string parameter, which the jsonb column parses.
    return schema.text if isinstance(schema, JsonText) else Json(schema)


# --- events -------------------------------------------------------------------------

# An event as the API shows it: as stored, but for its app, which the URL names.
EVENT_FIELDS = tuple(name for name in SHOWN if name != "app_id")
_SELECT_EVENTS = sql.SQL("SELECT {} FROM events WHERE ").format(names(EVENT_FIELDS))
_FIND_EVENT = _SELECT_EVENTS + sql.SQL("event_id = %s AND app_id = %s")
_FIND_EVENT_IN_DAYS = _FIND_EVENT + sql.SQL(" AND received_at >= %s AND received_at < %s")


# How far received_at may be from the time in an event id: ingest takes both in the
# same request, from the same clock.
_ID_TIME_MARGIN = timedelta(days=1)


def find_event(
    conn: Connection, app_id: str, event_id: uuid.UUID, issued_at: datetime | None
) -> dict[str, Any] | None:
    """The stored event.

    `issued_at`, the time in its id, lets PostgreSQL probe the partitions of the days
    around it instead of every day's index; a row not there (an id made on another
    clock than its received_at) is looked for in all of them.
    """
    searches: list[tuple[sql.Composable, tuple[Any, ...]]] = []
    if issued_at is not None:
        days = (issued_at - _ID_TIME_MARGIN, issued_at + _ID_TIME_MARGIN)
        searches.append((_FIND_EVENT_IN_DAYS, (event_id, app_id, *days)))
    searches.append((_FIND_EVENT, (event_id, app_id)))
    with exact_cursor(conn) as cur:
        for statement, params in searches:
            cur.execute(statement, params)
            if row := cur.fetchone():
                return dict(zip(EVENT_FIELDS, row, strict=True))
    return None


def find_duplicate(
    conn: Connection, app_id: str, event_id: uuid.UUID
) -> tuple[uuid.UUID, datetime] | None:
    """The stored event a skipped copy stands for: its id and received_at (migrations/0010)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT original_event_id, original_received_at FROM event_duplicates"
            " WHERE event_id = %s AND app_id = %s",
            (event_id, app_id),
        )
        row = cur.fetchone()
    return (row[0], row[1]) if row else None


def list_events(
    conn: Connection,
    app_id: str,
    *,
    limit: int,
    status: str | None = None,
    event_name: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Newest first by (occurred_at, event_id); `after` is the last row of the previous page.

    Walks events_app_newest (or events_app_name_newest with a name) from the newest
    end of the app's range: the time bounds and the cursor narrow the index range,
    and the scan stops after `limit` rows (benchmarks/events_list.py shows the plan).
    """
    conditions = ["app_id = %s"]
    params: list[Any] = [app_id]
    if event_name is not None:
        conditions.append("event_name = %s")
        params.append(event_name)
    if status is not None:
        conditions.append("status = %s")
        params.append(status)
    _newest_first(conditions, params, "occurred_at", "event_id", since, until, after)
    with exact_cursor(conn) as cur:
        cur.execute(
            _SELECT_EVENTS
            + sql.SQL(" AND ").join(sql.SQL(condition) for condition in conditions)
            + sql.SQL(" ORDER BY occurred_at DESC, event_id DESC LIMIT %s"),
            (*params, limit),
        )
        return [dict(zip(EVENT_FIELDS, row, strict=True)) for row in cur.fetchall()]


def _newest_first(
    conditions: list[str],
    params: list[Any],
    time_column: str,
    id_column: str,
    since: datetime | None,
    until: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
) -> None:
    """Adds a newest-first list's time bounds and keyset cursor (the page before's last
    row) to `conditions` and `params`. The column names are this module's constants."""
    if since is not None:
        conditions.append(f"{time_column} >= %s")
        params.append(since)
    if until is not None:
        conditions.append(f"{time_column} < %s")
        params.append(until)
    if after is not None:
        # The first condition lets the index range stop at the cursor; the second
        # breaks ties between rows of the same instant.
        conditions.append(f"{time_column} <= %s AND ({time_column}, {id_column}) < (%s, %s)")
        params.extend([after[0], after[0], after[1]])


def event_id_key(conn: Connection) -> bytes:
    from sluice.intake.event_ids import read_key

    return read_key(conn)


def list_rejections(
    conn: Connection,
    app_id: str,
    *,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[dict[str, Any]]:
    """Newest first by (received_at, rejection_id); `after` is the last row of the page before.

    Walks rejections_app_newest, as list_events walks events_app_newest.
    """
    conditions = ["app_id = %s"]
    params: list[Any] = [app_id]
    _newest_first(conditions, params, "received_at", "rejection_id", since, until, after)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL(
                "SELECT rejection_id, received_at, route, item_index, message_id, code, message"
                " FROM rejections WHERE "
            )
            + sql.SQL(" AND ").join(sql.SQL(condition) for condition in conditions)
            + sql.SQL(" ORDER BY received_at DESC, rejection_id DESC LIMIT %s"),
            [*params, limit],
        )
        columns = [column.name for column in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
