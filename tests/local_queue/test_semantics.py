"""SQS's semantics, the same scenarios against moto and against local_queue, through boto3.

Where moto and real SQS part ways, the test says so and checks what both do;
checks only local_queue can pass are in test_local_queue.py.
"""

from __future__ import annotations

import hashlib
import json
import struct
import threading
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from tests.support import wait_for


def md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def reference_attributes_md5(attributes: dict) -> str:
    """MD5OfMessageAttributes as the SQS developer guide defines it, written independently."""
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        value = attributes[name]
        for part in (name.encode(), value["DataType"].encode()):
            digest.update(struct.pack(">I", len(part)) + part)
        if "StringValue" in value:
            data = value["StringValue"].encode()
            digest.update(b"\x01" + struct.pack(">I", len(data)) + data)
        else:
            data = value["BinaryValue"]
            digest.update(b"\x02" + struct.pack(">I", len(data)) + data)
    return digest.hexdigest()


def receive(sqs, url: str, **params) -> list[dict]:
    params.setdefault("AttributeNames", ["All"])
    return sqs.receive_message(QueueUrl=url, **params).get("Messages", [])


def receive_all(sqs, url: str, count: int, **params) -> list[dict]:
    got: list[dict] = []

    def more():
        got.extend(receive(sqs, url, MaxNumberOfMessages=10, **params))
        return len(got) >= count

    wait_for(more)
    return got


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def attribute(sqs, url: str, name: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[name])["Attributes"][name]


# ------------------------------------------------------------------ send, receive, delete
def test_a_sent_message_is_received_once_then_deleted(sqs, make_queue):
    url = make_queue()

    sent = sqs.send_message(QueueUrl=url, MessageBody="héllo wörld")
    [message] = receive(sqs, url, VisibilityTimeout=30)

    assert message["MessageId"] == sent["MessageId"]
    assert message["Body"] == "héllo wörld"
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"] == md5("héllo wörld")
    assert receive(sqs, url) == []  # invisible while in flight
    assert attribute(sqs, url, "ApproximateNumberOfMessagesNotVisible") == "1"

    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert attribute(sqs, url, "ApproximateNumberOfMessages") == "0"
    assert attribute(sqs, url, "ApproximateNumberOfMessagesNotVisible") == "0"


def test_batch_send_reports_every_entry(sqs, make_queue):
    url = make_queue()

    response = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": f"body {i}"} for i in range(10)]
    )

    assert response.get("Failed", []) == []
    assert sorted(e["Id"] for e in response["Successful"]) == sorted(f"e{i}" for i in range(10))
    for entry in response["Successful"]:
        assert entry["MD5OfMessageBody"] == md5(f"body {entry['Id'][1:]}")
    received = receive_all(sqs, url, 10)
    assert sorted(m["Body"] for m in received) == sorted(f"body {i}" for i in range(10))

    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)
        ],
    )
    assert len(deleted["Successful"]) == 10
    assert attribute(sqs, url, "ApproximateNumberOfMessagesNotVisible") == "0"


@pytest.mark.parametrize(
    ("entries", "exception", "code"),
    [
        (
            [{"Id": str(i), "MessageBody": "x"} for i in range(11)],
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        ),
        (
            [{"Id": "same", "MessageBody": "x"}, {"Id": "same", "MessageBody": "y"}],
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        ),
        ([], "EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest"),
        (
            # 10 x 110,000 bytes: over the 1 MiB a batch may carry in all.
            [{"Id": str(i), "MessageBody": "x" * 110_000} for i in range(10)],
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
        ),
        (
            [{"Id": "not.valid", "MessageBody": "x"}],
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
        ),
    ],
    ids=["too-many", "ids-not-distinct", "empty", "too-long", "bad-id"],
)
def test_batch_limits_refuse_the_whole_request(sqs, make_queue, entries, exception, code):
    url = make_queue()

    error = error_of(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries))

    assert isinstance(error, getattr(sqs.exceptions, exception))
    assert error.response["Error"]["Code"] == code
    assert attribute(sqs, url, "ApproximateNumberOfMessages") == "0"


