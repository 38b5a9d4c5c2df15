"""The FIFO fidelity template's handlers: each notes what it got in the output folder."""

import json
import os
from pathlib import Path

import boto3

SQS = boto3.client("sqs")  # at cold start: the runtime prewarms the function


def _note(entry: dict) -> None:
    name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
    with (Path(os.environ["OUTPUT_DIR"]) / f"{name}.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")


def _seen(record: dict) -> dict:
    attributes = record["attributes"]
    return {
        "body": record["body"],
        "group": attributes["MessageGroupId"],
        "deduplication": attributes.get("MessageDeduplicationId"),
        "sequence": attributes.get("SequenceNumber"),
        "receives": int(attributes["ApproximateReceiveCount"]),
    }


def orders(event, context):
    """Fails an order marked `fail-once` on its first delivery, and reports only that one."""
    failures = []
    for record in event["Records"]:
        seen = _seen(record)
        _note(seen)
        if "fail-once" in seen["body"] and seen["receives"] == 1:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


def payments(event, context):
    for record in event["Records"]:
        _note(_seen(record))
        if record["body"] == "poison":
            raise ValueError("this payment always fails")


def submit(event, context):
    tenant = event["pathParameters"]["tenant"]
    SQS.send_message(
        QueueUrl=os.environ["JOBS_QUEUE_URL"], MessageBody=event["body"], MessageGroupId=tenant
    )
    return {"statusCode": 202, "body": json.dumps({"tenant": tenant})}


def tenant_jobs(event, context):
    """A tenant-isolation consumer: a job without its tenant's group id is an error."""
    for record in event["Records"]:
        _note({"tenant": record["attributes"]["MessageGroupId"], "body": record["body"]})
