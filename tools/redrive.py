"""Moves the events dead-letter queue's messages back to the queue they came from.

`make redrive ENV=dev` finds the DLQ in the stack's outputs; `DLQ_URL=...` names it
directly. This is SQS's own redrive (StartMessageMoveTask), followed until it ends;
locally, make dev's queues (local_queue, at AWS_ENDPOINT_URL) serve the same call.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import boto3

FINISHED = {"COMPLETED", "CANCELLED", "FAILED"}


@dataclass(frozen=True)
class Outcome:
    moved: int
    status: str  # COMPLETED, CANCELLED or FAILED, as SQS reports a move task
    method: str  # "move-task", or "none" for an empty queue
    reason: str = ""


def stack_output(cloudformation, stack_name: str, key: str) -> str:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == key:
            return output["OutputValue"]
    raise SystemExit(f"stack {stack_name} has no output {key}")


def redrive(
    sqs, dlq_url: str, *, poll_seconds: float = 5.0, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    attributes = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["QueueArn", "ApproximateNumberOfMessages"]
    )["Attributes"]
    if int(attributes["ApproximateNumberOfMessages"]) == 0:
        return Outcome(moved=0, status="COMPLETED", method="none")
    dlq_arn = attributes["QueueArn"]
    # No DestinationArn: each message returns to the queue it was dead-lettered from.
    sqs.start_message_move_task(SourceArn=dlq_arn)
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
    print(f"moved {outcome.moved} message(s) from {dlq_url}: {outcome.status}")
    if outcome.status != "COMPLETED":
        print(f"redrive did not complete: {outcome.reason or outcome.status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
