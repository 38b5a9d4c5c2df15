"""The maintain function's SQL for rejection records (migrations/0013): old ones go.

As in account_purge, a chunk's keys are picked first, then deleted through the key;
the maintain role reads only rejection_id and received_at.
"""

from __future__ import annotations

from datetime import datetime

from sluice.core.db import Connection


def purge_rejections(conn: Connection, *, received_before: datetime, limit: int) -> int:
    """At most `limit` records received before `received_before`; returns how many."""
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM rejections WHERE rejection_id = ANY(ARRAY("
            "  SELECT rejection_id FROM rejections"
            "  WHERE received_at < %(before)s ORDER BY received_at LIMIT %(limit)s))",
            {"before": received_before, "limit": limit},
        )
        return cur.rowcount
