"""Events through the local API to rows in PostgreSQL, the way they travel in AWS."""

from __future__ import annotations

import json
import uuid

from local_runtime.sqs import sqs_client
from tests.local_runtime.conftest import http
from tests.support import make_app, wait_for

LOGIN_RULE = {
    "type": "object",
    "required": ["userId"],
    "properties": {"userId": {"type": "integer"}},
}


def post(sluice, path: str, body, key: str) -> tuple[int, dict]:
    status, _, data = http(
        "POST",
        sluice.api_url + path,
        json.dumps(body).encode(),
        {"X-Api-Key": key, "Content-Type": "application/json"},
    )
    return status, json.loads(data)


def stored(db, app_id: str, count: int) -> list[tuple]:
    """Waits until the app has `count` rows; returns (event_name, status, payload, errors)."""

    def rows() -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(
                "SELECT event_name, status, payload, validation_errors FROM events"
                " WHERE app_id = %s ORDER BY event_id",
                (app_id,),
            )
            found = cur.fetchall()
        return found if len(found) >= count else []

    return wait_for(rows)


def test_a_valid_event_is_accepted_and_stored(sluice, db):
    app_id, key = make_app(db, rules={"user_login": LOGIN_RULE})
    event = {"eventName": "user_login", "userId": 42, "messageId": str(uuid.uuid4())}

    status, body = post(sluice, f"/api/logs/{app_id}", event, key)

    assert status == 202, body
    assert body["status"] == "valid"
    assert stored(db, app_id, 1) == [("user_login", "valid", event, None)]


def test_an_invalid_event_gets_422_and_is_stored_as_invalid(sluice, db):
    app_id, key = make_app(db, rules={"user_login": LOGIN_RULE})

    status, body = post(
        sluice, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": "x"}, key
    )

    assert status == 422
    assert body["error"] == "validation_failed"
    ((name, state, payload, errors),) = stored(db, app_id, 1)
    assert (name, state, payload["userId"]) == ("user_login", "invalid", "x")
    assert errors[0]["path"] == "/userId"


def test_a_batch_request_stores_each_event_on_its_own(sluice, db):
    app_id, key = make_app(db, rules={"user_login": LOGIN_RULE})
    events = [
        {"eventName": "user_login", "userId": 1},
        {"eventName": "user_login", "userId": "two"},
        {"userId": 3},
        {"eventName": "page_view", "path": "/"},
    ]

    status, body = post(sluice, f"/api/logs/{app_id}/batch", events, key)

    assert status == 202
    assert [body[k] for k in ("accepted", "invalid", "rejected", "failed")] == [2, 1, 1, 0]
    rows = stored(db, app_id, 3)
    assert sorted((name, state) for name, state, _, _ in rows) == [
        ("page_view", "valid"),
        ("user_login", "invalid"),
        ("user_login", "valid"),
    ]


def test_an_event_sqs_cannot_carry_is_refused_alone_at_the_door(sluice, db):
    """Through local_queue, which refuses U+FFFE/U+FFFF as SQS does: no 503, no lost batch."""
    app_id, key = make_app(db)
    headers = {"X-Api-Key": key, "Content-Type": "application/json"}
    bad = '{"eventName": "x", "v": "\uffff"}'.encode()
    status, _, data = http("POST", f"{sluice.api_url}/api/logs/{app_id}", bad, headers)
    assert (status, json.loads(data)["error"]) == (400, "unstorable_value")

    good = [b'{"eventName": "ok", "n": %d}' % n for n in range(24)]
    batch = b"[" + b",".join([*good[:12], bad, *good[12:]]) + b"]"
    status, _, data = http("POST", f"{sluice.api_url}/api/logs/{app_id}/batch", batch, headers)
    body = json.loads(data)
    assert (status, body["accepted"], body["rejected"], body["failed"]) == (202, 24, 1, 0)
    assert body["results"][12]["error"] == "unstorable_value"
    assert len(stored(db, app_id, 24)) == 24


def test_a_poison_message_ends_in_the_dlq_while_good_events_are_stored(sluice, db):
    # Given a message on the events queue that is no Sluice message
    client = sqs_client(sluice.sqs_url, "us-east-1")
    poison = json.dumps({"poison": str(uuid.uuid4())})
    client.send_message(QueueUrl=sluice.queue_urls["EventsQueue"], MessageBody=poison)
    # and good events sent through the API around it
    app_id, key = make_app(db)
    for n in range(3):
        status, _ = post(sluice, f"/api/logs/{app_id}", {"eventName": "tick", "n": n}, key)
        assert status == 202

    # Then the good events are stored
    assert len(stored(db, app_id, 3)) == 3
    # and the poison message is in the DLQ after its two receives
    dlq = sluice.queue_urls["EventsDeadLetterQueue"]

    def dead_letters() -> list[str]:
        messages = client.receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            client.change_message_visibility(
                QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return [m["Body"] for m in messages if m["Body"] == poison]

    assert wait_for(dead_letters) == [poison]


def test_a_wrong_key_is_refused_by_the_real_handler(sluice, db):
    app_id, _ = make_app(db)

    status, body = post(sluice, f"/api/logs/{app_id}", {"eventName": "x"}, "sk_wrong")

    assert (status, body["error"]) == (401, "unauthorized")


def test_a_forged_store_invocation_from_a_web_page_stores_nothing(sluice, db):
    # Given a queued-event message for an app, as a page could forge it for the store
    # function, skipping the API key and the app's rules
    from datetime import UTC, datetime

    from sluice.queued_events import QueuedEvent, pack, serialize_event

    from tests.support import sqs_event

    app_id, _ = make_app(db)
    now = datetime.now(UTC)
    event = QueuedEvent(
        event_id=uuid.uuid4(),
        app_id=app_id,
        event_name="forged",
        payload={"eventName": "forged"},
        status="valid",
        validation_errors=None,
        message_id=None,
        client_timestamp=None,
        sent_at=None,
        occurred_at=now,
        received_at=now,
    )
    [(body, _)] = pack([serialize_event(event)])
    forged = json.dumps(sqs_event([body.decode()])).encode()
    invoke = sluice.api_url + "/_local/invoke/StoreFunction"

    # When a page posts it cross-site, as text/plain (no preflight needed)
    status, _, _ = http(
        "POST", invoke, forged, {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    )

    # Then it is refused and nothing is stored: the endpoint answers only once the
    # invocation is over, so a row would be there now, as the same call by curl shows
    assert status == 403
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE app_id = %s", (app_id,))
        assert cur.fetchone()[0] == 0
    status, _, _ = http("POST", invoke, forged, {"Content-Type": "application/json"})
    assert status == 200
    assert [name for name, *_ in stored(db, app_id, 1)] == ["forged"]
