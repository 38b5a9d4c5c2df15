"""The ingest handler, called as API Gateway calls it, against Postgres and moto's SQS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sluice.intake.ingest import MAX_ANSWER_ISSUES
from sluice.intake.validation import MAX_ISSUES, OMITTED_KEYWORD, UNUSABLE_RULE_KEYWORD
from sluice.manage import admin
from sluice.manage.manage_data import save_rule

import functions.ingest.app as ingest_app
from tests.support import SwitchableProxy, drain, http_event, make_app

LOGIN_RULE = {
    "type": "object",
    "required": ["userId"],
    "properties": {"userId": {"type": "integer"}},
}


def respond(context, path: str, body, key: str | None = None, **kwargs) -> dict:
    """The handler's whole response, as Lambda would return it to API Gateway."""
    headers = {"x-api-key": key} if key else {}
    headers.update(kwargs.pop("headers", {}))
    return ingest_app.handler(http_event(path, body, headers=headers, **kwargs), context)


def post(context, path: str, body, key: str | None = None, **kwargs) -> tuple[int, dict]:
    response = respond(context, path, body, key, **kwargs)
    return response["statusCode"], json.loads(response["body"])


def queued_events(sqs, queues) -> list[dict]:
    """The queued events, each payload (the client's JSON text on the wire) parsed."""
    bodies = drain(sqs, queues["events"])
    # A rejections message (the records of refused items) holds no events.
    events = [event for body in bodies for event in json.loads(body).get("events", [])]
    for event in events:
        event["payload"] = json.loads(event["payload"])
    return events


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"user_login": LOGIN_RULE})


# --- one event --------------------------------------------------------------------


def test_valid_event_is_queued_and_acknowledged(ingestor, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    status, body = post(
        context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": 1}, key
    )

    assert status == 202
    assert body == {
        "event_id": body["event_id"],
        "task_id": body["event_id"],
        "event_name": "user_login",
        "status": "valid",
        "message": "Event queued for processing",
    }
    assert uuid.UUID(body["event_id"]).version == 7
    [queued] = queued_events(sqs, queues)
    assert queued["event_id"] == body["event_id"]
    assert queued["app_id"] == app_id
    assert queued["status"] == "valid"
    assert queued["payload"] == {"eventName": "user_login", "userId": 1}


def test_event_ids_are_time_ordered(ingestor, app_and_key, context, clock):
    app_id, key = app_and_key
    ids = [
        post(context, f"/api/logs/{app_id}", {"eventName": "tick"}, key)[1]["event_id"]
        for _ in range(20)
    ]
    assert ids == sorted(ids)


def test_event_breaking_its_rule_is_422_and_still_queued(
    ingestor, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    status, body = post(
        context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": "one"}, key
    )

    assert status == 422
    assert body["error"] == "validation_failed"
    assert body["status"] == "invalid"
    assert body["event_name"] == "user_login"
    assert body["message"]
    assert body["errors"] == [
        {"path": "/userId", "message": '"one" is not of type "integer"', "keyword": "type"}
    ]
    assert body["errors_omitted"] == 0
    [queued] = queued_events(sqs, queues)
    assert queued["event_id"] == body["event_id"]
    assert queued["status"] == "invalid"
    assert queued["validation_errors"] == body["errors"]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"eventName": "x",', "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"user_login"', "not_an_object"),
        (b"{}", "invalid_event_name"),
        (b'{"eventName": ""}', "invalid_event_name"),
        (b'{"eventName": 42}', "invalid_event_name"),
        (b'{"eventName": "' + b"x" * 129 + b'"}', "invalid_event_name"),
        (b'{"eventName": "x", "note": "nul\\u0000here"}', "unstorable_value"),
        (b'{"eventName": "x", "timestamp": "last tuesday"}', "invalid_timestamp"),
        # null is not "absent": a messageId the client thinks it sent would not dedupe
        (b'{"eventName": "x", "messageId": null}', "invalid_message_id"),
        (b'{"eventName": "x", "messageId": 42}', "invalid_message_id"),
        (b'{"eventName": "x", "timestamp": null}', "invalid_timestamp"),
        (b'{"eventName": "x", "sentAt": null}', "invalid_timestamp"),
    ],
)
def test_malformed_event_is_400_and_not_queued(
    ingestor, app_and_key, context, sqs, queues, raw, code
):
    app_id, key = app_and_key
    status, body = post(context, f"/api/logs/{app_id}", raw, key)
    assert status == 400
    assert body["error"] == code
    assert body["message"]
    assert drain(sqs, queues["events"]) == []


