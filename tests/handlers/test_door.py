"""What ingest refuses at the door, and that whatever it accepts is stored exactly as sent.

Ingest and store handlers against the test database and moto's SQS: an event
answered 202 (or 422, stored as invalid) must become a row whose payload is the
same JSON value the client sent, numbers digit for digit.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import pytest
from sluice.intake.incoming_events import MAX_DEPTH

import functions.ingest.app as ingest_app
from tests.handlers.test_ingest import post
from tests.handlers.test_store import failed_ids, rows, store
from tests.support import drain, http_event, make_app


def exact(text: str | bytes):
    """A JSON value with every number as a Decimal, so comparisons are digit for digit."""
    return json.loads(text, parse_float=Decimal, parse_int=Decimal)


def stored_payloads(db) -> list:
    with db.cursor() as cur:
        cur.execute("SELECT payload::text FROM events ORDER BY event_id")
        return [exact(text) for (text,) in cur.fetchall()]


def send(context, path: str, body: bytes, key: str, *, dry_run: bool = False):
    event = http_event(path, body, headers={"x-api-key": key})
    if dry_run:
        event["rawQueryString"] = "dry_run=true"
        event["queryStringParameters"] = {"dry_run": "true"}
    response = ingest_app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def store_all(context, sqs, queues) -> dict:
    return store(context, drain(sqs, queues["events"]))[0]


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"user_login": {"type": "object", "required": ["userId"]}})


def nested(depth: int) -> bytes:
    """An event that nests objects `depth` levels deep, itself the first."""
    return b'{"eventName": "deep", "p": ' + b'{"v": ' * (depth - 2) + b"{}" + b"}" * (depth - 1)


# --- numbers --------------------------------------------------------------------------

NUMBERS = (
    b'{"eventName": "n", "big": 12345678901234567890123, "neg": -98765432109876543210987654321,'
    b' "long": 3.14159265358979323846264338327950288, "tiny": 1e-400, "exp": 6.02214076E+23,'
    b' "u64": 18446744073709551615, "trail": 1.50000, "zero": -0, "plain": 42, "f": 0.1}'
)


def test_numbers_are_stored_digit_for_digit_from_one_event(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    assert post(context, f"/api/logs/{app_id}", NUMBERS, key)[0] == 202
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [exact(NUMBERS)]


def test_numbers_are_stored_digit_for_digit_from_a_batch(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    body = (
        b'[{"eventName": "plain", "n": 7}, '
        + NUMBERS
        + b', {"eventName": "s", "id": "12345678901234567890"}]'
    )
    status, answer = post(context, f"/api/logs/{app_id}/batch", body, key)
    assert (status, answer["accepted"]) == (202, 3)
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == exact(body)


def test_a_number_postgres_cannot_hold_is_refused_alone(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    body = b'[{"eventName": "ok"}, {"eventName": "tiny", "x": 1e-20000}]'
    status, answer = post(context, f"/api/logs/{app_id}/batch", body, key)
    assert status == 202
    assert [r["status"] for r in answer["results"]] == ["valid", "rejected"]
    assert answer["results"][1]["error"] == "number_out_of_range"
    status, answer = post(context, f"/api/logs/{app_id}", b'{"eventName": "t", "x": 5e-16390}', key)
    assert (status, answer["error"]) == (400, "number_out_of_range")
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [{"eventName": "ok"}]


@pytest.mark.parametrize("number", [b"1e400", b"-1e309", b"NaN", b"Infinity"])
def test_a_number_beyond_a_double_is_invalid_json(ingestor, app_and_key, context, number):
    app_id, key = app_and_key
    status, answer = post(
        context, f"/api/logs/{app_id}", b'{"eventName": "n", "x": ' + number + b"}", key
    )
    assert (status, answer["error"]) == (400, "invalid_json")


# --- depth ----------------------------------------------------------------------------


def test_an_event_at_the_depth_limit_is_stored(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    event = nested(MAX_DEPTH)
    assert post(context, f"/api/logs/{app_id}", event, key)[0] == 202
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [exact(event)]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 230, 1_000])
def test_a_deeper_event_is_refused_and_its_batch_mates_are_stored(
    ingestor, store_database, db, app_and_key, context, sqs, queues, depth
):
    """The finding: 20 good events and one ~230 deep were acknowledged, then none was stored."""
    app_id, key = app_and_key
    status, answer = post(context, f"/api/logs/{app_id}", nested(depth), key)
    assert (status, answer["error"]) == (400, "too_deep")

    good = b",".join(b'{"eventName": "good", "i": %d}' % i for i in range(20))
    batch = b"[" + good + b"," + nested(depth) + b"]"
    status, answer = post(context, f"/api/logs/{app_id}/batch", batch, key)
    assert (status, answer["accepted"], answer["rejected"]) == (202, 20, 1)
    assert answer["results"][20]["error"] == "too_deep"
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert len(stored_payloads(db)) == 20


def test_nesting_past_the_parsers_limit_is_invalid_json(ingestor, app_and_key, context):
    app_id, key = app_and_key
    body = b'{"eventName": "x", "p": ' + b"[" * 2_000 + b"]" * 2_000 + b"}"
    for path in (f"/api/logs/{app_id}", f"/api/logs/{app_id}/batch"):
        status, answer = post(context, path, body, key)
        assert status == 400, answer


# --- bytes that are not UTF-8 ---------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/octet-stream", ""]
)
@pytest.mark.parametrize("route", ["", "/batch"])
def test_a_body_that_is_not_utf8_is_a_400(ingestor, app_and_key, context, content_type, route):
    app_id, key = app_and_key
    raw = b'{"eventName": "caf\xe9", "x": "\xff\xfe"}'
    if route:
        raw = b"[" + raw + b"]"
    event = http_event(
        f"/api/logs/{app_id}{route}",
        raw,
        headers={"x-api-key": key, "content-type": content_type},
        base64_body=True,
    )
    response = ingest_app.handler(event, context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"] == "invalid_json"


def test_a_lone_surrogate_in_the_event_text_is_a_400(ingestor, app_and_key, context):
    # What a runtime hands over when the request's bytes were decoded with surrogateescape.
    app_id, key = app_and_key
    event = http_event(f"/api/logs/{app_id}", "", headers={"x-api-key": key})
    event["body"] = '{"eventName": "x", "y": "\udcff"}'
    response = ingest_app.handler(event, context)
    assert response["statusCode"] == 400


def test_a_base64_body_that_is_utf8_is_accepted(ingestor, app_and_key, context):
    app_id, key = app_and_key
    event = http_event(
        f"/api/logs/{app_id}", {"eventName": "café ✓"}, headers={"x-api-key": key}, base64_body=True
    )
    assert json.loads(base64.b64decode(event["body"]))["eventName"] == "café ✓"
    assert ingest_app.handler(event, context)["statusCode"] == 202


# --- characters SQS refuses -----------------------------------------------------------

# SQS takes XML's characters only; orjson escapes C0 controls in the queued message,
# but writes U+FFFE and U+FFFF as they are, and an unpaired surrogate escape cannot be
# written at all. Each such event is refused alone, dry run or not; the fake SQS
# refuses these characters as SQS does (moto lets them through).
REFUSED_CHARACTERS = [
    pytest.param(b'{"eventName": "x", "v": "a\xef\xbf\xbeb"}', id="raw U+FFFE in a value"),
    pytest.param(b'{"eventName": "x", "v": "\xef\xbf\xbf"}', id="raw U+FFFF in a value"),
    pytest.param(b'{"eventName": "x", "v": "\\uFFFE"}', id="escaped U+FFFE"),
    pytest.param(b'{"eventName": "x", "v": {"w": ["\\uffff"]}}', id="nested U+FFFF"),
    pytest.param(b'{"eventName": "x", "k\\ufffe": 1}', id="U+FFFE in a key"),
    pytest.param(b'{"eventName": "x\\uffff"}', id="U+FFFF in eventName"),
    pytest.param(b'{"eventName": "x", "messageId": "m\\ufffe"}', id="U+FFFE in messageId"),
    pytest.param(b'{"eventName": "x", "v": "\\ud800"}', id="lone high surrogate"),
    pytest.param(b'{"eventName": "x", "v": "a\\uDC00b"}', id="lone low surrogate"),
    pytest.param(b'{"eventName": "x", "v": "\\ud800\\u0041"}', id="high then not low"),
    pytest.param(b'{"eventName": "x", "\\udbff": 1}', id="lone surrogate in a key"),
    pytest.param(b'{"eventName": "\\ud83d\\ud83d\\ude00"}', id="lone before a pair"),
]


@pytest.mark.parametrize("event", REFUSED_CHARACTERS)
def test_a_character_sqs_refuses_is_a_400_alone_and_in_a_dry_run(
    ingestor, store_database, db, app_and_key, context, sqs, queues, event
):
    """The finding: 503 queue_unavailable forever, a batch of 25 failed whole, and a dry
    run that said the event would be queued."""
    app_id, key = app_and_key
    for dry_run in (False, True):
        status, answer = send(context, f"/api/logs/{app_id}", event, key, dry_run=dry_run)
        assert (status, answer["error"]) == (400, "unstorable_value"), dry_run
        batch = b'[{"eventName": "ok", "i": 0}, ' + event + b', {"eventName": "ok", "i": 2}]'
        status, answer = send(context, f"/api/logs/{app_id}/batch", batch, key, dry_run=dry_run)
        assert status == (200 if dry_run else 202), answer
        assert [(r["status"], r.get("error")) for r in answer["results"]] == [
            ("valid", None),
            ("rejected", "unstorable_value"),
            ("valid", None),
        ]
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [{"eventName": "ok", "i": 0}, {"eventName": "ok", "i": 2}]


@pytest.mark.parametrize(
    "text",
    [
        b'"\\ud83d\\ude00"',  # a pair: one character, U+1F600
        b'"\\\\ud800"',  # an escaped backslash, then the letters ud800
        b'"\\ufffd \\uFFFD \\ufdd0 ' + "\U0001fffe".encode() + b'"',  # other noncharacters
        b'"\\uffef \\uffe5 \\ud7ff \\ue000"',
    ],
)
def test_characters_sqs_takes_are_stored(
    ingestor, store_database, db, app_and_key, context, sqs, queues, text
):
    app_id, key = app_and_key
    event = b'{"eventName": "x", "v": ' + text + b"}"
    assert post(context, f"/api/logs/{app_id}", event, key)[0] == 202
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [exact(event)]


def test_a_bad_escape_next_to_a_lone_surrogate_is_still_invalid_json(
    ingestor, app_and_key, context
):
    app_id, key = app_and_key
    for route in ("", "/batch"):
        body = b'{"eventName": "x", "v": "\\ud800", "w": "\\q"}'
        status, answer = post(context, f"/api/logs/{app_id}{route}", body, key)
        assert (status, answer["error"]) == (400, "invalid_json")


def test_a_rule_quoting_a_character_sqs_refuses_does_not_block_its_events(
    ingestor, store_database, db, context, sqs, queues
):
    """The event is clean; its validation message quotes the rule's U+FFFF."""
    app_id, key = make_app(db, rules={"pick": {"properties": {"k": {"enum": ["\uffff"]}}}})
    status, answer = post(context, f"/api/logs/{app_id}", {"eventName": "pick", "k": "a"}, key)
    assert (status, answer["status"]) == (422, "invalid"), answer
    assert "\uffff" not in answer["errors"][0]["message"]
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert rows(db, "status") == [("invalid",)]