def test_delete_batch_limits(sqs, make_queue):
    url = make_queue()

    error = error_of(lambda: sqs.delete_message_batch(QueueUrl=url, Entries=[]))

    assert isinstance(error, sqs.exceptions.EmptyBatchRequest)


def test_a_message_over_the_queue_size_limit_is_refused(sqs, make_queue):
    url = make_queue(MaximumMessageSize=1024)

    sqs.send_message(QueueUrl=url, MessageBody="x" * 1024)
    error = error_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * 1025))

    assert error.response["Error"]["Code"] == "InvalidParameterValue"
    assert attribute(sqs, url, "ApproximateNumberOfMessages") == "1"


def test_the_default_size_limit_is_one_mebibyte(sqs, make_queue):
    # SQS raised it from 256 KiB to 1 MiB in August 2025; moto follows.
    url = make_queue()

    assert attribute(sqs, url, "MaximumMessageSize") == "1048576"
    sqs.send_message(QueueUrl=url, MessageBody="x" * 300_000)


# ------------------------------------------------------------------ visibility
def returned_at(sqs, url: str) -> tuple[list[dict], float]:
    """Waits until a receive returns messages; returns them and when they came back."""
    messages = wait_for(lambda: receive(sqs, url))
    return messages, time.monotonic()


def test_an_undeleted_message_returns_after_its_visibility_timeout(sqs, make_queue):
    url = make_queue(VisibilityTimeout=2)
    sqs.send_message(QueueUrl=url, MessageBody="again")

    before_first = time.monotonic()
    [first] = receive(sqs, url)
    # Invisible until 2 s after the first receive: seeing it sooner is the failure (a
    # busy machine may take longer than that to ask again, and then it may be back).
    early = receive(sqs, url)
    assert early == [] or time.monotonic() - before_first >= 2
    [second], back_at = returned_at(sqs, url)

    # The first receive happened after `before_first`, so nothing can return earlier.
    assert back_at - before_first >= 1.9
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"


def test_receive_counts_and_timestamps(sqs, make_queue):
    url = make_queue()
    sqs.send_message(QueueUrl=url, MessageBody="counted")

    deliveries = [receive(sqs, url, VisibilityTimeout=0)[0] for _ in range(3)]

    assert [m["Attributes"]["ApproximateReceiveCount"] for m in deliveries] == ["1", "2", "3"]
    assert len({m["Attributes"]["ApproximateFirstReceiveTimestamp"] for m in deliveries}) == 1
    first = deliveries[0]["Attributes"]
    assert int(first["SentTimestamp"]) <= int(first["ApproximateFirstReceiveTimestamp"])
    assert abs(int(first["SentTimestamp"]) / 1000 - time.time()) < 60


def test_change_visibility_makes_a_message_visible_again(sqs, make_queue):
    url = make_queue(VisibilityTimeout=60)
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(2)]
    )
    received = receive_all(sqs, url, 2)
    assert receive(sqs, url) == []

    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=0
    )
    response = sqs.change_message_visibility_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "b", "ReceiptHandle": received[1]["ReceiptHandle"], "VisibilityTimeout": 0}
        ],
    )

    assert [e["Id"] for e in response["Successful"]] == ["b"]
    again = receive_all(sqs, url, 2)
    assert sorted(m["Body"] for m in again) == ["0", "1"]


def test_a_delayed_message_is_invisible_until_its_delay_ends(sqs, make_queue):
    url = make_queue()

    before_send = time.monotonic()
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)

    early = receive(sqs, url)
    assert early == [] or time.monotonic() - before_send >= 2
    [message], delivered_at = returned_at(sqs, url)
    assert message["Body"] == "later"
    assert delivered_at - before_send >= 1.9


