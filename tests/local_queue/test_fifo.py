"""FIFO queues and message groups in local_queue, as SQS has them, through boto3.

What SQS does is written next to each check; the SQS API reference and developer
guide (FIFO queues, fair queues, dead-letter queues) are the source.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from botocore.exceptions import ClientError

from local_queue import QueueServer
from tests.local_queue.conftest import local_client
from tests.local_queue.test_local_queue import start_subprocess
from tests.support import scratch_database

DEDUPLICATION_WINDOW = 300  # seconds, SQS's


class ManualClock:
    """Epoch seconds that move only when told to, for the deduplication window."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def client(queue_server):
    return local_client(queue_server.endpoint_url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def clocked(queue_database_url: str, clock: ManualClock) -> Iterator:
    """A client of a server on the same database whose clock the test moves."""
    server = QueueServer(queue_database_url, clock=clock).start()
    yield local_client(server.endpoint_url)
    server.stop()


def fifo_queue(client, prefix: str = "f", **attributes: object) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}.fifo"
    attributes = {"FifoQueue": "true", **attributes}
    return client.create_queue(
        QueueName=name, Attributes={k: str(v) for k, v in attributes.items()}
    )["QueueUrl"]


def standard_queue(client, prefix: str = "s", **attributes: object) -> str:
    return client.create_queue(
        QueueName=f"{prefix}-{uuid.uuid4().hex[:10]}",
        Attributes={k: str(v) for k, v in attributes.items()},
    )["QueueUrl"]


def local_client_of(client):
    """Another client of the same server: one per thread."""
    return local_client(client.meta.endpoint_url)


def arn_of(client, url: str) -> str:
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def receive(client, url: str, count: int = 10, **params) -> list[dict]:
    params.setdefault("AttributeNames", ["All"])
    return client.receive_message(QueueUrl=url, MaxNumberOfMessages=count, **params).get(
        "Messages", []
    )


def send(client, url: str, body: str, group: str, dedup: str | None = None) -> dict:
    params = {"QueueUrl": url, "MessageBody": body, "MessageGroupId": group}
    params["MessageDeduplicationId"] = dedup or body
    return client.send_message(**params)


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


# ------------------------------------------------------------------ queues
def test_a_fifo_queue_reports_its_fifo_attributes_with_sqs_defaults(client):
    url = fifo_queue(client)

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    assert url.endswith(".fifo")
    assert {
        k: attributes[k]
        for k in ("FifoQueue", "ContentBasedDeduplication", "DeduplicationScope")
        + ("FifoThroughputLimit",)
    } == {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "queue",
        "FifoThroughputLimit": "perQueue",
    }
    # A standard queue has none of them.
    standard = client.get_queue_attributes(QueueUrl=standard_queue(client), AttributeNames=["All"])[
        "Attributes"
    ]
    assert "FifoQueue" not in standard and "ContentBasedDeduplication" not in standard


def test_high_throughput_fifo_settings_are_kept_and_can_change(client):
    url = fifo_queue(
        client, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId"
    )

    client.set_queue_attributes(QueueUrl=url, Attributes={"ContentBasedDeduplication": "true"})

    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["DeduplicationScope"] == "messageGroup"
    assert attributes["FifoThroughputLimit"] == "perMessageGroupId"
    assert attributes["ContentBasedDeduplication"] == "true"


