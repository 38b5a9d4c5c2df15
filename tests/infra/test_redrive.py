"""`make redrive`: the dead-letter queue's messages go back to the events queue, counted.

Locally the tool runs against local_queue (make dev's queues), which serves
StartMessageMoveTask; the polling of a move task that AWS runs for a while is checked
with botocore's Stubber, replaying the documented responses.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from local_queue import QueueServer
from tests.infra.stack import REPO_ROOT
from tests.support import scratch_database
from toolkit.redrive import Outcome
from tools import redrive

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:sluice-dev-EventsDeadLetterQueue-AbC"
DLQ_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/sluice-dev-EventsDeadLetterQueue-AbC"


@pytest.fixture(scope="module")
def queues_url(postgres_server_url) -> Iterator[str]:
    """local_queue, as make dev runs it, on a database of its own."""
    with scratch_database(postgres_server_url, "redrive") as database_url:
        server = QueueServer(database_url).start()
        try:
            yield server.endpoint_url
        finally:
            server.stop()


@pytest.fixture
def local_sqs(queues_url, monkeypatch):
    """An SQS client configured the way the tool's is: by AWS_ENDPOINT_URL alone."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", queues_url)
    return boto3.client("sqs")


@pytest.fixture
def dead_letters(local_sqs) -> dict[str, str]:
    """An events queue and its DLQ holding three dead-lettered messages."""
    suffix = os.urandom(4).hex()
    dlq = local_sqs.create_queue(QueueName=f"events-dlq-{suffix}")["QueueUrl"]
    dlq_arn = local_sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events = local_sqs.create_queue(
        QueueName=f"events-{suffix}",
        Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
        },
    )["QueueUrl"]
    for n in range(3):
        local_sqs.send_message(QueueUrl=events, MessageBody=json.dumps({"version": 1, "n": n}))
    # Each received once and not deleted: the next receive dead-letters it, as SQS does.
    received = local_sqs.receive_message(
        QueueUrl=events, MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    assert len(received) == 3
    again = local_sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10)
    assert again.get("Messages") is None
    return {"events": events, "dlq": dlq}


def bodies(sqs, queue_url: str) -> list[str]:
    found = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        found += [m["Body"] for m in messages]
        for m in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    return found


def test_locally_messages_return_to_their_queue(local_sqs, dead_letters, capsys):
    assert redrive.main(["--dlq-url", dead_letters["dlq"]]) == 0

    assert "moved 3 message(s)" in capsys.readouterr().out
    assert sorted(json.loads(b)["n"] for b in bodies(local_sqs, dead_letters["events"])) == [
        0,
        1,
        2,
    ]
    assert bodies(local_sqs, dead_letters["dlq"]) == []


def test_an_empty_dlq_is_reported_as_such(local_sqs, dead_letters, capsys):
    bodies(local_sqs, dead_letters["dlq"])

    assert redrive.main(["--dlq-url", dead_letters["dlq"]]) == 0
    assert "nothing to redrive" in capsys.readouterr().out


def test_make_redrive_runs_the_tool(queues_url, local_sqs, dead_letters):
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": queues_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's placeholder
    }
    result = subprocess.run(  # noqa: S603
        ["make", "-s", "redrive", f"DLQ_URL={dead_letters['dlq']}"],  # noqa: S607
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "moved 3 message(s)" in result.stdout
    assert len(bodies(local_sqs, dead_letters["events"])) == 3


def stubbed_aws_sqs() -> tuple[object, Stubber]:
    sqs = boto3.client(
        "sqs", region_name="us-east-1", endpoint_url="https://sqs.us-east-1.amazonaws.com"
    )
    stubber = Stubber(sqs)
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": DLQ_ARN, "ApproximateNumberOfMessages": "42"}},
        {"QueueUrl": DLQ_URL, "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages"]},
    )
    return sqs, stubber


def test_on_aws_sqs_moves_the_messages_itself_and_the_count_is_reported():
    sqs, stubber = stubbed_aws_sqs()
    stubber.add_response(
        "start_message_move_task", {"TaskHandle": "handle"}, {"SourceArn": DLQ_ARN}
    )
    running = {"Status": "RUNNING", "SourceArn": DLQ_ARN, "ApproximateNumberOfMessagesMoved": 10}
    done = {"Status": "COMPLETED", "SourceArn": DLQ_ARN, "ApproximateNumberOfMessagesMoved": 42}
    for task in (running, done):
        stubber.add_response(
            "list_message_move_tasks", {"Results": [task]}, {"SourceArn": DLQ_ARN, "MaxResults": 1}
        )
    waits = []

    with stubber:
        outcome = redrive.redrive(sqs, DLQ_URL, poll_seconds=5, sleep=waits.append)

    assert outcome == Outcome(moved=42, status="COMPLETED", method="move-task")
    assert waits == [5]
    stubber.assert_no_pending_responses()


def test_on_aws_a_refused_move_task_is_an_error_not_a_fallback():
    sqs, stubber = stubbed_aws_sqs()
    stubber.add_client_error("start_message_move_task", "AccessDenied", http_status_code=403)

    with stubber, pytest.raises(ClientError):
        redrive.redrive(sqs, DLQ_URL)


def test_a_failed_move_task_fails_the_command(monkeypatch, capsys):
    failed = Outcome(moved=3, status="FAILED", method="move-task", reason="AccessDenied")
    monkeypatch.setattr(redrive, "redrive", lambda sqs, url: failed)
    monkeypatch.setattr(redrive.boto3, "client", lambda name: None)

    assert redrive.main(["--dlq-url", DLQ_URL]) == 1
    assert "AccessDenied" in capsys.readouterr().err