# ------------------------------------------------------------------ receipt handles
def test_receipt_handles(sqs, make_queue, backend):
    url = make_queue()
    sqs.send_message(QueueUrl=url, MessageBody="handled")
    [first] = receive(sqs, url, VisibilityTimeout=0)
    [second] = receive(sqs, url, VisibilityTimeout=30)
    assert first["ReceiptHandle"] != second["ReceiptHandle"]

    # A stale handle is accepted by both...
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])

    # ...but SQS documents that it deletes nothing ("you must provide the most recently
    # received receipt handle ... otherwise, the request succeeds, but the message will
    # not be deleted"), which local_queue follows; moto deletes the message.
    in_flight = attribute(sqs, url, "ApproximateNumberOfMessagesNotVisible")
    assert in_flight == ("0" if backend == "moto" else "1")

    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    assert attribute(sqs, url, "ApproximateNumberOfMessagesNotVisible") == "0"
    # Deleting a deleted message again is no error either.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])


def test_a_malformed_receipt_handle_is_refused(sqs, make_queue):
    url = make_queue()

    error = error_of(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage"))
    batch = sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": "bad", "ReceiptHandle": "garbage"}]
    )

    assert isinstance(error, sqs.exceptions.ReceiptHandleIsInvalid)
    assert [(f["Id"], f["Code"]) for f in batch["Failed"]] == [("bad", "ReceiptHandleIsInvalid")]


# ------------------------------------------------------------------ redrive
def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(sqs, make_queue):
    dlq = make_queue("dlq")
    dlq_arn = attribute(sqs, dlq, "QueueArn")
    url = make_queue(
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})
    )
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison")

    assert receive(sqs, url, VisibilityTimeout=0)[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert receive(sqs, url, VisibilityTimeout=0)[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    # The third receive would exceed maxReceiveCount: the message moves instead. Both
    # SQS and moto move it then, during a receive on the source queue, not on a timer.
    assert receive(sqs, url, VisibilityTimeout=0) == []

    [dead] = receive(sqs, dlq)
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["Body"] == "poison"
    # Both keep counting receives across the move.
    assert dead["Attributes"]["ApproximateReceiveCount"] == "3"
    assert attribute(sqs, url, "ApproximateNumberOfMessages") == "0"


def test_redrive_policy_round_trips_and_can_be_removed(sqs, make_queue):
    dlq = make_queue("dlq")
    dlq_arn = attribute(sqs, dlq, "QueueArn")
    url = make_queue(
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    )

    policy = json.loads(attribute(sqs, url, "RedrivePolicy"))
    assert policy == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"] == [url]

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "RedrivePolicy" not in attributes


# ------------------------------------------------------------------ long polling
def test_a_long_poll_returns_as_soon_as_a_message_arrives(sqs, make_queue):
    url = make_queue()
    sender = threading.Timer(0.3, lambda: sqs.send_message(QueueUrl=url, MessageBody="wake"))
    sender.start()
    started = time.monotonic()

    messages = receive(sqs, url, WaitTimeSeconds=20)

    sender.join()
    assert [m["Body"] for m in messages] == ["wake"]
    # Long before the 20 s wait ends, however slow a busy machine makes the send.
    assert time.monotonic() - started < 15


def test_a_long_poll_on_an_empty_queue_waits_its_time(sqs, make_queue):
    url = make_queue()
    started = time.monotonic()

    assert receive(sqs, url, WaitTimeSeconds=1) == []

    # It waited its second; the upper bound only tells "waited its time" from "hung",
    # so it leaves room for a busy machine.
    assert 0.9 <= time.monotonic() - started < 10


def test_receive_parameters_are_checked(sqs, make_queue):
    url = make_queue()

    error = error_of(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11))

    assert error.response["Error"]["Code"] == "InvalidParameterValue"


# ------------------------------------------------------------------ queues
def test_an_unknown_queue_does_not_exist(sqs, make_queue):
    url = make_queue()
    missing = url.rsplit("/", 1)[0] + "/no-such-queue"

    for call in (
        lambda: sqs.get_queue_url(QueueName="no-such-queue"),
        lambda: sqs.send_message(QueueUrl=missing, MessageBody="x"),
        lambda: sqs.receive_message(QueueUrl=missing),
    ):
        error = error_of(call)
        assert isinstance(error, sqs.exceptions.QueueDoesNotExist)
        assert error.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_queue_attributes_and_urls(sqs, make_queue):
    url = make_queue("attrs", VisibilityTimeout=45, DelaySeconds=0, ReceiveMessageWaitTimeSeconds=2)
    name = url.rsplit("/", 1)[1]

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "45"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "2"
    assert attributes["QueueArn"].startswith("arn:aws:sqs:us-east-1:")
    assert attributes["QueueArn"].endswith(":" + name)
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == url
    assert url in sqs.list_queues(QueueNamePrefix="attrs-")["QueueUrls"]

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    assert attribute(sqs, url, "VisibilityTimeout") == "7"

    error = error_of(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Bogus"]))
    assert isinstance(error, sqs.exceptions.InvalidAttributeName)


def test_create_queue_is_idempotent_for_the_same_attributes(sqs, make_queue):
    url = make_queue(VisibilityTimeout=10)
    name = url.rsplit("/", 1)[1]

    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "10"})
    error = error_of(
        lambda: sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "11"})
    )

    assert again["QueueUrl"] == url
    assert isinstance(error, sqs.exceptions.QueueNameExists)


