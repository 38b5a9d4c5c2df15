from datetime import UTC, datetime, timedelta

import pytest
from sluice.core.errors import DatabaseUnavailable, EventBlocked, EventRejected, SluiceError
from sluice.core.http_api import http_status
from sluice.intake.incoming_events import (
    contains_nul,
    may_contain_nul,
    occurred_at,
    parse_events,
    parse_json,
    read_envelope,
)

RECEIVED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_envelope_reads_recognised_fields():
    envelope = read_envelope(
        {
            "eventName": "user_login",
            "messageId": "m-1",
            "timestamp": "2026-03-01T11:59:00Z",
            "sentAt": "2026-03-01T13:00:00+01:00",
            "userId": 7,
        }
    )
    assert envelope.event_name == "user_login"
    assert envelope.message_id == "m-1"
    assert envelope.client_timestamp == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)
    assert envelope.sent_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_naive_client_times_are_taken_as_utc():
    envelope = read_envelope({"eventName": "x", "timestamp": "2026-03-01T11:59:00"})
    assert envelope.client_timestamp == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("event", "code"),
    [
        ([], "not_an_object"),
        ("user_login", "not_an_object"),
        ({}, "invalid_event_name"),
        ({"eventName": ""}, "invalid_event_name"),
        ({"eventName": "   "}, "invalid_event_name"),
        ({"eventName": 12}, "invalid_event_name"),
        ({"eventName": None}, "invalid_event_name"),
        ({"eventName": "x" * 129}, "invalid_event_name"),
        ({"eventName": "x", "messageId": 5}, "invalid_message_id"),
        ({"eventName": "x", "messageId": ""}, "invalid_message_id"),
        ({"eventName": "x", "messageId": "m" * 257}, "invalid_message_id"),
        ({"eventName": "x", "timestamp": "yesterday"}, "invalid_timestamp"),
        ({"eventName": "x", "sentAt": 1700000000}, "invalid_timestamp"),
        ({"eventName": "x", "note": "a\x00b"}, "unstorable_value"),
        ({"eventName": "x", "nested": [{"k\x00": 1}]}, "unstorable_value"),
    ],
)
def test_malformed_events_are_rejected_with_a_code(event, code):
    with pytest.raises(EventRejected) as caught:
        read_envelope(event)
    assert caught.value.code == code
    assert http_status(caught.value) == 400
    assert caught.value.message.endswith(".")


def test_event_name_of_exactly_128_characters_is_accepted():
    assert read_envelope({"eventName": "x" * 128}).event_name == "x" * 128


def test_parse_json_rejects_malformed_body():
    with pytest.raises(EventRejected) as caught:
        parse_json(b'{"eventName": ')
    assert caught.value.code == "invalid_json"


def test_nul_is_found_only_where_json_can_spell_it():
    assert may_contain_nul(b'{"a": "x\\u0000"}')
    assert not may_contain_nul(b'{"a": "x\\u0001"}')
    assert contains_nul(parse_json(b'{"a": ["x\\u0000"]}'))
    assert not contains_nul(parse_json(b'{"a": ["x\\\\u0000"]}'))


@pytest.mark.parametrize(
    ("body", "read"),
    [
        (b'["\\ud800"]', b'["\\uFFFF"]'),
        (b'["\\uDFFF", "\\ud83d\\ude00"]', b'["\\uFFFF", "\\ud83d\\ude00"]'),
        (b'["\\ud83d\\ud83d\\ude00"]', b'["\\uFFFF\\ud83d\\ude00"]'),
        (b'["\\\\\\ud800"]', b'["\\\\\\uFFFF"]'),  # a backslash, then an escape
    ],
)
def test_an_unpaired_surrogate_escape_is_read_as_uffff(body, read):
    assert parse_events(body) == (read, parse_json(read))


@pytest.mark.parametrize(
    "body",
    [
        b'["\\\\ud800"]',  # an escaped backslash, then text
        b'["\\ud83d\\ude00", "\\u00e9"]',
    ],
)
def test_a_body_without_unpaired_surrogates_is_read_as_it_is(body):
    assert parse_events(body) == (body, parse_json(body))


@pytest.mark.parametrize("body", [b'["\\ud800", 1e400]', b'{"n": 1e400, "s": "\\u00e9"}'])
def test_a_body_wrong_for_another_reason_is_invalid_json(body):
    with pytest.raises(EventRejected) as caught:
        parse_events(body)
    assert caught.value.code == "invalid_json"


def test_event_time_corrects_the_client_clock():
    # The client's clock runs 10 minutes fast; the event happened 30 s before sending.
    timestamp = RECEIVED + timedelta(minutes=10) - timedelta(seconds=30)
    sent_at = RECEIVED + timedelta(minutes=10)
    assert occurred_at(RECEIVED, timestamp, sent_at) == RECEIVED - timedelta(seconds=30)


def test_event_time_without_sent_at_is_the_client_timestamp():
    timestamp = RECEIVED - timedelta(hours=1)
    assert occurred_at(RECEIVED, timestamp, None) == timestamp


def test_event_time_without_client_times_is_arrival():
    assert occurred_at(RECEIVED, None, None) == RECEIVED
    assert occurred_at(RECEIVED, None, RECEIVED - timedelta(hours=1)) == RECEIVED


def test_only_numbers_a_double_may_not_carry_take_the_exact_path():
    from sluice.core.exact_json import may_lose_precision

    for body in (
        b'{"n": 12345678901234567}',  # 17 digits
        b'{"n": 3.141592653589793238}',
        b'{"n": 1e5}',
        b'{"n": 6.02E+23}',
        b'{"n": 0.000000000000001}',
    ):
        assert may_lose_precision(body), body
    for body in (
        b'{"eventName": "e", "n": 123456789012345, "f": 0.1, "t": "2026-03-01T12:00:00Z"}',
        b'{"id": "abc-e0", "e": "eeee"}',  # no e after a digit
    ):
        assert not may_lose_precision(body), body


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (EventBlocked("x", code="validation_failed"), 422),  # its own, not EventRejected's
        (DatabaseUnavailable("x"), 503),  # ServiceUnavailable's
        (SluiceError("x"), 500),
    ],
)
def test_the_most_specific_http_status_wins(error, status):
    assert http_status(error) == status
