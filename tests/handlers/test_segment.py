"""Segment's Tracking API (/v1/...) on the ingest handler: Postgres, moto's SQS, a manual clock."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sluice.intake.segment import CALL_TYPES, MAX_REQUEST_BYTES, ROUTES

import functions.ingest.app as ingest_app
from tests.handlers import test_correlation
from tests.handlers.test_correlation import emitted, logged
from tests.handlers.test_fuzz import FUZZ_SETTINGS
from tests.support import drain, http_event, make_app

IDENTIFY_RULE = {
    "type": "object",
    "required": ["traits"],
    "properties": {"traits": {"type": "object", "required": ["email"]}},
}


def basic(key: str, password: str = "") -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{key}:{password}".encode()).decode()}


def post(context, path: str, body, headers: dict[str, str] | None = None, **kwargs):
    response = ingest_app.handler(http_event(path, body, headers=headers, **kwargs), context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


def queued(sqs, queues) -> list[dict]:
    events = [
        e for body in drain(sqs, queues["events"]) for e in json.loads(body).get("events", [])
    ]
    for event in events:
        event["payload"] = json.loads(event["payload"])
    return events


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"identify": IDENTIFY_RULE})


printed = test_correlation.printed  # the log lines a request printed (a fixture)


def track(**fields) -> dict:
    return {"type": "track", "event": "Signed Up", "userId": "u1", **fields}


# --- routes and answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "name"),
    [
        ("/v1/track", {"event": "Clicked", "userId": "u1"}, "Clicked"),
        ("/v1/t", {"event": "Clicked", "anonymousId": "a1"}, "Clicked"),
        ("/v1/identify", {"userId": "u1", "traits": {"email": "x@example.com"}}, "identify"),
        ("/v1/i", {"userId": "u1", "traits": {"email": "x@example.com"}}, "identify"),
        ("/v1/page", {"userId": "u1", "name": "Home"}, "page"),
        ("/v1/p", {"userId": "u1"}, "page"),
        ("/v1/screen", {"userId": "u1", "name": "Home"}, "screen"),
        ("/v1/s", {"userId": "u1"}, "screen"),
        ("/v1/group", {"userId": "u1", "groupId": "g1"}, "group"),
        ("/v1/g", {"userId": "u1", "groupId": 7}, "group"),
        ("/v1/alias", {"userId": "u1", "previousId": "a1"}, "alias"),
        ("/v1/a", {"userId": "u1", "previousId": "a1"}, "alias"),
    ],
)
def test_each_call_route_answers_exactly_200_success_and_queues_its_message(
    ingestor, app_and_key, context, sqs, queues, path, body, name
):
    app_id, key = app_and_key
    status, answer, _ = post(context, path, body, basic(key))

    assert (status, answer) == (200, {"success": True, "accepted": 1, "invalid": 0, "rejected": 0})
    [event] = queued(sqs, queues)
    assert event["app_id"] == app_id
    assert event["event_name"] == name
    assert event["status"] == "valid"
    assert event["payload"]["type"] == ("track" if name == "Clicked" else name)
    assert event["message_id"] == event["payload"]["messageId"]  # one was made


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/import", "/v1/b"])
def test_each_batch_route_queues_every_message(ingestor, app_and_key, context, sqs, queues, path):
    _, key = app_and_key
    batch = [track(messageId="m1"), {"type": "page", "anonymousId": "a", "messageId": "m2"}]
    status, answer, _ = post(context, path, {"batch": batch}, basic(key))

    assert (status, answer["success"], answer["accepted"]) == (200, True, 2)
    events = queued(sqs, queues)
    assert sorted(e["message_id"] for e in events) == ["m1", "m2"]
    assert sorted(e["event_name"] for e in events) == ["Signed Up", "page"]


def test_an_unknown_v1_route_is_404_with_code_and_message(ingestor, context):
    status, answer, _ = post(context, "/v1/nope", {})
    assert status == 404
    assert answer["code"] == "route_not_found" and answer["message"]


# --- auth ----------------------------------------------------------------------------------


def test_the_write_key_may_be_basic_auth_or_writekey_in_the_body(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    assert post(context, "/v1/track", track(), basic(key))[0] == 200
    assert post(context, "/v1/track", track(), basic(key, "ignored"))[0] == 200
    assert post(context, "/v1/track", track(writeKey=key))[0] == 200
    assert post(context, "/v1/batch", {"batch": [track()], "writeKey": key})[0] == 200
    assert post(context, "/v1/track", track(), {"authorization": f"Bearer {key}"})[0] == 200
    assert len(queued(sqs, queues)) == 5


def test_the_header_wins_over_the_body(ingestor, db, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    _, other_key = make_app(db)
    assert post(context, "/v1/track", track(writeKey=other_key), basic(key))[0] == 200
    [event] = queued(sqs, queues)
    assert event["app_id"] == app_id

    status, answer, _ = post(context, "/v1/track", track(writeKey=key), basic("sk_wrong"))
    assert status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic " + base64.b64encode(b"sk_nope:").decode()},
        {"authorization": "Basic " + base64.b64encode(b":").decode()},
        {"authorization": "Basic !!not-base64"},
        {"authorization": "Token abc"},
    ],
)
def test_a_missing_or_wrong_key_is_401_with_code_and_message_and_nothing_queued(
    ingestor, app_and_key, context, sqs, queues, headers
):
    status, answer, _ = post(context, "/v1/batch", {"batch": [track()]}, headers)
    assert status == 401
    assert answer["code"] == "unauthorized" and "write key" in answer["message"]
    assert queued(sqs, queues) == []


def test_a_revoked_key_is_401(ingestor, db, app_and_key, context, clock, sqs, queues):
    app_id, key = app_and_key
    with db.cursor() as cur:
        cur.execute("UPDATE api_keys SET revoked_at = now() WHERE app_id = %s", (app_id,))
    clock.advance(3600)  # past the keys cache
    assert post(context, "/v1/track", track(), basic(key))[0] == 401
    assert queued(sqs, queues) == []


# --- required fields ------------------------------------------------------------------------


def test_null_ids_are_absent_and_a_number_user_id_becomes_its_string(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    body = {"event": "E", "userId": 42, "anonymousId": None, "messageId": None}
    assert post(context, "/v1/track", body, basic(key))[0] == 200
    [event] = queued(sqs, queues)
    assert event["payload"]["userId"] == "42"
    assert event["payload"]["anonymousId"] is None
    assert event["message_id"] and event["payload"]["messageId"] == event["message_id"]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/v1/track", {"event": "E", "userId": None, "anonymousId": None}, "missing_user"),
        ("/v1/track", {"event": "E", "userId": ""}, "missing_user"),
        ("/v1/track", {"event": "E", "userId": ["u"]}, "invalid_id"),
        ("/v1/track", {"userId": "u"}, "invalid_event_name"),
        ("/v1/track", {"userId": "u", "event": ""}, "invalid_event_name"),
        ("/v1/group", {"userId": "u"}, "missing_group_id"),
        ("/v1/alias", {"userId": "u"}, "missing_previous_id"),
        ("/v1/alias", {"anonymousId": "a", "previousId": "p"}, "missing_previous_id"),
        ("/v1/track", {"event": "E", "userId": "u", "messageId": 5}, "invalid_message_id"),
        ("/v1/track", {"event": "E", "userId": "u", "timestamp": "yesterday"}, "invalid_timestamp"),
        ("/v1/track", [], "not_an_object"),
        ("/v1/batch", {"batch": {}}, "invalid_batch"),
        ("/v1/batch", {"batch": []}, "empty_batch"),
    ],
)
def test_a_message_missing_what_its_call_needs_is_400(
    ingestor, app_and_key, context, sqs, queues, path, body, code
):
    _, key = app_and_key
    status, answer, _ = post(context, path, body, basic(key))
    assert status == 400
    assert answer["code"] == code and answer["message"] and answer["success"] is False
    assert queued(sqs, queues) == []


def test_unknown_fields_context_integrations_and_traits_are_kept_as_sent(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    body = {
        "userId": "u",
        "context": {"traits": {"email": "a@example.com"}, "ip": "1.2.3.4"},
        "integrations": {"All": True},
        "traits": {"email": "a@example.com", "n": 12345678901234567890123},
        "channel": "server",
        "messageId": "m-1",
    }
    assert post(context, "/v1/identify", body, basic(key))[0] == 200
    [event] = queued(sqs, queues)
    assert event["payload"] == {**body, "type": "identify"}
    assert event["message_id"] == "m-1"


# --- batches ------------------------------------------------------------------------------


def test_a_batch_gives_its_context_integrations_and_sent_at_to_each_message(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    body = {
        "batch": [
            track(messageId="a", context={"page": "p"}),
            track(messageId="b", integrations={"Mixpanel": False}, sentAt="2026-01-01T00:00:09Z"),
        ],
        "context": {"library": {"name": "x"}, "page": "shared"},
        "integrations": {"All": True},
        "sentAt": "2026-01-01T00:00:10Z",
    }
    assert post(context, "/v1/batch", body, basic(key))[0] == 200
    events = {e["message_id"]: e for e in queued(sqs, queues)}
    assert events["a"]["payload"]["context"] == {"library": {"name": "x"}, "page": "p"}
    assert events["a"]["payload"]["integrations"] == {"All": True}
    assert events["a"]["payload"]["sentAt"] == "2026-01-01T00:00:10Z"
    assert events["b"]["payload"]["context"] == {"library": {"name": "x"}, "page": "shared"}
    assert events["b"]["payload"]["integrations"] == {"Mixpanel": False}
    assert events["b"]["payload"]["sentAt"] == "2026-01-01T00:00:09Z"


def test_a_bad_message_in_a_batch_is_rejected_alone_and_counted(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    batch = [
        track(messageId="good"),
        {"type": "track", "userId": "u", "messageId": "no-event"},
        {"type": "nonsense", "userId": "u"},
        track(messageId="big", properties={"blob": "x" * 40_000}),
        "not an object",
        {"type": "identify", "userId": "u", "traits": {}, "messageId": "breaks-rule"},
    ]
    status, answer, _ = post(context, "/v1/batch", {"batch": batch}, basic(key))

    assert status == 200
    assert answer["success"] is True
    assert (answer["accepted"], answer["invalid"], answer["rejected"]) == (1, 1, 4)
    assert [(r["index"], r["code"]) for r in answer["rejections"]] == [
        (1, "invalid_event_name"),
        (2, "invalid_type"),
        (3, "event_too_large"),
        (4, "not_an_object"),
    ]
    events = {e["message_id"]: e["status"] for e in queued(sqs, queues)}
    assert events == {"good": "valid", "breaks-rule": "invalid"}


def test_a_batch_of_only_bad_messages_is_400_with_its_rejections(ingestor, app_and_key, context):
    _, key = app_and_key
    status, answer, _ = post(context, "/v1/batch", {"batch": [{"type": "track"}]}, basic(key))
    assert status == 400
    assert answer["code"] == "invalid_batch" and answer["rejected"] == 1


def test_a_batch_the_queue_did_not_take_is_503_with_retry_after(
    ingestor, events_sqs, app_and_key, context
):
    _, key = app_and_key
    events_sqs.down = True
    status, answer, headers = post(context, "/v1/batch", {"batch": [track()]}, basic(key))
    assert status == 503
    assert answer["code"] == "queue_unavailable" and answer["message"]
    assert int(headers["Retry-After"]) > 0


# --- rules and policies for other call types -------------------------------------------------


def test_a_rule_named_for_a_call_type_checks_those_calls(
    ingestor, app_and_key, context, sqs, queues
):
    _, key = app_and_key
    assert post(context, "/v1/identify", {"userId": "u", "traits": {}}, basic(key))[0] == 200
    [event] = queued(sqs, queues)
    assert event["status"] == "invalid"
    assert event["validation_errors"][0]["path"] == "/traits"


def test_an_app_blocking_invalid_events_refuses_a_single_call_with_422(
    ingestor, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET invalid_events = 'block' WHERE app_id = %s", (app_id,))
    status, answer, _ = post(context, "/v1/identify", {"userId": "u", "traits": {}}, basic(key))
    assert status == 422
    assert answer["code"] == "validation_failed" and answer["message"] and answer["errors"]
    assert queued(sqs, queues) == []


# --- time -------------------------------------------------------------------------------------


def test_the_corrected_time_is_received_minus_the_clocks_lag(
    ingestor, app_and_key, context, clock, sqs, queues
):
    # The client's clock is an hour fast: it says it sent at 13:00:05 an event of 13:00:00.
    _, key = app_and_key
    body = {
        "batch": [
            track(timestamp="2026-01-01T13:00:00Z"),
            track(originalTimestamp="2026-01-01T12:59:00Z"),
        ],
        "sentAt": "2026-01-01T13:00:05Z",
    }
    assert post(context, "/v1/batch", body, basic(key))[0] == 200
    received = clock.now()
    first, second = sorted(queued(sqs, queues), key=lambda e: e["occurred_at"])
    assert first["received_at"] == received.isoformat()
    assert second["client_timestamp"] == "2026-01-01T13:00:00+00:00"
    assert second["sent_at"] == "2026-01-01T13:00:05+00:00"
    assert second["occurred_at"] == (received - timedelta(seconds=5)).isoformat()
    assert first["client_timestamp"] == "2026-01-01T12:59:00+00:00"  # originalTimestamp
    assert first["occurred_at"] == (received - timedelta(seconds=65)).isoformat()


def test_without_sent_at_the_clients_time_is_kept(ingestor, app_and_key, context, sqs, queues):
    _, key = app_and_key
    body = track(timestamp="2026-01-01T13:00:00Z", sentAt=None)
    assert post(context, "/v1/track", body, basic(key))[0] == 200
    [event] = queued(sqs, queues)
    assert event["occurred_at"] == "2026-01-01T13:00:00+00:00"
    assert event["sent_at"] is None


# --- bodies: content types, gzip, sizes ------------------------------------------------------


def test_a_text_plain_body_is_read_as_json(ingestor, app_and_key, context, sqs, queues):
    _, key = app_and_key
    headers = {**basic(key), "content-type": "text/plain"}
    assert post(context, "/v1/t", json.dumps(track()), headers)[0] == 200
    assert len(queued(sqs, queues)) == 1


@pytest.mark.parametrize("path", ["/v1/track", "/v1/batch"])
def test_gzip_bodies_are_inflated_on_every_route(ingestor, app_and_key, context, sqs, queues, path):
    _, key = app_and_key
    body = track() if path == "/v1/track" else {"batch": [track()]}
    headers = {**basic(key), "content-encoding": "gzip"}
    raw = gzip.compress(json.dumps(body).encode())
    status, answer, _ = post(context, path, raw, headers, base64_body=True)
    assert (status, answer["success"]) == (200, True)
    assert len(queued(sqs, queues)) == 1


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (gzip.compress(b"{" + b" " * (MAX_REQUEST_BYTES + 1) + b"}"), 413, "request_too_large"),
        (gzip.compress(json.dumps({"batch": [track()]}).encode())[:-12], 400, "invalid_gzip"),
        (b"not gzip at all", 400, "invalid_gzip"),
        (b"", 400, "invalid_gzip"),
    ],
    ids=["bomb", "truncated", "not-gzip", "empty"],
)
def test_gzip_bombs_and_bad_gzip_are_refused(
    ingestor, app_and_key, context, sqs, queues, raw, status, code
):
    _, key = app_and_key
    headers = {**basic(key), "content-encoding": "gzip"}
    answer_status, answer, _ = post(context, "/v1/batch", raw, headers, base64_body=True)
    assert (answer_status, answer["code"]) == (status, code)
    assert answer["message"]
    assert queued(sqs, queues) == []


def test_a_bomb_is_refused_without_inflating_it_whole(ingestor, app_and_key, context):
    # 1 GB of zeros is ~1 MB of gzip; inflating it whole would take the function's memory.
    _, key = app_and_key
    bomb = gzip.compress(b"0" * (256 * 1024 * 1024))
    headers = {**basic(key), "content-encoding": "gzip"}
    assert post(context, "/v1/batch", bomb, headers, base64_body=True)[0] == 413


def test_another_content_encoding_is_400(ingestor, app_and_key, context):
    _, key = app_and_key
    headers = {**basic(key), "content-encoding": "br"}
    status, answer, _ = post(context, "/v1/track", track(), headers)
    assert (status, answer["code"]) == (400, "unsupported_content_encoding")


def test_a_request_over_4_mb_is_413(ingestor, app_and_key, context, sqs, queues):
    _, key = app_and_key
    batch = [track(properties={"blob": "x" * 30_000}) for _ in range(140)]
    status, answer, _ = post(context, "/v1/batch", {"batch": batch}, basic(key))
    assert (status, answer["code"]) == (413, "request_too_large")
    assert queued(sqs, queues) == []


def test_a_4_mb_batch_is_taken(ingestor, app_and_key, context, sqs, queues):
    # rudder-sdk-python batches up to 4 MB: Segment's 500 KB cap would drop its batches.
    _, key = app_and_key
    batch = [track(properties={"blob": "x" * 30_000}) for _ in range(130)]
    status, answer, _ = post(context, "/v1/batch", {"batch": batch}, basic(key))
    assert (status, answer["accepted"]) == (200, 130)


def test_a_single_message_over_32_kb_is_413(ingestor, app_and_key, context, sqs, queues):
    _, key = app_and_key
    status, answer, _ = post(
        context, "/v1/track", track(properties={"blob": "x" * 33_000}), basic(key)
    )
    assert (status, answer["code"]) == (413, "event_too_large")
    assert queued(sqs, queues) == []


def test_a_body_that_is_not_json_is_400_with_code_and_message(ingestor, app_and_key, context):
    _, key = app_and_key
    status, answer, _ = post(context, "/v1/track", "{nope", basic(key))
    assert status == 400
    assert set(answer) >= {"code", "message"} and answer["code"] == "invalid_json"


# --- any request: a 200 or a 4xx, never a 5xx -------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*CALL_TYPES, "nope"]) | json_values,
        "event": st.text() | json_values,
        "userId": st.text() | st.integers() | json_values,
        "anonymousId": st.none() | st.text(),
        "groupId": st.text() | json_values,
        "previousId": st.text() | json_values,
        "messageId": st.none() | st.text() | json_values,
        "timestamp": st.sampled_from(["2026-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"])
        | json_values,
        "sentAt": st.sampled_from(["2026-01-01T00:00:05Z", "9999-12-31T23:59:59-14:00"])
        | json_values,
        "context": json_values,
        "properties": json_values,
        "traits": json_values,
    },
)
# Messages a library would send (most often stored), with anything else beside them.
good_messages = st.fixed_dictionaries(
    {
        "type": st.sampled_from(CALL_TYPES),
        "userId": st.text(min_size=1) | st.integers(),
        "event": st.text(min_size=1, max_size=128),
        "groupId": st.text(min_size=1) | st.integers(),
        "previousId": st.text(min_size=1),
    },
    optional={
        "messageId": st.text(min_size=1, max_size=256),
        "properties": json_values,
        "context": json_values,
        "timestamp": st.datetimes().map(lambda t: t.isoformat() + "Z"),
    },
)
bodies = st.one_of(
    json_values,
    messages,
    good_messages,
    st.fixed_dictionaries(
        {"batch": st.lists(good_messages | messages | json_values, max_size=4)},
        optional={"context": json_values, "sentAt": json_values, "writeKey": json_values},
    ),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=30)


@settings(FUZZ_SETTINGS)
@given(
    call=st.sampled_from(sorted(ROUTES)),
    body=bodies,
    headers=st.dictionaries(
        st.sampled_from(
            ["authorization", "content-type", "content-encoding", "x-retry-count", "x-api-key"]
        ),
        header_values,
        max_size=2,
    ),
    with_key=st.sampled_from(["basic", "body", "none"]),
    gzipped=st.booleans(),
    hostile=st.none()
    | st.binary(max_size=200)  # invalid UTF-8, truncated JSON, anything
    | st.integers(1, 5000).map(lambda depth: b"[" * depth + b"{}")  # deep nesting
    | st.integers(300, 5000).map(lambda n: b'{"type":"track","n":1' + b"0" * n + b"}")  # huge
    | st.sampled_from([rb'{"type":"track","event":"\uffff"}', rb'{"event":"\ud800"}']),
)
def test_any_request_to_any_v1_route_is_a_200_or_a_4xx(
    ingestor, app_and_key, context, call, body, headers, with_key, gzipped, hostile
):
    _, key = app_and_key
    if with_key == "basic":
        headers = {**headers, **basic(key)}
    elif with_key == "body" and isinstance(body, dict):
        body = {**body, "writeKey": key}
    raw = json.dumps(body).encode() if hostile is None else hostile
    if gzipped:
        raw = gzip.compress(raw)
        headers = {**headers, "content-encoding": "gzip"}
    status, answer, _ = post(context, f"/v1/{call}", raw, headers, base64_body=True)
    assert status == 200 or 400 <= status < 500, (status, answer)
    if status == 200:
        assert answer["success"] is True
    else:
        assert answer["code"] and answer["message"]


# --- stored like every event: the list (by type), the lookup ---------------------------------


def test_calls_are_stored_listed_by_type_and_looked_up(
    context, db, clock, manager, ingestor, store_database, sqs, queues
):
    from tests.handlers.test_manage import call
    from tests.handlers.test_store import store
    from tests.support import make_owner

    _, token = make_owner(db, clock)
    status, created = call(context, "POST", "/api/apps", {"name": "Shop"}, token=token)
    app_id, key = created["app_id"], created["api_key"]["key"]
    batch = [
        track(messageId="t1"),
        {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "i1"},
        {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "p1"},
    ]
    assert post(context, "/v1/batch", {"batch": batch}, basic(key))[0] == 200
    response, _ = store(context, drain(sqs, queues["events"]))
    assert response == {"batchItemFailures": []}

    status, listed = call(context, "GET", f"/api/apps/{app_id}/events", token=token)
    assert status == 200
    assert sorted(e["event_name"] for e in listed["events"]) == ["Signed Up", "identify", "page"]
    status, identifies = call(
        context, "GET", f"/api/apps/{app_id}/events?event_name=identify", token=token
    )
    [identify] = identifies["events"]
    assert identify["payload"] == {**batch[1]}
    status, found = call(
        context, "GET", f"/api/apps/{app_id}/events/{identify['event_id']}", token=token
    )
    assert (status, found["message_id"], found["event_name"]) == (200, "i1", "identify")


def test_rejected_messages_are_logged_and_counted_for_the_owner(
    ingestor, app_and_key, context, printed
):
    _, key = app_and_key
    batch = [track(), {"type": "track", "userId": "u"}, {"type": "alias", "userId": "u"}]
    printed.lines()
    assert post(context, "/v1/batch", {"batch": batch}, basic(key))[0] == 200
    lines = printed.lines()
    [line] = logged(lines, "messages rejected")
    assert line["codes"] == ["invalid_event_name", "missing_previous_id"]
    assert line["indexes"] == [1, 2]
    assert emitted(lines)["EventsRejected"] == 2
    assert emitted(lines)["EventsAccepted"] == 1


# --- what was rejected, for the owner ----------------------------------------------------------


def _owned_app(context, db, clock):
    from tests.handlers.test_manage import call
    from tests.support import make_owner

    _, token = make_owner(db, clock)
    status, created = call(context, "POST", "/api/apps", {"name": "Shop"}, token=token)
    assert status == 201
    return created["app_id"], created["api_key"]["key"], token


def test_the_owner_lists_a_batchs_rejected_message_once_the_store_ran(
    context, db, clock, manager, ingestor, store_database, sqs, queues
):
    from tests.handlers.test_manage import call
    from tests.handlers.test_store import store

    # Given an owner's app, and a batch with one message that has no event name
    app_id, key, token = _owned_app(context, db, clock)
    batch = [track(messageId="ok"), {"type": "track", "userId": "u", "messageId": "bad-1"}]
    status, answer, _ = post(context, "/v1/batch", {"batch": batch}, basic(key))
    assert (status, answer["rejected"]) == (200, 1)
    [told] = answer["rejections"]

    # When the store takes what ingest queued (no message handed back)
    response, _ = store(context, drain(sqs, queues["events"]))
    assert response == {"batchItemFailures": []}

    # Then the owner lists exactly that rejection: where, which messageId, why
    status, listed = call(context, "GET", f"/api/apps/{app_id}/rejections", token=token)
    assert status == 200
    [rejection] = listed["rejections"]
    assert {k: rejection[k] for k in ("route", "index", "message_id", "code", "message")} == {
        "route": "/v1/batch",
        "index": 1,
        "message_id": "bad-1",
        "code": told["code"],
        "message": told["message"],
    }
    assert rejection["received_at"] == clock.now().isoformat()
    assert listed["next_cursor"] is None
    # and the good message was stored as usual
    status, events = call(context, "GET", f"/api/apps/{app_id}/events", token=token)
    assert [e["message_id"] for e in events["events"]] == ["ok"]


def test_a_rejection_is_recorded_once_and_never_holds_the_message_itself(
    context, db, clock, manager, ingestor, store_database, sqs, queues
):
    from tests.handlers.test_manage import call
    from tests.handlers.test_store import store

    app_id, key, token = _owned_app(context, db, clock)
    # A batch of only bad messages (a 400) still records them; a made-up messageId is none.
    batch = [
        {"type": "track", "userId": "u", "secret": "s" * 50_000},
        {"type": "track", "event": "E", "messageId": 7},
        {
            "type": "track",
            "event": "E",
            "userId": "u",
            "messageId": "x" * 300,
            "blob": "b" * 40_000,
        },
    ]
    assert post(context, "/v1/batch", {"batch": batch}, basic(key))[0] == 400
    bodies = drain(sqs, queues["events"])
    assert len(bodies) == 1  # only the rejection records
    # Redelivered: stored once.
    assert store(context, bodies)[0] == {"batchItemFailures": []}
    assert store(context, bodies)[0] == {"batchItemFailures": []}

    status, listed = call(context, "GET", f"/api/apps/{app_id}/rejections", token=token)
    assert status == 200
    got = sorted(listed["rejections"], key=lambda r: r["index"])
    assert [(r["index"], r["message_id"]) for r in got] == [(0, None), (1, None), (2, "x" * 200)]
    assert all(len(r["message"]) <= 1_000 and "sss" not in r["message"] for r in got)


def test_another_accounts_app_has_no_rejections_to_list(context, db, clock, manager):
    from tests.handlers.test_manage import call
    from tests.support import make_owner

    app_id, _, _ = _owned_app(context, db, clock)
    _, stranger = make_owner(db, clock, email="stranger@example.com")
    status, answer = call(context, "GET", f"/api/apps/{app_id}/rejections", token=stranger)
    assert (status, answer["error"]) == (404, "app_not_found")


def test_rejections_page_newest_first_with_a_cursor_and_a_time_range(
    context, db, clock, manager, ingestor, store_database, sqs, queues
):
    from tests.handlers.test_manage import call
    from tests.handlers.test_store import store

    app_id, key, token = _owned_app(context, db, clock)
    first = clock.now()
    for n in range(3):
        batch = [track(), {"type": "track", "userId": "u", "messageId": f"bad-{n}"}]
        assert post(context, "/v1/batch", {"batch": batch}, basic(key))[0] == 200
        clock.advance(60)
    store(context, drain(sqs, queues["events"]))

    path = f"/api/apps/{app_id}/rejections"
    status, page = call(context, "GET", f"{path}?limit=2", token=token)
    assert [r["message_id"] for r in page["rejections"]] == ["bad-2", "bad-1"]
    status, rest = call(context, "GET", f"{path}?limit=2&cursor={page['next_cursor']}", token=token)
    assert ([r["message_id"] for r in rest["rejections"]], rest["next_cursor"]) == (["bad-0"], None)
    since = (first + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    status, late = call(context, "GET", f"{path}?since={since}", token=token)
    assert [r["message_id"] for r in late["rejections"]] == ["bad-2", "bad-1"]
    for bad in ("since=2026-01-01", "limit=0", "cursor=nope", "status=valid"):
        assert call(context, "GET", f"{path}?{bad}", token=token)[0] == 400


def test_the_native_batch_routes_rejections_are_listed_too(
    context, db, clock, manager, ingestor, store_database, sqs, queues
):
    from tests.handlers.test_manage import call
    from tests.handlers.test_store import store

    app_id, key, token = _owned_app(context, db, clock)
    body = [{"eventName": "ok"}, {"eventName": 5, "messageId": "n-1"}]
    event = http_event(f"/api/logs/{app_id}/batch", body, headers={"x-api-key": key})
    assert ingest_app.handler(event, context)["statusCode"] == 202
    store(context, drain(sqs, queues["events"]))

    _, listed = call(context, "GET", f"/api/apps/{app_id}/rejections", token=token)
    [rejection] = listed["rejections"]
    assert (rejection["route"], rejection["index"], rejection["message_id"]) == (
        "/api/logs/{app_id}/batch",
        1,
        "n-1",
    )