def test_fifo_names_and_attributes_are_checked_as_sqs_does(client):
    name = f"n-{uuid.uuid4().hex[:10]}"
    # A FIFO queue's name ends in .fifo; only a FIFO queue's name may.
    assert (
        error_code(lambda: client.create_queue(QueueName=name, Attributes={"FifoQueue": "true"}))
        == "InvalidParameterValue"
    )
    assert error_code(lambda: client.create_queue(QueueName=name + ".fifo")) == (
        "InvalidParameterValue"
    )
    assert (
        error_code(
            lambda: client.create_queue(
                QueueName="x" * 76 + ".fifo", Attributes={"FifoQueue": "true"}
            )
        )
        == "InvalidParameterValue"
    )
    # FIFO attributes on a standard queue are unknown there.
    for attribute, value in (
        ("ContentBasedDeduplication", "true"),
        ("DeduplicationScope", "queue"),
        ("FifoThroughputLimit", "perQueue"),
    ):
        assert (
            error_code(lambda a=attribute, v=value: standard_queue(client, **{a: v}))
            == "InvalidAttributeName"
        )
    # Values SQS does not know, and perMessageGroupId without messageGroup deduplication.
    assert error_code(lambda: fifo_queue(client, DeduplicationScope="group")) == (
        "InvalidAttributeValue"
    )
    assert error_code(lambda: fifo_queue(client, FifoThroughputLimit="perGroup")) == (
        "InvalidAttributeValue"
    )
    assert error_code(lambda: fifo_queue(client, ContentBasedDeduplication="maybe")) == (
        "InvalidAttributeValue"
    )
    assert (
        error_code(lambda: fifo_queue(client, FifoThroughputLimit="perMessageGroupId"))
        == "InvalidAttributeValue"
    )
    # A queue cannot change type.
    url = fifo_queue(client)
    assert (
        error_code(
            lambda: client.set_queue_attributes(QueueUrl=url, Attributes={"FifoQueue": "false"})
        )
        == "InvalidAttributeName"
    )


def test_a_dead_letter_queue_has_the_type_of_its_source(client):
    fifo_dlq = arn_of(client, fifo_queue(client, "dlq"))
    standard_dlq = arn_of(client, standard_queue(client, "dlq"))

    def policy(arn: str) -> str:
        return json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2})

    assert error_code(lambda: fifo_queue(client, RedrivePolicy=policy(standard_dlq))) == (
        "InvalidParameterValue"
    )
    assert error_code(lambda: standard_queue(client, RedrivePolicy=policy(fifo_dlq))) == (
        "InvalidParameterValue"
    )
    fifo_queue(client, RedrivePolicy=policy(fifo_dlq))


# ------------------------------------------------------------------ sending
def test_a_send_to_a_fifo_queue_needs_a_group_and_a_deduplication_id(client):
    url = fifo_queue(client)

    assert (
        error_code(
            lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="1")
        )
        == "MissingParameter"
    )
    assert (
        error_code(lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g"))
        == "InvalidParameterValue"
    )
    # A FIFO queue has no per-message delay (only the queue's own).
    assert (
        error_code(
            lambda: client.send_message(
                QueueUrl=url,
                MessageBody="x",
                MessageGroupId="g",
                MessageDeduplicationId="1",
                DelaySeconds=5,
            )
        )
        == "InvalidParameterValue"
    )
    # Ids: 1 to 128 alphanumeric or punctuation characters.
    for bad in ("with space", "é", "x" * 129):
        assert error_code(lambda b=bad: send(client, url, "x", group=b)) == (
            "InvalidParameterValue"
        )
        assert error_code(lambda b=bad: send(client, url, "x", group="g", dedup=b)) == (
            "InvalidParameterValue"
        )
    sent = send(client, url, "x", group="g!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + "x" * 95)
    assert sent["SequenceNumber"].isdigit()


def test_a_bad_fifo_entry_fails_alone_in_a_batch(client):
    url = fifo_queue(client)

    response = client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": "good",
                "MessageBody": "a",
                "MessageGroupId": "g",
                "MessageDeduplicationId": "a",
            },
            {"Id": "nogroup", "MessageBody": "b", "MessageDeduplicationId": "b"},
            {"Id": "nodedup", "MessageBody": "c", "MessageGroupId": "g"},
        ],
    )

    assert [e["Id"] for e in response["Successful"]] == ["good"]
    assert response["Successful"][0]["SequenceNumber"].isdigit()
    assert {e["Id"]: e["Code"] for e in response["Failed"]} == {
        "nogroup": "MissingParameter",
        "nodedup": "InvalidParameterValue",
    }