def test_key_may_come_as_a_bearer_token(ingestor, app_and_key, context):
    app_id, key = app_and_key
    status, _ = post(
        context,
        f"/api/logs/{app_id}",
        {"eventName": "x"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert status == 202


def test_base64_encoded_body_is_decoded(ingestor, app_and_key, context):
    app_id, key = app_and_key
    status, body = post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key, base64_body=True)
    assert (status, body["event_name"]) == (202, "x")


def test_every_kind_of_bad_key_gets_the_same_401(ingestor, db, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    other_app, other_key = make_app(db)
    revoked = admin.create_api_key(db, app_id)
    admin.revoke_api_key(db, app_id, revoked.rsplit("_", 1)[0])
    answers = [
        post(context, f"/api/logs/{app_id}", {"eventName": "x"}, candidate)
        for candidate in (None, "sk_wrong_key", revoked, other_key)
    ]
    assert [status for status, _ in answers] == [401] * 4
    assert all(body == answers[0][1] for _, body in answers)
    assert answers[0][1]["error"] == "unauthorized"
    assert drain(sqs, queues["events"]) == []


def test_unknown_app_is_404(ingestor, app_and_key, context):
    _, key = app_and_key
    status, body = post(context, "/api/logs/app_doesnotexist", {"eventName": "x"}, key)
    assert (status, body["error"]) == (404, "app_not_found")


def test_keyless_app_accepts_events_without_a_key(ingestor, db, context):
    app_id, key = make_app(db, require_key=False)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"})[0] == 202
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202
    # A key that is sent must still be right.
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, "sk_wrong")[0] == 401


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Basic dXNlcjpwYXNz"}, {"authorization": "Bearer  "}, {"x-api-key": " "}],
)
def test_keyless_app_refuses_credentials_that_are_not_a_key(ingestor, db, context, headers):
    app_id, _ = make_app(db, require_key=False)
    for path in (f"/api/logs/{app_id}", f"/api/logs/{app_id}/batch"):
        status, body = post(context, path, [{"eventName": "x"}], headers=headers)
        assert (status, body["error"]) == (401, "unauthorized")


def test_event_over_the_size_limit_is_413(ingestor, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    status, body = post(
        context, f"/api/logs/{app_id}", {"eventName": "x", "blob": "y" * 33_000}, key
    )
    assert (status, body["error"]) == (413, "payload_too_large")
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "x", "blob": "y" * 32_000}, key)[0]
        == 202
    )


def test_size_limit_is_configurable(
    make_ingestor, ingest_settings, app_and_key, context, monkeypatch
):
    from dataclasses import replace

    app_id, key = app_and_key
    ingestor = make_ingestor()
    monkeypatch.setattr(ingestor, "_settings", replace(ingest_settings, max_event_bytes=512))
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "x", "blob": "y" * 600}, key)[0] == 413
    )


def test_event_sqs_did_not_take_is_503_never_202(
    ingestor, events_sqs, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    events_sqs.refuse(lambda body: True)
    status, body = post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)
    assert (status, body["error"]) == (503, "queue_unavailable")
    assert len(events_sqs.calls) == 3  # retried before giving up
    events_sqs.down = True
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 503
    assert drain(sqs, queues["events"]) == []


