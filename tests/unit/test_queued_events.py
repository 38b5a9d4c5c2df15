from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError
from sluice.queued_events import (
    MAX_MESSAGE_BYTES,
    QueuedEvent,
    ValidationIssue,
    pack,
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
