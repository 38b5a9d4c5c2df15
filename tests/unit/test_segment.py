"""Segment messages as Sluice's events: plain Python, no AWS, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sluice.core.errors import EventRejected
from sluice.intake.incoming_events import occurred_at
from sluice.intake.segment import messages, read_message, write_key_in_body


def named(index: int) -> str:
    return f"made-{index}"


def test_a_single_message_takes_its_routes_type_and_a_made_message_id():
    [message] = messages({"type": "identify", "event": "E", "userId": 7}, "track", named)
    assert message == {"type": "track", "event": "E", "userId": "7", "messageId": "made-0"}


def test_a_batchs_shared_fields_fill_each_message_its_own_winning():
    document = {
        "batch": [{"context": {"a": 1}, "sentAt": "own"}, {"integrations": {"X": False}}, 5],
        "context": {"a": 0, "b": 2},
        "integrations": {"All": True},
        "sentAt": "shared",
        "writeKey": "k",
    }
    first, second, third = messages(document, None, named)
    assert first["context"] == {"a": 1, "b": 2} and first["sentAt"] == "own"
    assert first["integrations"] == {"All": True}
    assert second["context"] == {"a": 0, "b": 2} and second["sentAt"] == "shared"
    assert second["integrations"] == {"X": False}
    assert (first["messageId"], second["messageId"], third) == ("made-0", "made-1", 5)
    assert "writeKey" not in first


def test_the_same_message_ids_are_made_each_time_asked():
    made: dict[int, str] = {}

    def once(index: int) -> str:
        return made.setdefault(index, f"id-{len(made)}")

    document = {"batch": [{}, {"messageId": "own"}, {}]}
    assert messages(document, None, once) == messages(document, None, once)


@pytest.mark.parametrize(
    ("document", "expected"),
    [({"writeKey": " k "}, "k"), ({"writeKey": ""}, None), ({"writeKey": 5}, None), ([], None)],
)
def test_the_write_key_in_the_body(document, expected):
    assert write_key_in_body(document) == expected


def test_the_client_time_is_the_timestamp_else_the_original_timestamp():
    both = {"type": "page", "userId": "u", "messageId": "m"}
    envelope = read_message(
        {**both, "timestamp": "2026-01-01T10:00:00Z", "originalTimestamp": "2020-01-01T00:00:00Z"}
    )
    assert envelope.client_timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC)
    envelope = read_message(
        {**both, "timestamp": None, "originalTimestamp": "2020-01-01T00:00:00Z"}
    )
    assert envelope.client_timestamp == datetime(2020, 1, 1, tzinfo=UTC)
    assert envelope.event_name == "page"


def test_the_corrected_timestamp_is_received_minus_sent_minus_original():
    # The device's clock runs 2 h 3 s ahead; the message waited 4 s in its queue.
    received = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    original = datetime(2026, 5, 1, 14, 0, 0, tzinfo=UTC)
    sent = original + timedelta(seconds=4)
    assert occurred_at(received, original, sent) == received - timedelta(seconds=4)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"type": "track", "event": "E"}, "missing_user"),
        ({"type": "track", "event": "E", "userId": True}, "invalid_id"),
        ({"type": "track", "event": "x" * 129, "userId": "u"}, "invalid_event_name"),
        ({"type": "screen", "userId": "u", "messageId": ""}, "invalid_message_id"),
        ({"type": "page", "userId": "u", "messageId": "m", "sentAt": 5}, "invalid_timestamp"),
        ({"type": "page", "userId": "u", "messageId": "m", "p": "\x00"}, "unstorable_value"),
        ({"type": "Track", "userId": "u", "messageId": "m"}, "invalid_type"),
    ],
)
def test_what_a_message_is_refused_for(message, code):
    with pytest.raises(EventRejected) as refused:
        read_message(message)
    assert refused.value.code == code
