"""The maintain run deletes rejection records REJECTIONS_KEPT after they were received.

Records are written with the store function's own SQL and role, as the store writes
them; the run is sluice.retention.maintain.run on the maintain role's connection.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.queued_events import Rejection
from sluice.retention import maintain
from sluice.store.rejections_data import insert_rejections

NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
CUTOFF = NOW - maintain.REJECTIONS_KEPT  # received before this: deleted; at it or after: kept
TICK = timedelta(microseconds=1)


@pytest.fixture
def store_role(database_url: str) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=database_url, user="sluice_store"))
    yield database
    database.close()


def record(received_at: datetime, index: int = 0) -> Rejection:
    return Rejection(
        rejection_id=uuid.uuid4(),
        app_id="app_x",
        received_at=received_at,
        route="/v1/batch",
        index=index,
        message_id=None,
        code="invalid_event_name",
        message="why",
    )


def received(db) -> list[datetime]:
    with db.cursor() as cur:
        cur.execute("SELECT received_at FROM rejections ORDER BY received_at")
        return [row[0] for row in cur.fetchall()]


def test_records_past_the_kept_span_go_in_chunks_and_newer_ones_stay(
    db, store_role, maintainer, bucket
):
    old = [record(CUTOFF - TICK - timedelta(days=n), n) for n in range(5)]
    kept = [record(CUTOFF), record(NOW)]
    assert store_role.run(lambda c: insert_rejections(c, [*old, *kept])) == 7

    result = maintain.run(maintainer, bucket, NOW, maintain.MaintainPolicy(chunk_size=2))

    assert result.rejections_purged == 5
    assert received(db) == [CUTOFF, NOW]
    assert result.finished
