"""The store function's SQL for rejection records (migrations/0013): insert only."""

from __future__ import annotations

from psycopg2.extras import execute_values

from sluice.core.db import Connection
from sluice.queued_events import Rejection


def insert_rejections(conn: Connection, rejections: list[Rejection]) -> int:
    """Adds the records not there yet (a redelivered message adds nothing); returns how many."""
    with conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO rejections (rejection_id, app_id, received_at, route, item_index,"
            " message_id, code, message) VALUES %s ON CONFLICT DO NOTHING",
            [
                (
                    str(r.rejection_id),
                    r.app_id,
                    r.received_at,
                    r.route,
                    r.index,
                    r.message_id,
                    r.code,
                    r.message,
                )
                for r in rejections
            ],
            page_size=len(rejections) or 1,  # one statement: rowcount counts them all
        )
        return cur.rowcount
