"""What local_queue does beyond moto: SQS checks moto skips, durability, concurrency, redrive."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.local_queue.conftest import local_client
from tests.support import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(queue_server):
    return local_client(queue_server.endpoint_url)


def new_queue(client, prefix: str = "lq", **attributes: object) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    return client.create_queue(
        QueueName=name, Attributes={k: str(v) for k, v in attributes.items()}
    )["QueueUrl"]


def test_characters_sqs_refuses_are_refused(client):
    # moto stores these; SQS refuses them (only XML's characters are allowed).
    url = new_queue(client)

    for body in (
        "nul \x00 inside",
        "bell \x07",
        "lone surrogate \ud800",
        "noncharacter \ufffe",
        "noncharacter \uffff",
    ):
        with pytest.raises(client.exceptions.InvalidMessageContents):
            client.send_message(QueueUrl=url, MessageBody=body)
    client.send_message(
        QueueUrl=url,
        MessageBody="tab\t newline\n emoji \U0001f600 \ufffd \ufdd0 \U0001fffe \x7f \x85",
    )


def test_a_bad_entry_fails_alone_in_a_batch(client):
    url = new_queue(client, MaximumMessageSize=1024)

    response = client.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "good", "MessageBody": "fine"},
            {"Id": "nul", "MessageBody": "a\x00b"},
            {"Id": "big", "MessageBody": "x" * 1025},
        ],
    )

    assert [e["Id"] for e in response["Successful"]] == ["good"]
    codes = {e["Id"]: (e["Code"], e["SenderFault"]) for e in response["Failed"]}
    assert codes == {
        "nul": ("InvalidMessageContents", True),
        "big": ("InvalidParameterValue", True),
    }


def test_a_stale_receipt_handle_cannot_change_visibility(client):
    url = new_queue(client)
    client.send_message(QueueUrl=url, MessageBody="x")
    [first] = client.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
    [second] = client.receive_message(QueueUrl=url, VisibilityTimeout=30)["Messages"]

    with pytest.raises(ClientError) as caught:
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
        )

    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    client.change_message_visibility(
        QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=0
    )


def test_dead_letter_source_arn_and_move_task_back(client):
    dlq = new_queue(client, "dlq")
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = new_queue(
        client, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    )
    source_arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    client.send_message(QueueUrl=url, MessageBody="poison")
    client.receive_message(QueueUrl=url, VisibilityTimeout=0)
    assert "Messages" not in client.receive_message(QueueUrl=url)
    [dead] = client.receive_message(
        QueueUrl=dlq, VisibilityTimeout=0, MessageSystemAttributeNames=["DeadLetterQueueSourceArn"]
    )["Messages"]
    assert dead["Attributes"] == {"DeadLetterQueueSourceArn": source_arn}

    from toolkit.redrive import redrive

    outcome = redrive(client, dlq, poll_seconds=0)

    assert (outcome.moved, outcome.status, outcome.method) == (1, "COMPLETED", "move-task")
    [back] = client.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ]
    assert back["Body"] == "poison"
    assert back["Attributes"]["ApproximateReceiveCount"] == "1"  # a fresh start in its queue


def test_concurrent_receivers_never_share_an_invisible_message(client):
    url = new_queue(client, VisibilityTimeout=60)
    total = 300
    for start in range(0, total, 10):
        client.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(start, start + 10)],
        )
    seen: list[str] = []
    lock = threading.Lock()

    def drain(_: int) -> None:
        own = local_client(client.meta.endpoint_url)
        while True:
            messages = own.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return
            with lock:
                seen.extend(m["MessageId"] for m in messages)

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(drain, range(6)))

    assert len(seen) == total
    assert len(set(seen)) == total


def test_concurrent_senders_all_land(client):
    url = new_queue(client)

    def send(worker: int) -> int:
        own = local_client(client.meta.endpoint_url)
        for batch in range(10):
            response = own.send_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "MessageBody": f"{worker}-{batch}-{i}"} for i in range(5)],
            )
            assert not response.get("Failed")
        return 50

    with ThreadPoolExecutor(8) as pool:
        sent = sum(pool.map(send, range(8)))

    visible = client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert int(visible) == sent == 400


def start_subprocess(database_url: str, port: int = 0) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        [sys.executable, "-m", "local_queue", "--database-url", database_url, "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    endpoint = process.stdout.readline().strip()
    assert endpoint.startswith("http://"), endpoint
    return process, endpoint


def test_acknowledged_sends_survive_kill_9(queue_database_url):
    process, endpoint = start_subprocess(queue_database_url)
    try:
        client = local_client(endpoint)
        url = new_queue(client, "durable")
        acknowledged: set[str] = set()
        lock = threading.Lock()

        def send(worker: int) -> None:
            own = local_client(endpoint)
            for batch in range(10):
                response = own.send_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "MessageBody": f"{worker}-{batch}-{i}"} for i in range(10)
                    ],
                )
                with lock:
                    acknowledged.update(e["MessageId"] for e in response["Successful"])

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(4)))
        # Some in flight when the process dies: received, not deleted.
        in_flight = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(acknowledged) == 400
    assert len(in_flight["Messages"]) == 10

    process, endpoint = start_subprocess(queue_database_url)
    try:
        client = local_client(endpoint)
        found: set[str] = set()

        def all_found() -> bool:
            # The 10 in flight come back once their 1 s visibility timeout has passed.
            messages = client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
            ).get("Messages", [])
            found.update(m["MessageId"] for m in messages)
            return len(found) >= len(acknowledged)

        wait_for(all_found, timeout=60, interval=0)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    assert found == acknowledged


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain", "Origin": "https://evil.example"},
        {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-amz-json-1.0", "Host": "evil.example"},  # DNS rebinding
    ],
    ids=["origin", "sec-fetch-site", "text-plain", "rebinding"],
)
def test_a_request_a_web_page_could_forge_is_refused(client, queue_server, headers):
    from tests.local_runtime.conftest import http

    url = new_queue(client, "forged")
    endpoint = queue_server.endpoint_url
    if "Host" in headers:
        headers = {**headers, "Host": "evil.example:" + endpoint.rsplit(":", 1)[1]}
    send = json.dumps({"QueueUrl": url, "MessageBody": "forged"}).encode()

    status, answer_headers, _ = http(
        "POST", endpoint + "/", send, {"X-Amz-Target": "AmazonSQS.SendMessage", **headers}
    )
    preflight, preflight_headers, _ = http(
        "OPTIONS", endpoint + "/", None, {"Origin": "https://evil.example"}
    )

    assert (status, preflight) == (403, 403)
    for answered in (answer_headers, preflight_headers):
        assert not any(name.startswith("access-control-") for name in answered)
    assert "Messages" not in client.receive_message(QueueUrl=url)
    # The same call as botocore makes it (its JSON type, no Origin) is served.
    status, _, _ = http(
        "POST",
        endpoint + "/",
        send,
        {"X-Amz-Target": "AmazonSQS.SendMessage", "Content-Type": "application/x-amz-json-1.0"},
    )
    assert status == 200
    assert client.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "forged"