def test_entry_refused_once_is_retried(ingestor, events_sqs, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    events_sqs.refuse(lambda body: True, times=1)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202
    assert len(queued_events(sqs, queues)) == 1


def test_unknown_route_is_404_with_a_hint(ingestor, context):
    status, body = post(context, "/api/other", {"eventName": "x"})
    assert (status, body["error"]) == (404, "route_not_found")


# --- rules and keys are cached ------------------------------------------------------


def test_rule_change_is_seen_after_the_ttl(ingestor, db, app_and_key, context, clock):
    app_id, key = app_and_key
    event = {"eventName": "user_login", "userId": 5}
    assert post(context, f"/api/logs/{app_id}", event, key)[0] == 202
    admin.put_rule(db, app_id, "user_login", {"required": ["country"]})

    clock.advance(59)
    assert post(context, f"/api/logs/{app_id}", event, key)[0] == 202
    clock.advance(2)
    status, body = post(context, f"/api/logs/{app_id}", event, key)
    assert status == 422
    assert body["errors"][0]["keyword"] == "required"


def test_revoked_key_is_refused_after_the_ttl(ingestor, db, app_and_key, context, clock):
    app_id, key = app_and_key
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202
    admin.revoke_api_key(db, app_id, key.rsplit("_", 1)[0])
    clock.advance(61)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 401


@pytest.fixture
def proxy(database_url):
    proxy = SwitchableProxy(database_url)
    proxy.on()
    yield proxy
    proxy.off()


def test_cached_apps_are_served_while_postgres_is_down(make_ingestor, proxy, db, context, clock):
    make_ingestor(proxy.url)
    app_id, key = make_app(db, rules={"user_login": LOGIN_RULE})
    other_app, other_key = make_app(db)
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": 1}, key)[0]
        == 202
    )

    proxy.off()
    clock.advance(300)  # past the 60 s TTL: a reload is tried, fails, the cache answers
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": 1}, key)[0]
        == 202
    )
    assert post(context, f"/api/logs/{app_id}", {"eventName": "user_login"}, key)[0] == 422
    status, body = post(context, f"/api/logs/{other_app}", {"eventName": "x"}, other_key)
    assert (status, body["error"]) == (503, "database_unavailable")

    clock.advance(400)  # now more than 10 minutes stale
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 503

    proxy.on()
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202


def test_a_key_revoked_during_an_outage_works_until_the_stale_limit(
    make_ingestor, proxy, db, context, clock
):
    """The documented choice: availability over revocation while the database is down."""
    make_ingestor(proxy.url)
    app_id, key = make_app(db)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202
    admin.revoke_api_key(db, app_id, key.rsplit("_", 1)[0])
    proxy.off()
    clock.advance(60 + 599)  # TTL, then all but the last second of the stale limit
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 202
    clock.advance(2)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 503
    proxy.on()  # and once the database answers, the revocation holds
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, key)[0] == 401


def test_unknown_keys_are_remembered_briefly(make_ingestor, proxy, db, context, clock):
    make_ingestor(proxy.url)
    app_id, _ = make_app(db)
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, "sk_junk")[0] == 401
    proxy.off()
    clock.advance(4)
    # Still known to be junk without asking the database.
    assert post(context, f"/api/logs/{app_id}", {"eventName": "x"}, "sk_junk")[0] == 401


# --- batches ------------------------------------------------------------------------


def batch_results(body: dict) -> list[tuple[int, str]]:
    return [(result["index"], result["status"]) for result in body["results"]]


def test_batch_mixes_valid_invalid_and_malformed(ingestor, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    events = [
        {"eventName": "user_login", "userId": 1},
        {"eventName": "user_login", "userId": "x"},
        {"noName": True},
        "not an object",
        {"eventName": "page_view", "note": "bad\u0000"},
        {"eventName": "page_view"},
    ]
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)

    assert status == 202
    assert (body["accepted"], body["invalid"], body["rejected"], body["failed"]) == (2, 1, 3, 0)
    assert batch_results(body) == [
        (0, "valid"),
        (1, "invalid"),
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "valid"),
    ]
    assert body["results"][1]["errors"][0]["path"] == "/userId"
    assert [body["results"][i]["error"] for i in (2, 3, 4)] == [
        "invalid_event_name",
        "not_an_object",
        "unstorable_value",
    ]
    assert body["results"][2]["event_id"] is None
    queued = queued_events(sqs, queues)
    assert sorted(e["event_id"] for e in queued) == sorted(
        body["results"][i]["event_id"] for i in (0, 1, 5)
    )
    assert {e["event_id"]: e["status"] for e in queued}[body["results"][1]["event_id"]] == "invalid"


