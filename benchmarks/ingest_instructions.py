"""Warm ingest requests for callgrind to count: exact where CPU time on a shared machine is not.

Ingest runs with its real SQS client (boto3, as in Lambda) against local_queue in a
process of its own, its logs at INFO (as deployed) to stdout. The measured requests
run inside one `functools.reduce` call, so callgrind can count them alone:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        .venv/bin/python -m benchmarks.ingest_instructions single > /dev/null

then divide the `Collected` instructions by the requests it prints (on stderr).
`single` sends one typical event a request, `batch` 100 of them. Run it on two
commits to compare them: the count does not change with what else the machine runs.

`--xray` runs ingest as Lambda does with `Tracing: Active`: Powertools' tracer on,
a new `_X_AMZN_TRACE_ID` for each invocation, one in 20 of them sampled (X-Ray keeps
1 request a second and 5 % of the rest), segments sent to a UDP socket standing in
for the daemon (`--sampled-one-in 1`: every one). `--stub` sends to part 1's stub SQS
client instead of local_queue: the handler's own cost, without botocore's call. `--cpu`
prints CPU microseconds per request (median of 5 rounds) instead, for a run without
valgrind.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import os
import socket
import statistics
import sys
import time
from collections.abc import Iterator
from unittest import mock

POWERTOOLS = {
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "sluice-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


@contextlib.contextmanager
def xray_daemon() -> Iterator[socket.socket]:
    """A UDP socket where the X-Ray SDK sends its segments, and the environment Lambda
    gives a function that traces (a task root and a daemon address switch the tracer on)."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)
    os.environ.update(
        LAMBDA_TASK_ROOT=os.getcwd(),
        AWS_LAMBDA_FUNCTION_NAME="sluice-bench-ingest",
        AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{sink.getsockname()[1]}",
        AWS_XRAY_CONTEXT_MISSING="LOG_ERROR",
    )
    try:
        yield sink
    finally:
        sink.close()


def drain(sink: socket.socket) -> None:
    with contextlib.suppress(BlockingIOError):
        while sink.recv(65536):
            pass


def new_trace_header(count: Iterator[int], sampled_one_in: int) -> None:
    """What Lambda's runtime sets before each invocation: a new trace, sampled or not."""
    n = next(count)
    sampled = int(n % sampled_one_in == 0)
    os.environ["_X_AMZN_TRACE_ID"] = (
        f"Root=1-5759e988-{n:024x};Parent=53995c3f42cd8ad8;Sampled={sampled}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_instructions")
    parser.add_argument("kind", choices=["single", "batch"])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--xray", action="store_true", help="tracing on, as in Lambda")
    parser.add_argument("--sampled-one-in", type=int, default=20, metavar="N")
    parser.add_argument("--stub", action="store_true", help="part 1's stub SQS client")
    parser.add_argument("--cpu", action="store_true", help="print CPU per request instead")
    args = parser.parse_args()
    os.environ.update(POWERTOOLS)  # before Powertools' objects are made, at import
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(xray_daemon()) if args.xray else None
        run(args, sink, stack)


def run(args: argparse.Namespace, sink: socket.socket | None, stack: contextlib.ExitStack) -> None:
    import psycopg2

    from benchmarks.environment import bench_environment
    from benchmarks.ingest_cpu import Context, StubSqs, ingest_requests
    from benchmarks.request_floor import ingest_environment, local_queue

    env = stack.enter_context(bench_environment())
    endpoint, _ = stack.enter_context(local_queue(env.database_url))
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"  # bench_environment sets WARNING
    import functions.ingest.app as ingest_app

    with contextlib.ExitStack() as unpatched:
        if sink is not None:
            # X-Ray's psycopg2 patch wraps connections in a proxy that psycopg2's
            # register_default_json refuses (manage's exact_cursor): the app is made
            # on a plain connection.
            unpatched.enter_context(mock.patch("psycopg2.connect", psycopg2.connect.__wrapped__))
        app_id, key = env.create_app("instructions")
    warm = 50 if args.kind == "single" else 5
    count = args.requests + warm
    singles, batches = ingest_requests(
        app_id,
        key,
        singles=count if args.kind == "single" else 0,
        batches=count if args.kind == "batch" else 0,
    )
    events = singles or batches
    function_environment = ingest_environment(env, endpoint, "bench-instructions")
    context = Context()
    traces = itertools.count()

    def invoke(done: int, event: dict) -> int:
        if sink is not None:
            new_trace_header(traces, args.sampled_one_in)
        return done + bool(ingest_app.handler(event, context))

    with mock.patch.dict(os.environ, function_environment):
        ingest_app.ingestor.cache_clear()  # built on first use, as in a new container
        if args.stub:
            ingest_app.ingestor()._queue._sqs = StubSqs()
        for event in events[:warm]:  # outside functools.reduce: callgrind leaves them out
            invoke(0, event)
        if args.cpu:
            figures = []
            for _ in range(5):
                start = time.process_time()
                functools.reduce(invoke, events[warm:], 0)
                figures.append((time.process_time() - start) / args.requests)
                if sink is not None:
                    drain(sink)
            median = statistics.median(figures) * 1e6
            print(f"{median:.1f} us of CPU per {args.kind} request", file=sys.stderr)
        else:
            functools.reduce(invoke, events[warm:], 0)
        ingest_app.ingestor.cache_clear()
    print(f"{args.requests} {args.kind} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