def test_purge_and_delete_queue(sqs, make_queue):
    url = make_queue()
    sqs.send_message(QueueUrl=url, MessageBody="x")

    sqs.purge_queue(QueueUrl=url)
    assert attribute(sqs, url, "ApproximateNumberOfMessages") == "0"

    sqs.delete_queue(QueueUrl=url)
    error = error_of(lambda: sqs.get_queue_url(QueueName=url.rsplit("/", 1)[1]))
    assert isinstance(error, sqs.exceptions.QueueDoesNotExist)


# ------------------------------------------------------------------ attributes and MD5s
ATTRIBUTES = {
    "trace": {"DataType": "String", "StringValue": "Root=1-abc"},
    "count": {"DataType": "Number", "StringValue": "12.5"},
    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
    "kind": {"DataType": "String.custom", "StringValue": "ünïcode"},
}


def test_message_attributes_round_trip_with_their_md5(sqs, make_queue):
    url = make_queue()

    sent = sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=ATTRIBUTES)
    [message] = receive(sqs, url, MessageAttributeNames=["All"], VisibilityTimeout=0)

    assert sent["MD5OfMessageAttributes"] == reference_attributes_md5(ATTRIBUTES)
    assert message["MessageAttributes"] == ATTRIBUTES
    assert message["MD5OfMessageAttributes"] == reference_attributes_md5(ATTRIBUTES)


def test_only_the_requested_attributes_are_returned(sqs, make_queue):
    url = make_queue()
    sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=ATTRIBUTES)

    [some] = receive(sqs, url, MessageAttributeNames=["trace", "count"], VisibilityTimeout=0)
    [none] = receive(sqs, url, VisibilityTimeout=0)

    chosen = {k: ATTRIBUTES[k] for k in ("trace", "count")}
    assert some["MessageAttributes"] == chosen
    assert some["MD5OfMessageAttributes"] == reference_attributes_md5(chosen)
    assert "MessageAttributes" not in none
    assert "MD5OfMessageAttributes" not in none


def test_batch_md5s(sqs, make_queue):
    url = make_queue()

    response = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "plain", "MessageBody": "one"},
            {"Id": "with", "MessageBody": "two", "MessageAttributes": ATTRIBUTES},
        ],
    )

    by_id = {e["Id"]: e for e in response["Successful"]}
    assert by_id["plain"]["MD5OfMessageBody"] == md5("one")
    assert "MD5OfMessageAttributes" not in by_id["plain"]
    assert by_id["with"]["MD5OfMessageAttributes"] == reference_attributes_md5(ATTRIBUTES)
