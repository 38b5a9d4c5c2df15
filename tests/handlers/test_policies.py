"""Per-app policies as ingest honours them, and dry runs that queue nothing.

The real ingest handler, the test database, moto's SQS: each test reads the queue to
see what was (or was not) sent on.
"""

from __future__ import annotations

import json

import pytest
from sluice.manage import admin

import functions.ingest.app as ingest_app
from tests.support import drain, drain_events, http_event, make_app

RULE = {"type": "object", "required": ["total"]}


def post(context, path: str, body, key: str):
    response = ingest_app.handler(http_event(path, body, headers={"x-api-key": key}), context)
    return response["statusCode"], json.loads(response["body"])


def with_query(event: dict, query: str) -> dict:
    event["rawQueryString"] = query
    name, _, value = query.partition("=")
    event["queryStringParameters"] = {name: value} if name else None
    return event


def set_policies(db, app_id: str, invalid: str, unplanned: str) -> None:
    with db.cursor() as cur:
        cur.execute(
            "UPDATE apps SET invalid_events = %s, unplanned_events = %s WHERE app_id = %s",
            (invalid, unplanned, app_id),
        )


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"checkout": RULE})


def test_by_default_invalid_events_are_stored_and_unplanned_names_allowed(
    app_and_key, ingestor, context, sqs, queues
):
    app_id, key = app_and_key
    assert post(context, f"/api/logs/{app_id}", {"eventName": "checkout"}, key)[0] == 422
    assert post(context, f"/api/logs/{app_id}", {"eventName": "signup"}, key)[0] == 202
    assert len(drain(sqs, queues["events"])) == 2


def test_block_policies_refuse_with_422_and_queue_nothing(
    db, app_and_key, ingestor, context, sqs, queues
):
    app_id, key = app_and_key
    set_policies(db, app_id, "block", "block")

    status, invalid = post(context, f"/api/logs/{app_id}", {"eventName": "checkout"}, key)
    assert (status, invalid["error"]) == (422, "validation_failed")
    assert invalid["errors"][0]["keyword"] == "required"
    status, unplanned = post(context, f"/api/logs/{app_id}", {"eventName": "signup"}, key)
    assert (status, unplanned["error"]) == (422, "unplanned_event")
    assert drain(sqs, queues["events"]) == []
    # A valid, planned event still goes through
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "checkout", "total": 1}, key)[0] == 202
    )


def test_a_batch_says_per_item_which_the_policies_blocked(
    db, app_and_key, ingestor, context, sqs, queues
):
    app_id, key = app_and_key
    set_policies(db, app_id, "block", "block")
    batch = [{"eventName": "checkout", "total": 1}, {"eventName": "checkout"}, {"eventName": "x"}]
    status, body = post(context, f"/api/logs/{app_id}/batch", batch, key)
    assert status == 202
    assert [(r["status"], r.get("error")) for r in body["results"]] == [
        ("valid", None),
        ("rejected", "validation_failed"),
        ("rejected", "unplanned_event"),
    ]
    assert body["results"][1]["errors"][0]["keyword"] == "required"
    assert len(drain_events(sqs, queues["events"])) == 1


@pytest.mark.parametrize("query", ["dry_run=true", "dry_run=1"])
def test_a_dry_run_answers_the_verdict_and_queues_nothing(
    app_and_key, ingestor, context, sqs, queues, query
):
    app_id, key = app_and_key
    headers = {"x-api-key": key}

    def dry(path, body):
        event = with_query(http_event(path, body, headers=headers), query)
        response = ingest_app.handler(event, context)
        return response["statusCode"], json.loads(response["body"])

    status, valid = dry(f"/api/logs/{app_id}", {"eventName": "checkout", "total": 1})
    assert (status, valid["status"], valid["dry_run"], valid["event_id"]) == (
        200,
        "valid",
        True,
        None,
    )
    status, invalid = dry(f"/api/logs/{app_id}", {"eventName": "checkout"})
    assert (status, invalid["status"], invalid["errors"][0]["keyword"]) == (
        422,
        "invalid",
        "required",
    )
    status, batch = dry(f"/api/logs/{app_id}/batch", [{"eventName": "checkout"}, {"x": 1}])
    assert status == 200 and batch["dry_run"]
    assert [r["status"] for r in batch["results"]] == ["invalid", "rejected"]
    # Keys are checked as for a real send
    event = with_query(http_event(f"/api/logs/{app_id}", {"eventName": "a"}), query)
    assert ingest_app.handler(event, context)["statusCode"] == 401
    assert drain(sqs, queues["events"]) == []


