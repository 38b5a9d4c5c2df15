"""The sample's queue and schedule functions: record what they got, fail on request.

Each job is JSON: {"id": ..., "do": "ok" | "fail" | "raise-once" | "sleep-once" | "hold"}.
"fail" is reported as a batch item failure every time (a poison message);
"raise-once" raises on its first receive, failing the whole batch; "sleep-once"
outlives the function's timeout on its first receive; "hold" notes in started.jsonl
that it runs, then works until a file named `release` is in the output folder, so a
test decides when it ends instead of racing a fixed duration.
"""

import json
import os
import time
from pathlib import Path

NAME = "worker"


def _record(file: str, entry: dict) -> None:
    with (Path(os.environ["OUTPUT_DIR"]) / file).open("a") as out:
        out.write(json.dumps(entry) + "\n")


def handler(event, context):
    failures = []
    records = event["Records"]
    for record in records:
        job = json.loads(record["body"])
        first = record["attributes"]["ApproximateReceiveCount"] == "1"
        if job.get("do") == "raise-once" and first:
            raise RuntimeError(f"job {job['id']} fails its first batch")
        if job.get("do") == "sleep-once" and first:
            time.sleep(60)
        if job.get("do") == "hold":
            _record("started.jsonl", {"id": job["id"]})
            while not (Path(os.environ["OUTPUT_DIR"]) / "release").exists():
                time.sleep(0.05)
    for record in records:
        job = json.loads(record["body"])
        if job.get("do") == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        _record(
            "processed.jsonl",
            {
                "id": job["id"],
                "receive_count": record["attributes"]["ApproximateReceiveCount"],
                "batch": len(records),
                "module": NAME,
                "record": record,
            },
        )
    return {"batchItemFailures": failures}


def tick(event, context):
    _record("ticks.jsonl", {"event": event, "module": NAME})
    return {"ok": True}
