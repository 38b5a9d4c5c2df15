"""Storing made-up events and counting them straight from the events table."""

from __future__ import annotations

import json
from datetime import datetime

from sluice.store.events_data import insert_events
from uuid_utils.compat import uuid7


def wire_event(
    app_id: str,
    event_name: str,
    occurred_at: datetime,
    *,
    status: str = "valid",
    user_id: object = None,
    message_id: str | None = None,
    received_at: datetime | None = None,
) -> dict:
    """An event in the form the store function writes (sluice.store.events_data.insert_events)."""
    payload = {"eventName": event_name}
    if user_id is not None:
        payload["userId"] = user_id
    return {
        "event_id": str(uuid7()),
        "app_id": app_id,
        "event_name": event_name,
        "payload": json.dumps(payload),
        "status": status,
        "validation_errors": None,
        "message_id": message_id,
        "client_timestamp": None,
        "sent_at": None,
        "occurred_at": occurred_at.isoformat(),
        "received_at": (received_at or occurred_at).isoformat(),
    }


def store(conn, events: list[dict]) -> int:
    """Stores events in one transaction of their own, as one store invocation does."""
    with conn, conn.cursor():
        return insert_events(conn, events)


def direct_counts(conn) -> dict[str, set]:
    """What the rollups must hold, counted from the events themselves."""
    queries = {
        "hourly": (
            "SELECT app_id, date_trunc('hour', occurred_at, 'UTC'), event_name, status, count(*)"
            " FROM events GROUP BY 1, 2, 3, 4"
        ),
        "daily": (
            "SELECT app_id, date_trunc('day', occurred_at, 'UTC'), event_name, status, count(*)"
            " FROM events GROUP BY 1, 2, 3, 4"
        ),
        "users": (
            "SELECT app_id, date_trunc('day', occurred_at, 'UTC'), count(DISTINCT"
            " payload ->> 'userId') FROM events WHERE payload ->> 'userId' IS NOT NULL"
            " GROUP BY 1, 2"
        ),
    }
    return _fetch(conn, queries)


def rollups(conn) -> dict[str, set]:
    queries = {
        "hourly": "SELECT app_id, hour, event_name, status, events FROM event_counts_hourly",
        "daily": "SELECT app_id, day, event_name, status, events FROM event_counts_daily",
        "users": "SELECT app_id, day, count(*) FROM daily_users GROUP BY 1, 2",
    }
    return _fetch(conn, queries)


def _fetch(conn, queries: dict[str, str]) -> dict[str, set]:
    found = {}
    with conn.cursor() as cur:
        for name, query in queries.items():
            cur.execute(query)
            found[name] = set(cur.fetchall())
    if not conn.autocommit:
        conn.rollback()
    return found


def total_counted(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(sum(events), 0) FROM event_counts_hourly")
        (total,) = cur.fetchone()
    if not conn.autocommit:
        conn.rollback()
    return int(total)