def test_a_null_messageid_is_refused_alone_in_a_batch(ingestor, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    batch = [{"eventName": "a", "messageId": "m1"}, {"eventName": "b", "messageId": None}]
    status, body = post(context, f"/api/logs/{app_id}/batch", batch, key)
    assert status == 202
    assert [(r["status"], r.get("error")) for r in body["results"]] == [
        ("valid", None),
        ("rejected", "invalid_message_id"),
    ]
    assert [e["message_id"] for e in queued_events(sqs, queues)] == ["m1"]


def test_batch_may_be_an_object_with_events(ingestor, app_and_key, context):
    app_id, key = app_and_key
    status, body = post(context, f"/api/logs/{app_id}/batch", {"events": [{"eventName": "a"}]}, key)
    assert (status, body["accepted"]) == (202, 1)


def test_batch_events_are_packed_into_few_messages(
    ingestor, events_sqs, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    events = [{"eventName": "page_view", "i": i, "pad": "p" * 200} for i in range(500)]
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)
    assert (status, body["accepted"]) == (202, 500)
    bodies = drain(sqs, queues["events"])
    total = sum(len(b.encode()) for b in bodies)
    assert len(bodies) <= total // (64 * 1024) + 1  # messages are full but for the last
    assert all(len(b.encode()) <= 64 * 1024 for b in bodies)
    # Sent with SendMessageBatch: fewer calls than messages, each within SQS's limits.
    assert len(events_sqs.calls) < len(bodies)
    for call in events_sqs.calls:
        assert len(call) <= 10
        assert sum(len(entry["MessageBody"].encode()) for entry in call) <= 256 * 1024
    assert sum(len(json.loads(b)["events"]) for b in bodies) == 500


def test_unqueued_batch_entries_are_retried_then_failed(
    ingestor, events_sqs, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    # Events of ~30 KB travel two to a message: (ok, ok), (stuck, stuck), (flaky, flaky).
    tags = ["ok", "ok", "stuck", "stuck", "flaky", "flaky"]
    events = [{"eventName": "e", "tag": tag, "pad": "p" * 30_000} for tag in tags]
    events_sqs.refuse(lambda body: "stuck" in body)
    events_sqs.refuse(lambda body: "flaky" in body, times=2)
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)

    assert status == 202
    assert [status for _, status in batch_results(body)] == [
        "valid",
        "valid",
        "failed",
        "failed",
        "valid",
        "valid",
    ]
    assert body["results"][2]["retryable"] is True
    assert body["results"][2]["error"] == "queue_unavailable"
    assert (body["accepted"], body["failed"]) == (4, 2)
    assert sorted(e["payload"]["tag"] for e in queued_events(sqs, queues)) == [
        "flaky",
        "flaky",
        "ok",
        "ok",
    ]


def test_batch_nothing_could_queue_is_503(ingestor, events_sqs, app_and_key, context):
    app_id, key = app_and_key
    events_sqs.down = True
    status, body = post(context, f"/api/logs/{app_id}/batch", [{"eventName": "a"}, {"bad": 1}], key)
    assert status == 503
    assert body["error"] == "queue_unavailable"
    assert batch_results(body) == [(0, "failed"), (1, "rejected")]


def test_batch_of_only_malformed_events_is_400(ingestor, app_and_key, context):
    app_id, key = app_and_key
    status, body = post(context, f"/api/logs/{app_id}/batch", [{"bad": 1}, 7], key)
    assert status == 400
    assert body["rejected"] == 2


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ([], 400, "empty_batch"),
        ({"eventName": "x"}, 400, "invalid_batch"),
        ([{"eventName": "x"}] * 501, 413, "too_many_events"),
        ([{"eventName": "x", "pad": "p" * 30_000}] * 40, 413, "payload_too_large"),
    ],
)
def test_batch_limits(ingestor, app_and_key, context, payload, status, code):
    app_id, key = app_and_key
    answer_status, body = post(context, f"/api/logs/{app_id}/batch", payload, key)
    assert (answer_status, body["error"]) == (status, code)


def test_oversized_event_in_a_batch_is_rejected_alone(ingestor, app_and_key, context):
    app_id, key = app_and_key
    events = [{"eventName": "x", "pad": "p" * 40_000}, {"eventName": "y"}]
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)
    assert status == 202
    assert batch_results(body) == [(0, "rejected"), (1, "valid")]
    assert body["results"][0]["error"] == "event_too_large"


def test_batch_needs_the_key_too(ingestor, app_and_key, context):
    app_id, _ = app_and_key
    assert post(context, f"/api/logs/{app_id}/batch", [{"eventName": "x"}])[0] == 401


# --- what rules may cost, and what their verdicts may weigh ----------------------------