# ------------------------------------------------------------------ order and groups
def test_a_group_comes_in_order_and_one_batch_at_a_time(client):
    url = fifo_queue(client, VisibilityTimeout=60)
    client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": body,
                "MessageBody": body,
                "MessageGroupId": body[0],
                "MessageDeduplicationId": body,
            }
            for body in ("a1", "b1", "a2", "b2", "a3")
        ],
    )

    # SQS returns as many messages of one group as it can, oldest group first.
    first = receive(client, url, 2)
    assert [m["Body"] for m in first] == ["a1", "a2"]
    assert [m["Attributes"]["MessageGroupId"] for m in first] == ["a", "a"]
    # a3 is visible, but its group has messages in flight: the next batch is b's.
    second = receive(client, url)
    assert [m["Body"] for m in second] == ["b1", "b2"]
    assert receive(client, url) == []

    for message in first:
        client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    [third] = receive(client, url)
    assert third["Body"] == "a3"
    numbers = [int(m["Attributes"]["SequenceNumber"]) for m in (*first, third)]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_a_long_poll_returns_as_soon_as_its_group_is_free(client):
    url = fifo_queue(client, VisibilityTimeout=60)
    for body in ("1", "2"):
        send(client, url, body, group="g")
    [head] = receive(client, url, 1)
    # "2" is visible but held behind "1", in flight for a minute: deleting "1" frees it.
    deleter = threading.Timer(
        0.3, lambda: client.delete_message(QueueUrl=url, ReceiptHandle=head["ReceiptHandle"])
    )
    deleter.start()
    started = time.monotonic()

    messages = receive(local_client_of(client), url, WaitTimeSeconds=20)

    deleter.join()
    assert [m["Body"] for m in messages] == ["2"]
    # Long before the 20 s wait ends, however slow a busy machine makes the delete.
    assert time.monotonic() - started < 15


def test_a_message_back_from_its_timeout_keeps_its_place_in_its_group(client):
    url = fifo_queue(client, VisibilityTimeout=60)
    for body in ("1", "2", "3"):
        send(client, url, body, group="g")
    one, two = receive(client, url, 2)

    # One of the two back, the other still in flight: the group stays blocked.
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=one["ReceiptHandle"], VisibilityTimeout=0
    )
    assert receive(client, url) == []
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=two["ReceiptHandle"], VisibilityTimeout=0
    )

    again = receive(client, url)
    assert [m["Body"] for m in again] == ["1", "2", "3"]
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in again] == ["2", "2", "1"]


def test_a_fifo_send_returns_and_delivers_its_sequence_number_and_ids(client):
    url = fifo_queue(client)

    sent = send(client, url, "body", group="g", dedup="d-1")
    [message] = receive(
        client,
        url,
        AttributeNames=[],
        MessageSystemAttributeNames=["MessageGroupId", "MessageDeduplicationId", "SequenceNumber"],
    )

    assert message["MessageId"] == sent["MessageId"]
    assert message["Attributes"] == {
        "MessageGroupId": "g",
        "MessageDeduplicationId": "d-1",
        "SequenceNumber": sent["SequenceNumber"],
    }
    # SQS's sequence numbers are 20-digit strings, growing within a group.
    later = send(client, url, "later", group="g", dedup="d-2")
    assert len(sent["SequenceNumber"]) == 20
    assert int(later["SequenceNumber"]) > int(sent["SequenceNumber"])


# ------------------------------------------------------------------ deduplication
def test_a_duplicate_within_five_minutes_is_accepted_and_not_delivered(clocked, clock):
    url = fifo_queue(clocked)

    first = send(clocked, url, "order 1", group="g", dedup="order-1")
    again = send(clocked, url, "order 1, resent", group="g", dedup="order-1")

    # Accepted as the same message: a retried send learns it landed.
    assert (again["MessageId"], again["SequenceNumber"]) == (
        first["MessageId"],
        first["SequenceNumber"],
    )
    [message] = receive(clocked, url)
    assert message["Body"] == "order 1"
    clocked.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    # SQS keeps tracking the id after the message is deleted, for the whole interval.
    clock.advance(DEDUPLICATION_WINDOW - 1)
    send(clocked, url, "order 1", group="g", dedup="order-1")
    assert receive(clocked, url) == []

    clock.advance(2)
    later = send(clocked, url, "order 1", group="g", dedup="order-1")
    assert later["MessageId"] != first["MessageId"]
    assert [m["Body"] for m in receive(clocked, url)] == ["order 1"]


