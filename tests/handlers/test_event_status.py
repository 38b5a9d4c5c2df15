"""An app's API key follows its own events: GET /api/logs/{app_id}/events/{event_id}.

For the clients of the replaced design, which tracked a task id with the app's key
alone. The manage function answers, as its own database role; ingest, the store and
PostgreSQL are the real ones.
"""

from __future__ import annotations

import json

import pytest

import functions.ingest.app as ingest_app
import functions.manage.app as manage_app
import functions.store.app as store_app
from tests.support import drain, http_event, make_app, sqs_event

RULE = {"type": "object", "properties": {"total": {"type": "integer"}}}


@pytest.fixture
def manage_role(database_url, clock, monkeypatch):
    """The manage handler as sluice_manage: the route's needs are among its grants."""
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    service = Manager(Database(DatabaseSettings(url=database_url, user="sluice_manage")), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    yield service
    service.database.close()


def send(context, app_id: str, key: str | None, event: dict) -> dict:
    headers = {"x-api-key": key} if key else {}
    response = ingest_app.handler(
        http_event(f"/api/logs/{app_id}", event, headers=headers), context
    )
    assert response["statusCode"] in (202, 422), response
    return json.loads(response["body"])


def status_of(context, app_id: str, event_id: str, headers: dict[str, str]):
    event = http_event(f"/api/logs/{app_id}/events/{event_id}", None, method="GET", headers=headers)
    response = manage_app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def store_all(context, sqs, queues) -> None:
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }


def test_the_apps_key_follows_its_event_from_queued_to_stored(
    context, db, ingestor, store_database, manage_role, sqs, queues
):
    # Given an event that breaks its app's rule, sent with the app's key
    app_id, key = make_app(db, rules={"checkout": RULE})
    sent = send(context, app_id, key, {"eventName": "checkout", "total": "3", "messageId": "m"})
    event_id = sent["event_id"]
    # Then the same key sees it queued, in either header ingest takes
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        assert status_of(context, app_id, event_id, headers) == (
            200,
            {"event_id": event_id, "status": "queued"},
        )
    # And once stored: its state and the rule's errors, and nothing of the payload
    store_all(context, sqs, queues)
    status, body = status_of(context, app_id, event_id, {"x-api-key": key})
    assert status == 200, body
    assert set(body) == {
        "event_id",
        "event_name",
        "status",
        "validation_errors",
        "received_at",
        "stored_at",
    }
    assert (body["event_id"], body["event_name"], body["status"]) == (
        event_id,
        "checkout",
        "invalid",
    )
    assert body["validation_errors"] == sent["errors"]
    # And a retry of its messageId leads to the same row
    retry = send(context, app_id, key, {"eventName": "checkout", "total": "3", "messageId": "m"})
    store_all(context, sqs, queues)
    status, again = status_of(context, app_id, retry["event_id"], {"x-api-key": key})
    assert status == 200
    assert again == {**body, "duplicate_event_id": retry["event_id"]}


def test_a_key_sees_only_its_own_apps_events(
    context, db, ingestor, store_database, manage_role, sqs, queues
):
    # Given two apps, each with an event
    app_id, key = make_app(db)
    other_app, other_key = make_app(db)
    mine = send(context, app_id, key, {"eventName": "a"})["event_id"]
    theirs = send(context, other_app, other_key, {"eventName": "a"})["event_id"]

    def answer(app: str, event_id: str, headers: dict[str, str]):
        status, body = status_of(context, app, event_id, headers)
        return status, body["error"]

    for _ in ("queued", "stored"):
        # A key answers for its own app only: another app's key, none, a wrong one: 401
        assert answer(app_id, mine, {"x-api-key": other_key}) == (401, "unauthorized")
        assert answer(app_id, mine, {}) == (401, "unauthorized")
        assert answer(app_id, mine, {"x-api-key": key + "x"}) == (401, "unauthorized")
        assert answer(app_id, mine, {"x-api-key": ""}) == (401, "unauthorized")
        # Another app's event under its own app's path: as if it never existed
        assert answer(app_id, theirs, {"x-api-key": key}) == (404, "event_not_found")
        assert answer(app_id, "not-an-id", {"x-api-key": key}) == (404, "event_not_found")
        # An app that does not exist: as ingest answers
        assert answer("app_nobody", mine, {"x-api-key": key}) == (404, "app_not_found")
        assert status_of(context, app_id, mine, {"x-api-key": key})[0] == 200
        store_all(context, sqs, queues)
    # A revoked key opens nothing any more
    with db.cursor() as cur:
        cur.execute("UPDATE api_keys SET revoked_at = now() WHERE app_id = %s", (app_id,))
    assert answer(app_id, mine, {"x-api-key": key}) == (401, "unauthorized")


def test_a_keyless_app_answers_as_ingest_does(
    context, db, ingestor, store_database, manage_role, sqs, queues
):
    # Given an app that takes events without a key
    app_id, _ = make_app(db, require_key=False)
    event_id = send(context, app_id, None, {"eventName": "a"})["event_id"]
    store_all(context, sqs, queues)
    # Then its events' states need none either, but a key sent must be the app's
    status, body = status_of(context, app_id, event_id, {})
    assert (status, body["status"]) == (200, "valid")
    assert status_of(context, app_id, event_id, {"x-api-key": "sk_nope"})[0] == 401
