"""Warm ingest requests for callgrind to count: exact where CPU time on a shared machine is not.

Ingest runs with its real SQS client (boto3, as in Lambda) against local_queue in a
process of its own, its logs at INFO (as deployed) to stdout. The measured requests
run inside one `functools.reduce` call, so callgrind can count them alone:

    valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce \\
        .venv/bin/python -m benchmarks.ingest_instructions single > /dev/null

then divide the `Collected` instructions by the requests it prints (on stderr).
`single` sends one typical event a request, `batch` 100 of them. Run it on two
commits to compare them: the count does not change with what else the machine runs.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from unittest import mock

POWERTOOLS = {
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_SERVICE_NAME": "sluice-bench",
    "POWERTOOLS_METRICS_NAMESPACE": "Sluice",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest_instructions")
    parser.add_argument("kind", choices=["single", "batch"])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    os.environ.update(POWERTOOLS)  # before Powertools' objects are made, at import
    import boto3

    from benchmarks.environment import bench_environment
    from benchmarks.ingest_cpu import Context, ingest_requests
    from benchmarks.request_floor import local_queue

    with bench_environment() as env, local_queue(env.database_url) as (endpoint, _):
        os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"  # bench_environment sets WARNING
        import functions.ingest.app as ingest_app

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
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        queue_url = sqs.create_queue(QueueName="bench-instructions")["QueueUrl"]
        function_environment = {
            "AWS_ENDPOINT_URL_SQS": endpoint,
            "EVENTS_QUEUE_URL": queue_url,
            "DATABASE_URL": env.database_url,
        }
        context = Context()
        with mock.patch.dict(os.environ, function_environment):
            ingest_app.ingestor.cache_clear()  # built on first use, as in a new container
            for event in events[:warm]:
                ingest_app.handler(event, context)
            functools.reduce(
                lambda done, event: done + bool(ingest_app.handler(event, context)),
                events[warm:],
                0,
            )
            ingest_app.ingestor.cache_clear()
        print(f"{args.requests} {args.kind} requests", file=sys.stderr)


if __name__ == "__main__":
    main()
