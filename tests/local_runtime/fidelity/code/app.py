"""The fidelity template's handlers: each notes what it got in the output folder."""

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def _note(file: str, entry: dict) -> None:
    with (Path(os.environ["OUTPUT_DIR"]) / file).open("a") as out:
        out.write(json.dumps(entry) + "\n")


def record(event, context):
    # INFO with no level set by the code: Lambda shows it for JSON logs only.
    logger.info("record got an event")
    _note(f"{os.environ['AWS_LAMBDA_FUNCTION_NAME']}.jsonl", {"event": event})
    return {"ok": True}


def fail(event, context):
    _note(f"{os.environ['AWS_LAMBDA_FUNCTION_NAME']}.jsonl", {"event": event})
    raise RuntimeError("this function always fails")


def catch_all(event, context):
    body = {"path": event["rawPath"]}
    if os.environ["OUTPUT_DIR"] == "from-env-vars":  # make invoke's --env-vars
        body["output"] = os.environ["OUTPUT_DIR"]
    return {"statusCode": 200, "body": json.dumps(body)}
