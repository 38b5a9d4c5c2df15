"""Ingest's EventQueue: a call that times out ends the sending; a refusal is retried."""

from __future__ import annotations

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from sluice.intake.queue import EventQueue


class FakeSqs:
    """Answers SendMessageBatch by a script: "ok", "timeout" or "refused", one per call."""

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
