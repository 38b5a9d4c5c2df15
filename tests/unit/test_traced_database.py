"""In Lambda, with `Tracing: Active`, Powertools' Tracer patches psycopg2: every
connection and cursor is an X-Ray proxy. The tests' environment turns tracing off
(POWERTOOLS_TRACE_DISABLED), so these run a process as Lambda runs a function."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What Lambda's runtime sets for an invocation X-Ray samples
SAMPLED_TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

READ_JSON_TRACED = """
import sys
from sluice.core.observability import tracer  # Tracer() patches psycopg2, as in Lambda
import psycopg2
from sluice.core.exact_json import JsonText, exact_cursor

conn = psycopg2.connect(sys.argv[1])
assert type(conn).__name__ == "XRayTracedConn", type(conn).__name__
with tracer.provider.in_subsegment("## read"), exact_cursor(conn) as cur:
    cur.execute("SELECT %s::jsonb, %s::json", ('{"n": 12345678901234567890}', "[1.10]"))
    jsonb, json = cur.fetchone()
assert isinstance(jsonb, JsonText) and isinstance(json, JsonText), (jsonb, json)
print(jsonb.text, json.text)
"""


def test_exact_json_reads_through_the_cursor_xray_traces(database_url: str) -> None:
    """The management API's reads (rules, events) use exact_cursor: with psycopg2
    patched, registering its JSON readers on the traced cursor raised TypeError, and
    every such read answered 500 in AWS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as daemon:  # X-Ray's segments land here
        daemon.bind(("127.0.0.1", 0))
        environment = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"} | {
            "PYTHONPATH": str(REPO / "layers"),
            "AWS_LAMBDA_FUNCTION_NAME": "sluice-test-manage",
            "LAMBDA_TASK_ROOT": str(REPO / "functions" / "manage"),
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{daemon.getsockname()[1]}",
            "_X_AMZN_TRACE_ID": SAMPLED_TRACE,
        }
        result = subprocess.run(  # noqa: S603 - our own script
            [sys.executable, "-c", READ_JSON_TRACED, database_url],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ['{"n":', "12345678901234567890}", "[1.10]"]
