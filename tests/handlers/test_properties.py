"""Property-based: whatever events a client makes up, ingest never answers 5xx, and every
event it accepts is stored by the store function as the same JSON value, numbers exact.

Hypothesis generates the events (random JSON, deep and wide, odd strings and
numbers, times at the edge of the range) with a fixed seed, so a run is repeatable.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functions.ingest.app as ingest_app
from tests.handlers.test_door import exact
from tests.handlers.test_store import failed_ids, store
from tests.support import drain, http_event, make_app

PROPERTY_SETTINGS = settings(
    derandomize=True,  # a fixed seed: CI and a developer see the same cases
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CLIENT_ERRORS = {
    "invalid_json",
    "not_an_object",
    "invalid_event_name",
    "invalid_message_id",
    "invalid_timestamp",
    "unstorable_value",
    "too_deep",
    "number_out_of_range",
    "event_too_large",
}


def to_json(value) -> str:
    """JSON text for a value whose numbers may be Decimals or ints of any size."""
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(k) + ":" + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, allow_nan=False)


strings = st.one_of(
    st.text(max_size=20),
    st.text(st.characters(codec="utf-8"), max_size=20),  # any code point, \x00 included
    st.sampled_from(["", "\u2028", "é", "𝄞", "\\", '"', "12345678901234567890", "1e5"]),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 400
    ),
    st.sampled_from([Decimal("1e-400"), Decimal("1e-20000"), Decimal("1.7976931348623157e308")]),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, strings)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(strings, children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def deep_values(draw):
    value = draw(leaves)
    for _ in range(draw(st.integers(min_value=1, max_value=300))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
times = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=zones
    ).map(datetime.isoformat),
    st.sampled_from(
        ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30T00:00:00Z"]
    ),
    strings,
    numbers,
)


@st.composite
def events(draw):
    event = {"eventName": draw(st.one_of(st.text(min_size=1, max_size=20), strings))}
    for field, values in (("timestamp", times), ("sentAt", times), ("messageId", strings)):
        if draw(st.booleans()):
            event[field] = draw(values)
    event.update(draw(st.dictionaries(strings, st.one_of(json_values, deep_values()), max_size=5)))
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not an event at all, now and then
    return event


def send(context, path: str, key: str, body: str):
    event = http_event(
        path, body.encode("utf-8", "surrogatepass"), headers={"x-api-key": key}, base64_body=True
    )
    response = ingest_app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def stored_by_event_id(db) -> dict[str, object]:
    with db.cursor() as cur:
        cur.execute("SELECT event_id::text, payload::text FROM events")
        return {event_id: exact(text) for event_id, text in cur.fetchall()}


@pytest.fixture
def sending(ingestor, store_database, db, context, sqs, queues):
    """Sends a body, stores whatever was queued, and gives back the answer and the rows."""
    app_id, key = make_app(db, rules={"e": {"type": "object", "required": ["x"]}})

    def run(route: str, body: str):
        with db.cursor() as cur:
            # Each example starts afresh, its messageIds too (a later example reusing
            # one would be a retry, and rightly store nothing).
            cur.execute("TRUNCATE events, event_dedup")
        status, answer = send(context, f"/api/logs/{app_id}{route}", key, body)
        assert status < 500, answer
        response, _ = store(context, drain(sqs, queues["events"]))
        assert failed_ids(response) == [], "an acknowledged event was not stored"
        return status, answer, stored_by_event_id(db)

    return run


@PROPERTY_SETTINGS
@given(event=events())
def test_every_event_accepted_alone_is_stored_exactly_as_sent(sending, event):
    body = to_json(event)
    status, answer, stored = sending("", body)
    if status in (202, 422):
        assert stored == {answer["event_id"]: exact(body)}
    else:
        assert stored == {}
        assert answer["error"] in CLIENT_ERRORS | {"payload_too_large"}, answer


@PROPERTY_SETTINGS
@given(batch=st.lists(events(), min_size=1, max_size=8))
def test_every_event_accepted_in_a_batch_is_stored_exactly_as_sent(sending, batch):
    body = "[" + ",".join(to_json(event) for event in batch) + "]"
    status, answer, stored = sending("/batch", body)
    if "results" not in answer:  # refused whole: the body is not an array of events
        assert (status, answer["error"]) in {(400, "invalid_json"), (413, "payload_too_large")}
        return
    expected = {}
    message_ids = set()
    for result, event in zip(answer["results"], batch, strict=True):
        if result["status"] not in ("valid", "invalid"):
            assert result["error"] in CLIENT_ERRORS, result
        elif event.get("messageId") not in message_ids:  # a repeated messageId adds no row
            expected[result["event_id"]] = exact(to_json(event))
            if event.get("messageId") is not None:
                message_ids.add(event["messageId"])
    assert stored == expected


# Characters no SQS message may hold. U+FFFE and U+FFFF reach the queued message as
# they are (raw or escaped in the client's text); an unpaired surrogate can only be
# sent escaped (as bytes it is not UTF-8, and the whole body is invalid_json).
REFUSED = st.sampled_from(["\ufffe", "\uffff", "\ud800", "\udbff", "\udc00", "\udfff"])
clean_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00\ufffe\uffff"), max_size=10
)
clean_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), clean_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(clean_text, children, max_size=3)
    ),
    max_leaves=10,
)


@st.composite
def events_with_a_refused_character(draw) -> str:
    """JSON text of an event with one character SQS refuses, somewhere in it."""
    char = draw(REFUSED)
    spoiled = draw(clean_text) + char + draw(clean_text)
    event = {"eventName": "e", "x": draw(clean_values)}
    place = draw(st.sampled_from(["eventName", "messageId", "key", "value", "nested"]))
    if place in ("eventName", "messageId"):
        event[place] = spoiled[:128]
    elif place == "key":
        event[spoiled] = draw(clean_values)
    elif place == "value":
        event["v"] = spoiled
    else:
        event["n"] = [{"a": draw(clean_values), spoiled[::-1]: [spoiled]}]
    # U+FFFE and U+FFFF may come raw; a surrogate must be escaped to be UTF-8.
    raw = char in "\ufffe\uffff" and draw(st.booleans())
    return json.dumps(event, ensure_ascii=not raw)


def send_maybe_dry(context, path: str, key: str, body: str, dry_run: bool):
    event = http_event(path, body.encode(), headers={"x-api-key": key})
    if dry_run:
        event["rawQueryString"] = "dry_run=true"
        event["queryStringParameters"] = {"dry_run": "true"}
    response = ingest_app.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(
    bad=events_with_a_refused_character(),
    before=st.integers(0, 3),
    after=st.integers(0, 3),
    dry_run=st.booleans(),
)
def test_an_event_sqs_would_refuse_is_a_400_alone_never_a_503(
    ingestor, store_database, db, context, sqs, queues, bad, before, after, dry_run
):
    app_id, key = make_app(db)
    status, answer = send_maybe_dry(context, f"/api/logs/{app_id}", key, bad, dry_run)
    assert (status, answer["error"]) == (400, "unstorable_value"), answer

    good = [json.dumps({"eventName": "ok", "i": i}) for i in range(before + after)]
    batch = "[" + ",".join([*good[:before], bad, *good[before:]]) + "]"
    status, answer = send_maybe_dry(context, f"/api/logs/{app_id}/batch", key, batch, dry_run)
    expected = [("valid", None)] * before + [("rejected", "unstorable_value")]
    expected += [("valid", None)] * after
    assert [(r["status"], r.get("error")) for r in answer["results"]] == expected
    assert status == (200 if dry_run else 202 if good else 400), answer

    response, _ = store(context, drain(sqs, queues["events"]))
    assert failed_ids(response) == []
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE app_id = %s", (app_id,))
        assert cur.fetchone() == (0 if dry_run else len(good),)
