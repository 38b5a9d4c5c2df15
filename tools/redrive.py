"""Moves the events dead-letter queue's messages back to the queue they came from.

`make redrive ENV=dev` finds the DLQ in the stack's outputs; `DLQ_URL=...` names it
directly; plain `make redrive` takes the running `make dev`'s (EVENTS_DLQ_URL, which
`python -m local_runtime env` sets). This is SQS's own redrive (StartMessageMoveTask),
followed until it ends; make dev's queues (local_queue) serve the same call.
"""

from __future__ import annotations

import argparse
import os
import sys

import boto3

from toolkit.redrive import redrive
from tools import cli


def stack_output(cloudformation, stack_name: str, key: str) -> str:
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    for output in stack.get("Outputs", []):
        if output["OutputKey"] == key:
            return output["OutputValue"]
    raise cli.AwsResourceUnknown(f"stack {stack_name} has no output {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make redrive", description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", help="the stack whose EventsDeadLetterQueueUrl output to redrive")
    where.add_argument(
        "--dlq-url",
        default=os.environ.get("EVENTS_DLQ_URL"),
        help="the dead-letter queue's URL (default: EVENTS_DLQ_URL, make dev's)",
    )
    args = parser.parse_args(argv)

    def command() -> int:
        if args.stack:
            with cli.aws_errors(f"the stack {args.stack}"):
                dlq_url = stack_output(
                    boto3.client("cloudformation"), args.stack, "EventsDeadLetterQueueUrl"
                )
        elif args.dlq_url:
            dlq_url = args.dlq_url
        else:
            raise cli.AwsNotConfigured(
                "no queue to redrive: make dev is not running; name a queue with DLQ_URL=..."
                " or a deployed stack with ENV=dev|prod"
            )
        with cli.aws_errors(f"the queue {dlq_url}"):
            outcome = redrive(boto3.client("sqs"), dlq_url)
        if outcome.method == "none":
            print(f"{dlq_url} is empty: nothing to redrive")
            return 0
        print(f"moved {outcome.moved} message(s) from {dlq_url}: {outcome.status}")
        if outcome.status != "COMPLETED":
            print(f"redrive did not complete: {outcome.reason or outcome.status}", file=sys.stderr)
            return 1
        return 0

    return cli.run(parser.prog, command)


if __name__ == "__main__":
    sys.exit(main())
