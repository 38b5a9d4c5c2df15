"""SQS's own redrive (StartMessageMoveTask), followed until it ends: `make redrive` and the console.

Each message goes back to the queue it was dead-lettered from; make dev's queues
(local_queue) serve the same calls as SQS.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

FINISHED = {"COMPLETED", "CANCELLED", "FAILED"}


@dataclass(frozen=True)
class Outcome:
    moved: int
    status: str  # COMPLETED, CANCELLED or FAILED, as SQS reports a move task
    method: str  # "move-task", or "none" for an empty queue
    reason: str = ""


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