# --- dates at the edge of the range ---------------------------------------------------


@pytest.mark.parametrize(
    "times",
    [
        {"timestamp": "0001-01-01T00:00:00+01:00"},
        {"timestamp": "9999-12-31T23:59:59-01:00"},
        {"timestamp": "2026-01-01T00:00:00Z", "sentAt": "9000-01-01T00:00:00Z"},
        {"timestamp": "0001-01-02T00:00:00Z", "sentAt": "9999-01-01T00:00:00Z"},
    ],
)
def test_times_that_leave_the_range_are_refused_alone(
    ingestor, store_database, db, app_and_key, context, sqs, queues, times
):
    app_id, key = app_and_key
    status, answer = post(context, f"/api/logs/{app_id}", {"eventName": "t", **times}, key)
    assert (status, answer["error"]) == (400, "invalid_timestamp")
    batch = [{"eventName": "ok"}, {"eventName": "t", **times}]
    status, answer = post(context, f"/api/logs/{app_id}/batch", batch, key)
    assert [r["status"] for r in answer["results"]] == ["valid", "rejected"]
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert stored_payloads(db) == [{"eventName": "ok"}]


@pytest.mark.parametrize(
    "times",
    [
        {"timestamp": "0001-01-01T00:00:00Z"},
        {"timestamp": "9999-12-31T23:59:59.999999Z"},
        {"timestamp": "0001-01-01T01:00:00+01:00"},
        {"timestamp": "2026-06-01T12:00:00Z", "sentAt": "2026-06-01T12:00:00Z"},
    ],
)
def test_times_at_the_edge_of_the_range_are_stored(
    ingestor, store_database, db, app_and_key, context, sqs, queues, times
):
    app_id, key = app_and_key
    assert post(context, f"/api/logs/{app_id}", {"eventName": "t", **times}, key)[0] == 202
    assert failed_ids(store_all(context, sqs, queues)) == []
    assert rows(db, "event_name") == [("t",)]
