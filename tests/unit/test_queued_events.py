import dataclasses
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sluice.queued_events import (
    MAX_MESSAGE_BYTES,
    QueuedEvent,
    ValidationIssue,
    pack,
    parse_events,
    parse_message,
    serialize_event,
)
from uuid_utils.compat import uuid7


def queued_event(payload_size: int = 10, **overrides) -> QueuedEvent:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fields = dict(
        event_id=uuid7(),
        app_id="app_1",
        event_name="user_login",
        payload=orjson.dumps({"eventName": "user_login", "blob": "x" * payload_size}).decode(),
        status="valid",
        validation_errors=None,
        message_id=None,
        client_timestamp=None,
        sent_at=None,
        occurred_at=now,
        received_at=now,
    )
    fields.update(overrides)
    return QueuedEvent(**fields)


def test_message_round_trips_through_the_shared_model():
    event = queued_event(
        status="invalid",
        validation_errors=[ValidationIssue(path="/userId", message="bad", keyword="type")],
        message_id="m-1",
        client_timestamp=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
    )
    [(body, positions)] = list(pack([serialize_event(event)]))
    message = parse_message(body)
    assert positions == [0]
    assert message.version == 2
    assert message.events == [event]


def test_version_1_messages_with_the_payload_as_an_object_are_still_read():
    # Messages queued before version 2 may be in flight or in the DLQ across a deploy.
    data = orjson.loads(serialize_event(queued_event()))
    data["payload"] = orjson.loads(data["payload"])
    [event] = parse_message(orjson.dumps({"version": 1, "events": [data]})).events
    assert event.payload == {"eventName": "user_login", "blob": "x" * 10}


def test_packing_fills_messages_up_to_64_kib_and_never_over():
    serialized = [serialize_event(queued_event(payload_size=3_000)) for _ in range(100)]
    messages = list(pack(serialized))
    assert len(messages) > 1
    assert all(len(body) <= MAX_MESSAGE_BYTES for body, _ in messages)
    # Each message but the last is full: the next event would not have fitted.
    for (body, _), (_, next_positions) in zip(messages, messages[1:], strict=False):
        assert len(body) + len(serialized[next_positions[0]]) + 1 > MAX_MESSAGE_BYTES
    # Every event is in exactly one message, in order.
    assert [p for _, positions in messages for p in positions] == list(range(100))
    events = [e for body, _ in messages for e in parse_message(body).events]
    assert [str(e.event_id) for e in events] == [orjson.loads(s)["event_id"] for s in serialized]


def test_an_event_larger_than_a_message_travels_alone():
    big = serialize_event(queued_event(payload_size=70_000))
    small = serialize_event(queued_event())
    messages = list(pack([small, big, small]))
    assert [positions for _, positions in messages] == [[0], [1], [2]]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{}",
        '{"version": 1}',
        '{"version": 3, "events": []}',
        '{"version": 1, "events": [{"event_id": "nope"}]}',
        '{"version": 1, "events": [{"event_id": 5}]}',
    ],
)
def test_messages_that_do_not_fit_the_model_are_refused(body):
    with pytest.raises(ValidationError):
        parse_message(body)


def test_timestamps_must_be_strings_on_the_wire():
    data = orjson.loads(serialize_event(queued_event()))
    data["occurred_at"] = 1_700_000_000
    with pytest.raises(ValidationError):
        parse_message(orjson.dumps({"version": 1, "events": [data]}))


# --- the store's one read of a message (parse_events) ------------------------------------

# JSON texts to put in an event's fields: what the model takes, what it refuses, and what
# a looser read would take (dates alone, infinity, numbers for times, other UUID forms).
_FIELD_TEXTS = [
    '"2026-03-01T12:00:00Z"',
    '"2026-03-01T12:00:00.1234567+05:30"',
    '"2026-03-01 12:00:00"',
    '"2026-03-01"',
    '"2026-02-30T00:00:00Z"',
    '"12:00:00"',
    '"infinity"',
    '"-infinity"',
    '"now"',
    '"1700000000"',
    "1700000000",
    "1.5",
    "123456789012345678901234567890",
    "NaN",
    "true",
    "null",
    '""',
    '"valid"',
    '"invalid"',
    '"{0190a0b0-0000-7000-8000-000000000000}"',
    '"urn:uuid:0190a0b0-0000-7000-8000-000000000000"',
    '"0190a0b000007000800000000000000"',
    '"0190a0b0-0000-7000-8000-00000000000g"',
    '"\\ud800"',
    '{"a": [1, 2.5, null]}',
    "[]",
    '[{"path": "/x", "message": "m", "keyword": "k"}]',
    '[{"path": "/x", "message": "m"}]',
]
_FIELDS = [field.name for field in dataclasses.fields(QueuedEvent)]


def _wire(event: QueuedEvent, changes: dict[str, str]) -> str:
    fields = orjson.loads(serialize_event(event))
    texts = {
        name: changes.get(name, orjson.dumps(value).decode()) for name, value in fields.items()
    }
    return "{" + ",".join(f'"{name}":{text}' for name, text in texts.items()) + "}"


def _body(version: str, *events: str) -> str:
    return f'{{"version":{version},"events":[{",".join(events)}]}}'


@settings(max_examples=400, deadline=None)
@given(
    version=st.sampled_from(["1", "2", "1.0", "true", "3", '"2"']),
    changes=st.lists(
        st.dictionaries(st.sampled_from(_FIELDS), st.sampled_from(_FIELD_TEXTS), max_size=3),
        min_size=1,
        max_size=3,
    ),
)
def test_the_one_read_accepts_what_the_model_accepts_in_wire_form(version, changes):
    body = _body(version, *(_wire(queued_event(), change) for change in changes))
    try:
        parse_message(body)
    except ValidationError:
        with pytest.raises(ValidationError):
            parse_events(body)
        return
    # The texts as the body carries them, as the store has always written them.
    assert [{name: event[name] for name in _FIELDS} for event in parse_events(body)] == [
        {name: event[name] for name in _FIELDS} for event in orjson.loads(body)["events"]
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"occurred_at": '"2026-03-01"'},  # lax mode: midnight
        {"received_at": '"infinity"'},  # PostgreSQL takes it; no API returns it unchanged
        {"sent_at": '"-infinity"'},
        {"client_timestamp": "1700000000"},
        {"event_id": '"0190a0b0-0000-7000-8000-00000000000g"'},
    ],
)
def test_the_one_read_refuses_times_and_ids_the_model_refuses(changes):
    body = _body("2", _wire(queued_event(), changes))
    with pytest.raises(ValidationError):
        parse_events(body)


def test_the_one_read_gives_objects_and_validation_errors_as_orjson_reads_them():
    # A version-1 payload is written from orjson's read, which makes an integer past 64
    # bits a float; a validation issue's unknown keys are kept: the rows stay as they were.
    changes = {
        "payload": '{"big": 123456789012345678901234567890, "n": [1, 2.5]}',
        "validation_errors": '[{"path": "/x", "message": "m", "keyword": "k", "more": 1}]',
        "status": '"invalid"',
    }
    body = _body("1", _wire(queued_event(), changes), _wire(queued_event(), {}))
    assert parse_events(body) == orjson.loads(body)["events"]
