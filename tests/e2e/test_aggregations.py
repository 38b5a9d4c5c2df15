"""Aggregations on the local runtime: events sent through the API show up in the rollups.

The e2e settings shorten the aggregate schedule to a few seconds (AWS default: five
minutes); the runtime fires it by itself, or at once through /_local/schedules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sluice.stats import stats_series

from tests.e2e.test_sluice import post, stored
from tests.local_runtime.conftest import http
from tests.support import make_app, wait_for


def counted(db, app_id: str) -> int:
    with db.cursor() as cur:
        cur.execute(
            "SELECT coalesce(sum(events), 0) FROM event_counts_hourly WHERE app_id = %s",
            (app_id,),
        )
        return int(cur.fetchone()[0])


def test_the_schedule_fires_and_the_rollups_reflect_events_sent_through_the_api(sluice, db):
    app_id, key = make_app(db)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    yesterday = hour - timedelta(days=1)
    events = [
        {"eventName": "login", "userId": 1},
        {"eventName": "login", "userId": 2, "messageId": "once"},
        {"eventName": "login", "userId": 2, "messageId": "once"},  # a retry: stored once
        # Sent now about yesterday: counted in yesterday's hour.
        {"eventName": "purchase", "userId": 1, "timestamp": yesterday.isoformat()},
    ]
    status, body = post(sluice, f"/api/logs/{app_id}/batch", events, key)
    assert status == 202, body
    stored(db, app_id, 3)

    # Nothing is fired by the test: the runtime's scheduler runs the function.
    wait_for(lambda: counted(db, app_id) == 3)

    day = stats_series(db, app_id, yesterday, hour + timedelta(hours=1), "hour")
    assert dict(day.points)[yesterday] == 1
    assert sum(n for _, n in day.points) == 3
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM daily_users WHERE app_id = %s", (app_id,))
        assert cur.fetchone()[0] >= 2  # users 1 and 2 today (1 again yesterday)


def test_firing_the_schedule_now_counts_what_was_just_stored(sluice, db):
    app_id, key = make_app(db)
    status, _ = post(sluice, f"/api/logs/{app_id}", {"eventName": "signup"}, key)
    assert status == 202
    stored(db, app_id, 1)

    status, _, body = http("POST", sluice.api_url + "/_local/schedules/AggregateFunction/Schedule")

    assert status == 200, body
    assert json.loads(body)["result"]["caught_up"] is True
    assert counted(db, app_id) == 1
