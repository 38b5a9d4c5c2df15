"""Moves the events dead-letter queue's messages back to the queue they came from.

`make redrive ENV=dev` finds the DLQ in the stack's outputs; `DLQ_URL=...` names it
directly. On AWS this is SQS's own redrive (StartMessageMoveTask), followed until it
ends. moto and other local endpoints (AWS_ENDPOINT_URL) may lack that API; there,
and only there, the messages are moved by receive, send and delete instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import ClientError

FINISHED = {"COMPLETED", "CANCELLED", "FAILED"}


@dataclass(frozen=True)
class Outcome:
    moved: int
    status: str  # COMPLETED, CANCELLED or FAILED, as SQS reports a move task
    method: str  # "move-task" or "receive-send-delete"
    reason: str = ""


def stack_output(cloudformation, stack_name: str, key: str) -> str:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == key:
            return output["OutputValue"]
    raise SystemExit(f"stack {stack_name} has no output {key}")


def is_aws_endpoint(sqs) -> bool:
    host = urlsplit(sqs.meta.endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def redrive(
    sqs, dlq_url: str, *, poll_seconds: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    attributes = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    if int(attributes["ApproximateNumberOfMessages"]) == 0:
        return Outcome(moved=0, status="COMPLETED", method="none")
    dlq_arn = attributes["QueueArn"]
    try:
        # No DestinationArn: each message returns to the queue it was dead-lettered from.
        sqs.start_message_move_task(SourceArn=dlq_arn)
    except (ClientError, NotImplementedError):
        if is_aws_endpoint(sqs):
            raise
        return _move_by_hand(sqs, dlq_url)
    while True:
        task = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"][0]
        if task["Status"] in FINISHED:
            return Outcome(
                moved=task.get("ApproximateNumberOfMessagesMoved", 0),
                status=task["Status"],
                method="move-task",
                reason=task.get("FailureReason", ""),
            )
        sleep(poll_seconds)


def _move_by_hand(sqs, dlq_url: str) -> Outcome:
    """StartMessageMoveTask by hand, for endpoints without it: at-least-once, 10 at a time."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) != 1:
        raise SystemExit(f"expected one queue dead-lettering into {dlq_url}, found {len(sources)}")
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        ).get("Messages", [])
        if not messages:
            return Outcome(moved=moved, status="COMPLETED", method="receive-send-delete")
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": m.get("MessageAttributes", {}),
            }
            for i, m in enumerate(messages)
        ]
        for entry in entries:
            if not entry["MessageAttributes"]:
                del entry["MessageAttributes"]
        sent = sqs.send_message_batch(QueueUrl=sources[0], Entries=entries)
        if sent.get("Failed"):
            # Unsent messages stay in the DLQ (they reappear after the visibility timeout).
            return Outcome(
                moved=moved + len(sent.get("Successful", [])),
                status="FAILED",
                method="receive-send-delete",
                reason=sent["Failed"][0].get("Message", "send failed"),
            )
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        moved += len(messages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the stack whose EventsDeadLetterQueueUrl output to redrive")
    where.add_argument("--dlq-url", help="the dead-letter queue's URL")
    args = parser.parse_args(argv)

    dlq_url = args.dlq_url or stack_output(
        boto3.client("cloudformation"), args.stack, "EventsDeadLetterQueueUrl"
    )
    outcome = redrive(boto3.client("sqs"), dlq_url)
    if outcome.method == "none":
        print(f"{dlq_url} is empty: nothing to redrive")
        return 0
    how = (
        "StartMessageMoveTask"
        if outcome.method == "move-task"
        else ("receive/send/delete (this endpoint has no StartMessageMoveTask)")
    )
    print(f"moved {outcome.moved} message(s) from {dlq_url} by {how}: {outcome.status}")
    if outcome.status != "COMPLETED":
        print(f"redrive did not complete: {outcome.reason or outcome.status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
