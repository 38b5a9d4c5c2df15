"""Ingest's SQL: an app with its rules, and the app a key belongs to (read only).

Functions take a psycopg2 connection and leave transactions to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.core.db import Connection


@dataclass(frozen=True, slots=True)
class AppRecord:
    app_id: str
    require_key: bool
    rules: dict[str, Any]  # event name -> JSON Schema
    invalid_events: str = "store"  # policies (migrations/0005_manage.sql)
    unplanned_events: str = "allow"


def fetch_app(conn: Connection, app_id: str) -> AppRecord | None:
    """The app with all its rules, in one round trip."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.require_key, a.invalid_events, a.unplanned_events, r.event_name, r.schema"
            " FROM apps a LEFT JOIN rules r ON r.app_id = a.app_id"
            " WHERE a.app_id = %s",
            (app_id,),
        )
        rows = cur.fetchall()
    if not rows:
        return None
    rules = {name: schema for *_, name, schema in rows if name is not None}
    require_key, invalid_events, unplanned_events = rows[0][:3]
    return AppRecord(app_id, require_key, rules, invalid_events, unplanned_events)


def fetch_key_owner(conn: Connection, key_hash: bytes) -> str | None:
    """The app a live (unrevoked) key belongs to."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT app_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (key_hash,),
        )
        row = cur.fetchone()
    return row[0] if row else None
