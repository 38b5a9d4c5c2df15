"""Segment's Tracking API through the local runtime over real HTTP, as a browser sends it."""

from __future__ import annotations

import base64
import gzip
import json
import uuid

from local_runtime.sqs import sqs_client
from tests.local_runtime.conftest import http
from tests.support import make_app, wait_for

ORIGIN = "https://shop.example"


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def stored(db, app_id: str, count: int) -> list[tuple]:
    """Waits until the app has `count` rows; returns (message_id, event_name, payload)."""

    def rows() -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(
                "SELECT message_id, event_name, payload FROM events WHERE app_id = %s"
                " ORDER BY message_id",
                (app_id,),
            )
            found = cur.fetchall()
        return found if len(found) >= count else []

    return wait_for(rows)


def queue_is_empty(sluice) -> bool:
    client = sqs_client(sluice.sqs_url, "us-east-1")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = client.get_queue_attributes(
        QueueUrl=sluice.queue_urls["EventsQueue"], AttributeNames=names
    )["Attributes"]
    return all(attributes[name] == "0" for name in names)


def test_a_browser_preflight_is_answered_with_the_headers_analytics_next_sends(sluice):
    status, headers, _ = http(
        "OPTIONS",
        sluice.api_url + "/v1/t",
        None,
        {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-retry-count",
        },
    )
    assert status == 204
    assert headers["access-control-allow-origin"] == ["*"]
    allowed = set(headers["access-control-allow-headers"][0].split(","))
    assert {"content-type", "authorization", "x-retry-count"} <= allowed
    assert "POST" in headers["access-control-allow-methods"][0].split(",")


def test_a_browser_call_as_text_plain_is_stored(sluice, db):
    app_id, key = make_app(db)
    message = {"event": "Clicked", "anonymousId": "a1", "messageId": str(uuid.uuid4())}
    status, headers, body = http(
        "POST",
        sluice.api_url + "/v1/t",
        json.dumps(message).encode(),
        {"Origin": ORIGIN, "Content-Type": "text/plain", "Authorization": basic(key)},
    )
    assert (status, json.loads(body)) == (
        200,
        {"success": True, "accepted": 1, "invalid": 0, "rejected": 0},
    )
    assert headers["access-control-allow-origin"] == ["*"]
    [(message_id, name, payload)] = stored(db, app_id, 1)
    assert (message_id, name) == (message["messageId"], "Clicked")
    assert payload == {**message, "type": "track"}


def test_a_gzip_batch_resent_is_stored_once_and_a_bad_key_is_401(sluice, db):
    app_id, key = make_app(db)
    batch = {
        "batch": [
            {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"plan": "pro"}},
            {"type": "track", "userId": "u1", "event": "Paid", "messageId": "m2"},
        ],
        "sentAt": "2026-01-01T00:00:00Z",
    }
    raw = gzip.compress(json.dumps(batch).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    for _ in range(2):  # the resend a client makes when it saw no answer
        status, _, body = http(
            "POST", sluice.api_url + "/v1/batch", raw, {**headers, "Authorization": basic(key)}
        )
        assert status == 200, body
    assert [row[:2] for row in stored(db, app_id, 2)] == [("m1", "identify"), ("m2", "Paid")]
    wait_for(lambda: queue_is_empty(sluice))  # the resend's copies are through the store too
    assert len(stored(db, app_id, 2)) == 2

    status, _, body = http(
        "POST", sluice.api_url + "/v1/batch", raw, {**headers, "Authorization": basic("sk_x")}
    )
    assert status == 401
    assert set(json.loads(body)) >= {"code", "message"}


def test_the_owner_sees_a_batchs_rejected_message_and_why(sluice, db):
    from tests.e2e.test_accounts import call
    from tests.e2e.test_manage import owner_session

    # Given an owner's app, made through the management API
    token = owner_session(sluice)
    status, app, _ = call(sluice, "/api/apps", {"name": "Shop"}, token=token)
    assert status == 201
    app_id, key = app["app_id"], app["api_key"]["key"]
    # When a library's batch holds one message without its event name
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    batch = {
        "batch": [
            {"type": "track", "event": "Clicked", "userId": "u1", "messageId": good},
            {"type": "track", "userId": "u1", "messageId": bad},
        ]
    }
    status, _, body = http(
        "POST",
        sluice.api_url + "/v1/batch",
        json.dumps(batch).encode(),
        {"Content-Type": "application/json", "Authorization": basic(key)},
    )
    answer = json.loads(body)
    assert (status, answer["rejected"]) == (200, 1)
    [told] = answer["rejections"]

    # Then, once the store ran, the owner lists that message: where and why
    def listed() -> list[dict]:
        status, page, _ = call(sluice, f"/api/apps/{app_id}/rejections", method="GET", token=token)
        assert status == 200
        return page["rejections"]

    [rejection] = wait_for(listed)
    assert (rejection["route"], rejection["index"], rejection["message_id"]) == (
        "/v1/batch",
        1,
        bad,
    )
    assert (rejection["code"], rejection["message"]) == (told["code"], told["message"])
    assert [row[0] for row in stored(db, app_id, 1)] == [good]