def test_content_based_deduplication_is_the_bodys_sha256(client):
    url = fifo_queue(client, ContentBasedDeduplication="true")
    body = '{"order": 7}'

    first = client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")
    # Attributes are not part of the hash.
    again = client.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageGroupId="g",
        MessageAttributes={"try": {"DataType": "Number", "StringValue": "2"}},
    )
    # An explicit id overrides the hash.
    client.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId="g", MessageDeduplicationId="own"
    )

    assert again["MessageId"] == first["MessageId"]
    delivered = receive(client, url)
    assert [m["Attributes"]["MessageDeduplicationId"] for m in delivered] == [
        hashlib.sha256(body.encode()).hexdigest(),
        "own",
    ]


def test_deduplication_scope_message_group_deduplicates_within_a_group(client):
    per_group = fifo_queue(
        client, DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId"
    )
    per_queue = fifo_queue(client)

    for url in (per_group, per_queue):
        for group in ("a", "b", "a"):
            send(client, url, f"to {group}", group=group, dedup="same")

    assert sorted(m["Body"] for m in receive(client, per_group)) == ["to a", "to b"]
    assert [m["Body"] for m in receive(client, per_queue)] == ["to a"]


# ------------------------------------------------------------------ dead letters
def test_a_spent_fifo_message_moves_to_the_fifo_dead_letter_queue_and_unblocks_its_group(client):
    dlq = fifo_queue(client, "dlq")
    url = fifo_queue(
        client,
        RedrivePolicy=json.dumps(
            {"deadLetterTargetArn": arn_of(client, dlq), "maxReceiveCount": 2}
        ),
    )
    poison = send(client, url, "poison", group="g")
    send(client, url, "next", group="g")

    for count in ("1", "2"):
        [message] = receive(client, url, 1, VisibilityTimeout=0)
        assert (message["Body"], message["Attributes"]["ApproximateReceiveCount"]) == (
            "poison",
            count,
        )
    # The third receive would exceed maxReceiveCount: poison moves, and its group goes on.
    assert [m["Body"] for m in receive(client, url)] == ["next"]

    [dead] = receive(client, dlq)
    assert dead["MessageId"] == poison["MessageId"]
    assert dead["Attributes"]["MessageGroupId"] == "g"
    assert dead["Attributes"]["SequenceNumber"] == poison["SequenceNumber"]
    # In a FIFO dead-letter queue the deduplication id becomes the message's id, so two
    # messages that shared one can both be kept there.
    assert dead["Attributes"]["MessageDeduplicationId"] == poison["MessageId"]
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == arn_of(client, url)


def test_a_redriven_fifo_message_joins_the_end_of_its_group(client):
    dlq = fifo_queue(client, "dlq")
    dlq_arn = arn_of(client, dlq)
    url = fifo_queue(
        client, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    )
    send(client, url, "old", group="g")
    receive(client, url, VisibilityTimeout=0)
    assert receive(client, url) == []  # "old" is dead-lettered by this receive
    send(client, url, "new", group="g")

    # A FIFO dead-letter queue redrives only to a FIFO queue.
    assert (
        error_code(
            lambda: client.start_message_move_task(
                SourceArn=dlq_arn, DestinationArn=arn_of(client, standard_queue(client))
            )
        )
        == "InvalidParameterValue"
    )
    client.start_message_move_task(SourceArn=dlq_arn)

    # SQS takes redriven messages in as it receives them: after what its group has.
    assert [m["Body"] for m in receive(client, url)] == ["new", "old"]