def test_events_under_a_stored_rule_that_no_longer_compiles_are_invalid(
    ingestor, db, context, sqs, queues, caplog
):
    # Written around sluice.manage.admin (as before lookaround was refused): a rule that
    # does not compile must not wave its events through.
    app_id, key = make_app(db, rules={"user_login": LOGIN_RULE})
    save_rule(
        db, app_id, "slug_set", {"items": {"pattern": "^(?:(?!-)[a-z0-9]+)+$"}}, datetime.now(UTC)
    )

    status, body = post(context, f"/api/logs/{app_id}", {"eventName": "slug_set"}, key)
    assert status == 422
    [issue] = body["errors"]
    assert (issue["path"], issue["keyword"]) == ("", UNUSABLE_RULE_KEYWORD)
    assert "cannot be applied" in issue["message"]
    [queued] = queued_events(sqs, queues)
    assert queued["status"] == "invalid"
    assert queued["validation_errors"] == body["errors"]
    # The app's other rules still apply.
    assert (
        post(context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": 1}, key)[0]
        == 202
    )
    # Logged once per load of the app, not per event.
    logged = [r for r in caplog.records if r.getMessage() == "rules unusable: invalid schema"]
    assert len(logged) == 1
    assert logged[0].event_names == ["slug_set"]


def test_a_largest_event_with_thousands_of_errors_is_422_and_queued_small(
    ingestor, db, context, sqs, queues, ingest_settings
):
    # Every error used to travel with the event: 16,000 of them made a message over
    # SQS's 256 KiB, answered 503 -- a retry that could never succeed.
    app_id, key = make_app(
        db, rules={"counts": {"properties": {"n": {"items": {"type": "string"}}}}}
    )
    event = {"eventName": "counts", "n": [0] * 16_000}
    event["n"] += [0] * ((ingest_settings.max_event_bytes - len(orjson.dumps(event))) // 2)
    assert len(orjson.dumps(event)) <= ingest_settings.max_event_bytes

    status, body = post(context, f"/api/logs/{app_id}", orjson.dumps(event), key)
    assert status == 422
    # Listing 16,000 errors costs 65-190 ms: an event this large gets its first only.
    assert body["errors"] == [
        {"path": "/n/0", "message": '0 is not of type "string"', "keyword": "type"}
    ]
    assert (body["errors_omitted"], body["errors_counted"]) == (0, False)
    [message] = drain(sqs, queues["events"])
    assert len(message.encode()) < 64 * 1024  # one SQS billing unit, a quarter of the limit
    [queued] = json.loads(message)["events"]
    assert queued["validation_errors"][:-1] == body["errors"]
    assert queued["validation_errors"][-1]["keyword"] == OMITTED_KEYWORD
    assert "only the first" in queued["validation_errors"][-1]["message"]


def test_an_event_of_up_to_a_thousand_values_has_its_errors_counted(
    ingestor, db, context, ingest_settings
):
    app_id, key = make_app(
        db, rules={"counts": {"properties": {"n": {"items": {"type": "string"}}}}}
    )
    event = {"eventName": "counts", "n": [0] * 999}  # 1,000 values, the event's name one
    status, body = post(context, f"/api/logs/{app_id}", orjson.dumps(event), key)
    assert status == 422
    assert (len(body["errors"]), body["errors_omitted"]) == (MAX_ISSUES, 999 - MAX_ISSUES)
    assert "errors_counted" not in body
    event["n"].append(0)
    status, body = post(context, f"/api/logs/{app_id}", orjson.dumps(event), key)
    assert (len(body["errors"]), body["errors_counted"]) == (1, False)


# Each check quotes the value; the key makes the path. Control characters in a key
# cost 6 bytes each once in JSON (7 once the body is escaped again in Lambda's
# response), quotes in a value 2 (4): the most answer per byte of request.
_HEAVY_RULE = {
    "properties": {"eventName": {}},
    "additionalProperties": {
        "allOf": [
            {"type": "integer"},
            {"minLength": 10_000},
            {"maxLength": 1},
            {"pattern": "^a$"},
            {"enum": [1]},
            {"const": 1},
            {"format": "email"},
            {"format": "date"},
            {"format": "ipv4"},
            {"format": "uuid"},
            {"not": {"type": "string"}},
        ]
    },
}


def test_the_largest_batch_of_the_most_invalid_events_answers_under_6_mb(
    ingestor, db, context, sqs, queues, ingest_settings
):
    app_id, key = make_app(db, rules={"heavy": _HEAVY_RULE})
    count = ingest_settings.max_batch_events
    share = ingest_settings.max_batch_bytes // count - 10
    events = [{"eventName": "heavy", "\u0001" * 200: '"' * 100} for _ in range(count)]
    # Fill each event's share of the 1 MiB with more quotes.
    events = [
        {"eventName": "heavy", "\u0001" * 200: '"' * ((share - len(orjson.dumps(e)) + 200) // 2)}
        for e in events
    ]
    body = orjson.dumps(events)
    assert len(body) <= ingest_settings.max_batch_bytes

    response = respond(context, f"/api/logs/{app_id}/batch", body, key)
    assert response["statusCode"] == 202
    answer = json.loads(response["body"])
    assert answer["invalid"] == count
    listed = sum(len(result["errors"]) for result in answer["results"])
    omitted = sum(result["errors_omitted"] for result in answer["results"])
    assert listed == MAX_ANSWER_ISSUES
    assert listed + omitted == count * len(_HEAVY_RULE["additionalProperties"]["allOf"])
    # What Lambda returns is the whole response object, the body escaped inside it.
    assert len(orjson.dumps(response)) < 6_000_000
    # Every event is still queued with its own capped issues, each within SQS's limit.
    queued = queued_events(sqs, queues)
    assert len(queued) == count
    assert all(len(e["validation_errors"]) == MAX_ISSUES + 1 for e in queued)


def test_a_request_lists_every_error_of_at_most_ten_thousand_values(ingestor, db, context):
    # Past that, listing errors could cost a 1 MiB batch seconds: later events of the
    # request get their first error only.
    app_id, key = make_app(
        db, rules={"counts": {"properties": {"n": {"items": {"type": "string"}}}}}
    )
    batch = [{"eventName": "counts", "n": [0] * 900} for _ in range(20)]  # 901 values each
    status, body = post(context, f"/api/logs/{app_id}/batch", orjson.dumps(batch), key)
    assert (status, body["invalid"]) == (202, 20)
    counted = [result.get("errors_counted", True) for result in body["results"]]
    assert counted == [True] * 11 + [False] * 9  # 11 x 901 = 9,911 values listed


def test_a_batch_item_that_could_not_be_queued_gets_no_event_id(
    ingestor, events_sqs, app_and_key, context
):
    # Given a batch of which SQS takes one event and refuses the other, every retry
    app_id, key = app_and_key
    events_sqs.refuse(lambda body: "stuck" in body)
    # (~30 KB each: two events a message)
    tags = ["ok", "ok", "stuck", "stuck"]
    events = [{"eventName": "e", "tag": tag, "pad": "p" * 30_000} for tag in tags]
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)
    assert status == 202
    # Then the refused one is failed and carries no id: nothing could ever be looked up
    # by it (an id is only handed out for an event that is in the queue)
    assert [item["status"] for item in body["results"]] == ["valid", "valid", "failed", "failed"]
    assert [item["event_id"] is None for item in body["results"]] == [False, False, True, True]
    # And when nothing could be queued (503), no item carries one
    events_sqs.down = True
    status, body = post(context, f"/api/logs/{app_id}/batch", events, key)
    assert status == 503
    assert [item["event_id"] for item in body["results"]] == [None] * 4


def test_the_warm_ingest_function_sends_without_botocores_parameter_checks(
    database_url, queues, monkeypatch
):
    # EventQueue builds every parameter of its sends itself (the queue URL from the
    # settings, each Id from an index, each body a str), so botocore's checks of their
    # presence and types can never fail there: ingest's SQS client skips them.
    monkeypatch.setenv("EVENTS_QUEUE_URL", queues["events"])
    monkeypatch.setenv("DATABASE_URL", database_url)
    ingest_app.ingestor.cache_clear()
    try:
        sqs = ingest_app.ingestor()._queue._sqs
        # DelaySeconds is an integer in the model: a string would never leave a client
        # that checks (ParamValidationError); this one sends it, and moto takes it.
        sqs.send_message(QueueUrl=queues["events"], MessageBody="x", DelaySeconds="0")
        assert drain(sqs, queues["events"]) == ["x"]
    finally:
        ingest_app.ingestor.cache_clear()


def test_with_tracing_off_a_request_builds_no_xray_subsegment(
    ingestor, app_and_key, context, monkeypatch
):
    # Tracing is off in `make dev` and here (and X-Ray keeps nothing of an unsampled
    # invocation in Lambda): Powertools' `## handler` subsegment would be a dummy that
    # costs ingest CPU on every request, so the handler runs without it.
    from sluice.core.observability import tracer

    entered: list[str] = []
    in_subsegment = tracer.provider.in_subsegment

    def recording(name: str | None = None, **kwargs):
        entered.append(name)
        return in_subsegment(name=name, **kwargs)

    monkeypatch.setattr(tracer.provider, "in_subsegment", recording)
    app_id, key = app_and_key

    for user_id in (1, 2):
        status, _ = post(
            context, f"/api/logs/{app_id}", {"eventName": "user_login", "userId": user_id}, key
        )
        assert status == 202

    assert entered == []
