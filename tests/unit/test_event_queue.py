"""Ingest's EventQueue: a call that times out ends the sending; a refusal is retried."""

from __future__ import annotations

import io
import json

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from sluice.core.observability import logger
from sluice.intake.queue import EventQueue

from tests.support import drain


class FakeSqs:
    """Answers SendMessage and SendMessageBatch by a script, one step per call: "ok",
    "timeout", "refused" (the call fails) or "invalid" (SQS refuses the message)."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls.append([entry["Id"] for entry in Entries])
        step = self.script.pop(0) if self.script else "ok"
        if step == "timeout":
            raise ReadTimeoutError(endpoint_url=QueueUrl)
        if step == "refused":
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:
        self.calls.append(["lone"])
        step = self.script.pop(0) if self.script else "ok"
        if step == "timeout":
            raise ReadTimeoutError(endpoint_url=QueueUrl)
        if step == "refused":
            raise EndpointConnectionError(endpoint_url=QueueUrl)
        if step == "invalid":
            error = {"Error": {"Code": "InvalidMessageContents", "Message": "no"}}
            raise ClientError(error, "SendMessage")
        return {"MessageId": "m"}


BODIES = [b"x" * 100] * 25  # three calls: 10, 10 and 5 entries


def test_a_call_that_times_out_ends_the_sending_and_keeps_what_went_before():
    sqs = FakeSqs("ok", "timeout")
    unsent = EventQueue(sqs, "queue").send(BODIES)
    assert len(sqs.calls) == 2  # no third call, no second round
    assert unsent == set(range(10, 25))


def test_a_refused_call_costs_no_wait_and_is_retried():
    sqs = FakeSqs("refused")
    assert EventQueue(sqs, "queue").send(BODIES) == set()
    assert len(sqs.calls) == 4  # three groups, then the refused one again


def _operations(sqs) -> list[str]:
    """The SQS operations the client makes from now on, in order."""
    made: list[str] = []
    sqs.meta.events.register("before-call.sqs", lambda model, **_: made.append(model.name))
    return made


def test_a_lone_message_goes_in_one_send_message_and_more_in_send_message_batch(sqs, queues):
    # Given the events queue (moto's SQS, through boto3) and a record of the calls made
    made = _operations(sqs)
    queue = EventQueue(sqs, queues["events"])
    # When one message is sent, then two
    assert queue.send([b'{"n":1}']) == set()
    assert queue.send([b'{"n":2}', b'{"n":3}']) == set()
    # Then the lone one took SendMessage (cheaper for botocore to build and read than a
    # batch of one), the two SendMessageBatch, and the queue holds the three as sent
    assert made == ["SendMessage", "SendMessageBatch"]
    assert sorted(drain(sqs, queues["events"])) == ['{"n":1}', '{"n":2}', '{"n":3}']


def test_a_lone_message_sqs_refuses_is_retried_then_reported_unsent():
    sqs = FakeSqs("invalid", "invalid", "invalid")
    assert EventQueue(sqs, "queue").send([b"x"]) == {0}
    assert sqs.calls == [["lone"]] * 3


def test_a_lone_message_sqs_refuses_is_logged_with_sqs_code_as_a_refused_entry_is():
    handler = logger.registered_handler
    lines = io.StringIO()
    previous = handler.setStream(lines)  # the handler keeps the stdout it found at import
    try:
        EventQueue(FakeSqs("invalid"), "queue").send([b"x"])
    finally:
        handler.setStream(previous)
    [line] = [json.loads(text) for text in lines.getvalue().splitlines()]
    assert (line["message"], line["codes"]) == (
        "events queue refused entries",
        ["InvalidMessageContents"],
    )


def test_a_lone_message_refused_once_is_sent_on_the_retry():
    sqs = FakeSqs("invalid")
    assert EventQueue(sqs, "queue").send([b"x"]) == set()
    assert len(sqs.calls) == 2


def test_a_lone_message_whose_call_times_out_is_reported_unsent_at_once():
    sqs = FakeSqs("timeout")
    assert EventQueue(sqs, "queue").send([b"x"]) == {0}
    assert len(sqs.calls) == 1