# ------------------------------------------------------------------ fair queues
def test_a_standard_queue_keeps_and_delivers_the_message_group_id(client):
    url = standard_queue(client)

    client.send_message(QueueUrl=url, MessageBody="one", MessageGroupId="tenant-1")
    client.send_message_batch(
        QueueUrl=url,
        Entries=[{"Id": "2", "MessageBody": "two", "MessageGroupId": "tenant-2"}],
    )
    client.send_message(QueueUrl=url, MessageBody="three")

    by_name = receive(
        client, url, AttributeNames=[], MessageSystemAttributeNames=["MessageGroupId"]
    )
    assert sorted((m["Body"], m.get("Attributes")) for m in by_name) == [
        ("one", {"MessageGroupId": "tenant-1"}),
        ("three", None),
        ("two", {"MessageGroupId": "tenant-2"}),
    ]
    for message in by_name:
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    everything = receive(client, url, AttributeNames=["All"])
    one = next(m for m in everything if m["Body"] == "one")
    assert one["Attributes"]["MessageGroupId"] == "tenant-1"
    # A standard queue has no order, so no sequence numbers, and no deduplication.
    assert "SequenceNumber" not in one["Attributes"]
    assert (
        error_code(
            lambda: client.send_message(QueueUrl=url, MessageBody="x", MessageDeduplicationId="d")
        )
        == "InvalidParameterValue"
    )


# ------------------------------------------------------------------ durability
def test_fifo_order_and_deduplication_survive_kill_9(queue_database_url):
    process, endpoint = start_subprocess(queue_database_url)
    try:
        client = local_client(endpoint)
        url = fifo_queue(client, "durable")
        sent = [send(client, url, f"m{i}", group="g") for i in range(5)]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()

    process, endpoint = start_subprocess(queue_database_url)
    try:
        client = local_client(endpoint)
        resent = send(client, url, "m0", group="g")
        delivered = receive(client, url)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert resent["MessageId"] == sent[0]["MessageId"]
    assert [m["Body"] for m in delivered] == ["m0", "m1", "m2", "m3", "m4"]


# ------------------------------------------------------------------ schema
OLD_SCHEMA = """
CREATE SCHEMA local_sqs;
CREATE TABLE local_sqs.queues (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL UNIQUE,
    attributes jsonb NOT NULL, created_at bigint NOT NULL, modified_at bigint NOT NULL);
CREATE TABLE local_sqs.messages (
    seq bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, queue_id integer NOT NULL,
    message_id uuid NOT NULL, body text NOT NULL, body_md5 text NOT NULL, attributes jsonb,
    sent_at bigint NOT NULL, visible_at bigint NOT NULL, receive_count integer NOT NULL DEFAULT 0,
    first_received_at bigint, receipt text, source_arn text);
INSERT INTO local_sqs.queues (name, attributes, created_at, modified_at)
    VALUES ('kept', '{}', 0, 0);
INSERT INTO local_sqs.messages (queue_id, message_id, body, body_md5, sent_at, visible_at)
    SELECT id, gen_random_uuid(), 'from before', md5('from before'), 0, 0 FROM local_sqs.queues;
"""


def test_a_database_of_the_previous_version_is_migrated_in_place(postgres_server_url):
    # Given local_queue's tables as the version before FIFO queues left them
    with scratch_database(postgres_server_url, "old_queues") as url:
        conn = psycopg2.connect(url)
        with conn, conn.cursor() as cur:
            cur.execute(OLD_SCHEMA)
        conn.close()

        with QueueServer(url) as server:
            client = local_client(server.endpoint_url)
            kept = client.get_queue_url(QueueName="kept")["QueueUrl"]
            [old] = receive(client, kept)
            fifo = fifo_queue(client)
            send(client, fifo, "new", group="g")
            [new] = receive(client, fifo)

    assert old["Body"] == "from before"
    assert new["Attributes"]["MessageGroupId"] == "g"
