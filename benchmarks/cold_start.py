"""Cold start of each function: a fresh interpreter imports the handler and runs its
first invocation (database lookups, the SQS send, through moto's server), timed
from outside, next to the floor from FACTS.md measured in the same run: boto3, an
SQS client, Powertools' APIGatewayHttpResolver, Logger, Metrics and Tracer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sluice.queued_events import pack, serialize_event

from benchmarks.environment import REPO_ROOT, BenchEnvironment, typical_event, typical_queued_event
from toolkit.lambda_events import http_event, sqs_event

FLOOR = (
    "import boto3; boto3.client('sqs');"
    "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver;"
    "from aws_lambda_powertools import Logger, Metrics, Tracer;"
    "Logger(); Metrics(); Tracer()"
)

INVOKE = """
import json, sys
import functions.{name}.app as function
class Context:
    function_name = "{name}"; memory_limit_in_mb = 512; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:{name}"
response = function.handler(json.load(open(sys.argv[1])), Context())
assert {check}, response
"""


def _time(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(  # noqa: S603 - this interpreter, our own modules
        command, env=env, cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"
    try:
        import boto3

        queue_url = boto3.client("sqs", endpoint_url=endpoint).create_queue(QueueName="events")[
            "QueueUrl"
        ]
        app_id, key = env.create_app("cold")

        from datetime import UTC, datetime

        now = datetime.now(UTC)
        with tempfile.TemporaryDirectory() as folder:
            ingest_event = Path(folder, "ingest.json")
            ingest_event.write_text(
                json.dumps(
                    http_event(f"/api/logs/{app_id}", typical_event(0), headers={"x-api-key": key})
                )
            )

            def store_event() -> Path:
                event = typical_queued_event(app_id, 0, now)
                [(body, _)] = pack([serialize_event(event)])
                path = Path(folder, f"store-{event.event_id}.json")
                path.write_text(json.dumps(sqs_event([body.decode()])))
                return path

            child_env = {
                **os.environ,
                "AWS_ENDPOINT_URL": endpoint,
                "EVENTS_QUEUE_URL": queue_url,
                "DATABASE_URL": env.database_url,
            }
            python = sys.executable
            ingest_code = INVOKE.format(name="ingest", check='response["statusCode"] == 202')
            store_code = INVOKE.format(name="store", check='response["batchItemFailures"] == []')
            figures: dict[str, list[float]] = {"floor": [], "ingest": [], "store": [], "bare": []}
            for _ in range(3 if quick else 7):  # interleaved, so noise falls on all alike
                figures["bare"].append(_time([python, "-c", "pass"], child_env))
                figures["floor"].append(_time([python, "-c", FLOOR], child_env))
                figures["ingest"].append(
                    _time([python, "-c", ingest_code, str(ingest_event)], child_env)
                )
                figures["store"].append(
                    _time([python, "-c", store_code, str(store_event())], child_env)
                )
    finally:
        server.stop()

    median = {name: statistics.median(values) * 1000 for name, values in figures.items()}
    print("3. Cold start: fresh interpreter, import + first invocation (median, ms)")
    print(f"   python -c pass:        {median['bare']:6.0f} ms")
    print(f"   floor (FACTS.md):      {median['floor']:6.0f} ms")
    print(
        f"   ingest:                {median['ingest']:6.0f} ms ="
        f" {median['ingest'] / median['floor']:.2f} x floor (target <= 1.15)"
    )
    print(
        f"   store:                 {median['store']:6.0f} ms ="
        f" {median['store'] / median['floor']:.2f} x floor"
    )
