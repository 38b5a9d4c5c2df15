"""FIFO queues and message groups run as SQS and Lambda run them (the fidelity/fifo/ template).

Real HTTP into the runtime, real SQS calls to local_queue, handlers in worker processes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.runtime import Runtime
from local_runtime.sqs import hold_fifo_groups, sqs_client
from tests.local_runtime.conftest import http, lines, running
from tests.support import wait_for

FIFO = Path(__file__).parent / "fidelity" / "fifo"


@pytest.fixture(scope="module")
def fifo(tmp_path_factory, module_queue_database) -> Iterator[Runtime]:
    state_root = tmp_path_factory.mktemp("fifo")
    with running(FIFO, state_root, module_queue_database) as runtime:
        yield runtime


def notes(runtime: Runtime, function: str) -> list[dict]:
    return lines(runtime.state_dir / f"fifo-{function}.jsonl")


def queued(runtime: Runtime, queue: str) -> list[dict]:
    client = sqs_client(runtime.sqs_url, "us-east-1")
    return client.receive_message(
        QueueUrl=runtime.queue_urls[queue],
        MaxNumberOfMessages=10,
        AttributeNames=["All"],
        VisibilityTimeout=0,
    ).get("Messages", [])


def test_a_fifo_queue_delivers_each_group_in_order_once_and_holds_it_behind_a_failure(fifo):
    client = sqs_client(fifo.sqs_url, "us-east-1")
    entries = [
        ("a1", "A", "order a1"),
        ("b1", "B", "order b1"),
        ("a2", "A", "order a2 fail-once"),
        ("a3", "A", "order a3"),
        ("b2", "B", "order b2"),
        ("dup", "A", "order a1"),  # content-based deduplication: not delivered again
        ("b3", "B", "order a1"),  # the same body in another group is not a duplicate
    ]

    # When the orders are sent in one batch, so one receive sees them all
    sent = client.send_message_batch(
        QueueUrl=fifo.queue_urls["OrdersQueue"],
        Entries=[
            {"Id": entry_id, "MessageBody": body, "MessageGroupId": group}
            for entry_id, group, body in entries
        ],
    )
    assert not sent.get("Failed")

    # Then each group is handled in order, and a3, which the function handled and did
    # not report, came back behind a2's failure, as Lambda counts the rest of a
    # group's batch failed after its first failure.
    def done() -> list[dict]:
        seen = notes(fifo, "OrdersFunction")
        finished = [n for n in seen if n["body"] == "order a3" and n["receives"] == 2]
        return seen if finished else []

    seen = wait_for(done, timeout=60)
    assert [(n["body"], n["receives"]) for n in seen if n["group"] == "A"] == [
        ("order a1", 1),
        ("order a2 fail-once", 1),
        ("order a3", 1),
        ("order a2 fail-once", 2),
        ("order a3", 2),
    ]
    assert [n["body"] for n in seen if n["group"] == "B"] == ["order b1", "order b2", "order a1"]
    # Lambda's FIFO records carry the group, the deduplication id and the sequence number.
    first = seen[0]
    assert first["deduplication"] and first["sequence"].isdigit()
    assert queued(fifo, "OrdersQueue") == []


def test_a_poison_message_blocks_its_group_until_it_dead_letters(fifo):
    client = sqs_client(fifo.sqs_url, "us-east-1")
    for body in ("poison", "after"):
        client.send_message(
            QueueUrl=fifo.queue_urls["PaymentsQueue"],
            MessageBody=body,
            MessageGroupId="card-7",
            MessageDeduplicationId=body,
        )

    seen = wait_for(
        lambda: (
            [n for n in notes(fifo, "PaymentsFunction") if n["body"] == "after"]
            and notes(fifo, "PaymentsFunction")
        ),
        timeout=60,
    )

    # "after" waited for "poison" to fail maxReceiveCount (2) times and move out, even
    # though the runtime polls the queue with more than one poller.
    assert [(n["body"], n["receives"]) for n in seen] == [
        ("poison", 1),
        ("poison", 2),
        ("after", 1),
    ]
    dead = wait_for(lambda: [m for m in queued(fifo, "DeadLettersQueue") if m["Body"] == "poison"])
    assert dead[0]["Attributes"]["MessageGroupId"] == "card-7"
    assert dead[0]["Attributes"]["DeadLetterQueueSourceArn"].endswith(":payments.fifo")


def test_a_fair_queue_delivers_each_messages_group_id_to_lambda(fifo):
    # A message group id sent to a standard queue (SQS's fair queues), over HTTP
    for tenant in ("tenant-1", "tenant-2"):
        status, _, _ = http(
            "POST",
            fifo.api_url + f"/tenants/{tenant}/jobs",
            json.dumps({"job": tenant}).encode(),
            {"Content-Type": "application/json"},
        )
        assert status == 202

    seen = wait_for(
        lambda: len(notes(fifo, "TenantJobsFunction")) >= 2 and notes(fifo, "TenantJobsFunction")
    )

    assert sorted((n["tenant"], json.loads(n["body"])["job"]) for n in seen) == [
        ("tenant-1", "tenant-1"),
        ("tenant-2", "tenant-2"),
    ]
    assert queued(fifo, "TenantJobsQueue") == []


def test_a_failure_holds_back_only_the_rest_of_its_own_group():
    batch = [
        {"MessageId": message_id, "Attributes": {"MessageGroupId": message_id[0]}}
        for message_id in ("a1", "b1", "a2", "b2", "a3", "c1")
    ]

    # The function reported a2 and b2: a3 stays queued behind a2, a1 and c1 are done.
    assert hold_fifo_groups(batch, {"a2", "b2"}) == {"a2", "a3", "b2"}
    assert hold_fifo_groups(batch, set()) == set()
