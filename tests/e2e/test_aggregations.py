"""Aggregations on the local runtime: events sent through the API show up in the rollups.

The e2e settings shorten the aggregate schedule to a few seconds (AWS default: five
minutes); the runtime fires it by itself, or at once through /_local/schedules.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sluice.rollups.stats import stats_series

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


def test_the_stats_route_shows_what_was_sent_once_the_schedule_has_fired(sluice, db):
    from urllib.parse import urlencode

    from tests.e2e.test_accounts import call
    from tests.e2e.test_manage import owner_session, send

    # Given an owner's app, made through the management API, and events sent with its key
    token = owner_session(sluice)
    status, app, _ = call(sluice, "/api/apps", {"name": "Counted"}, token=token)
    assert status == 201, app
    app_id, key = app["app_id"], app["api_key"]["key"]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    yesterday = hour - timedelta(days=1)
    # (This hour's events say so, so the test cannot straddle the turn of an hour.)
    for event in (
        {"eventName": "login", "timestamp": hour.isoformat()},
        {"eventName": "login", "timestamp": hour.isoformat()},
        {"eventName": "purchase", "timestamp": yesterday.isoformat()},
    ):
        assert send(sluice, app_id, key, event)[0] == 202
    stored(db, app_id, 3)

    # When the aggregate schedule is fired now (a request with no browser headers, as
    # toolkit.forgery wants), rather than waited for
    status, _, body = http("POST", sluice.api_url + "/_local/schedules/AggregateFunction/Schedule")
    assert status == 200, body
    assert json.loads(body)["result"]["caught_up"] is True

    # Then the stats route counts them in their hours, with zeros between
    query = urlencode(
        {"from": yesterday.isoformat(), "to": (hour + timedelta(hours=1)).isoformat()}
    )
    path = f"/api/apps/{app_id}/stats?{query}"
    status, stats, _ = call(sluice, path, method="GET", token=token)
    assert status == 200, stats
    assert (stats["total"], len(stats["series"])) == (3, 25)
    assert stats["series"][0] == {"start": yesterday.isoformat(), "count": 1}
    assert stats["series"][-1] == {"start": hour.isoformat(), "count": 2}
    assert {p["count"] for p in stats["series"][1:-1]} == {0}
    assert datetime.fromisoformat(stats["complete_through"]) >= hour
    # And only for its owner; a bad query says why
    status, answer, _ = call(sluice, path, method="GET", token=owner_session(sluice))
    assert (status, answer["error"]) == (404, "app_not_found")
    status, answer, _ = call(sluice, path + "&granularity=week", method="GET", token=token)
    assert (status, answer["error"]) == (400, "invalid_granularity")