@pytest.mark.parametrize("query", ["dry_run=maybe", "dry_run=yes", "dry_run=", "dry_run"])
@pytest.mark.parametrize("route", ["", "/batch"])
def test_dry_run_takes_only_true_or_false(
    app_and_key, ingestor, context, sqs, queues, query, route
):
    """An empty dry_run made a real send: refused, like any value that is not documented."""
    app_id, key = app_and_key
    body = {"eventName": "a"} if not route else [{"eventName": "a"}]
    event = with_query(
        http_event(f"/api/logs/{app_id}{route}", body, headers={"x-api-key": key}), query
    )
    response = ingest_app.handler(event, context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "invalid_request"
    assert drain(sqs, queues["events"]) == []


@pytest.mark.parametrize("query", ["dry_run=false", "dry_run=0", "dry_run=FALSE", ""])
def test_a_send_without_a_true_dry_run_is_real(app_and_key, ingestor, context, query):
    app_id, key = app_and_key
    event = with_query(
        http_event(f"/api/logs/{app_id}", {"eventName": "a"}, headers={"x-api-key": key}), query
    )
    response = ingest_app.handler(event, context)
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["event_id"]


def dry_run(context, path: str, body, key: str):
    event = with_query(http_event(path, body, headers={"x-api-key": key}), "dry_run=true")
    response = ingest_app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_a_dry_run_sees_a_change_at_once_where_a_real_send_follows_within_the_ttl(
    db, app_and_key, ingestor, context, sqs, queues
):
    # Given an app whose rule, policies and key ingest has just cached
    app_id, key = app_and_key
    path = f"/api/logs/{app_id}"
    assert post(context, path, {"eventName": "checkout", "total": 1}, key)[0] == 202

    # When its rule changes, a dry run answers by the new rule at once
    admin.put_rule(db, app_id, "checkout", {"type": "object", "required": ["total", "cart"]})
    status, body = dry_run(context, path, {"eventName": "checkout", "total": 1}, key)
    assert (status, body["status"], body["errors"][0]["keyword"]) == (422, "invalid", "required")

    # And a policy change too
    set_policies(db, app_id, "block", "block")
    status, body = dry_run(context, path, {"eventName": "signup"}, key)
    assert (status, body["error"]) == (422, "unplanned_event")

    # And a revoked key is refused at once
    with db.cursor() as cur:
        cur.execute("UPDATE api_keys SET revoked_at = now() WHERE app_id = %s", (app_id,))
    assert dry_run(context, path, {"eventName": "checkout"}, key)[0] == 401

    # And a deleted app is unknown at once
    with db.cursor() as cur:
        cur.execute("DELETE FROM apps WHERE app_id = %s", (app_id,))
    status, body = dry_run(context, path, {"eventName": "checkout"}, key)
    assert (status, body["error"]) == (404, "app_not_found")
    # And only the first, real send was queued
    assert len(drain(sqs, queues["events"])) == 1


def test_a_real_send_follows_a_change_within_the_cache_ttl(
    db, app_and_key, ingestor, context, clock, ingest_settings
):
    app_id, key = app_and_key
    path = f"/api/logs/{app_id}"
    assert post(context, path, {"eventName": "checkout", "total": 1}, key)[0] == 202
    admin.put_rule(db, app_id, "checkout", {"type": "object", "required": ["total", "cart"]})
    # The cached rule until the TTL is over (what each change's answer says)...
    assert post(context, path, {"eventName": "checkout", "total": 1}, key)[0] == 202
    clock.advance(ingest_settings.cache.rules_ttl)
    # ...then the new one
    assert post(context, path, {"eventName": "checkout", "total": 1}, key)[0] == 422
