"""`python -m benchmarks.store_worker`: a store worker's CPU per event, step by step.

The drain's shape (issue 26): invocations of 10 messages of 100 events each, written as
the local runtime writes them to a worker (one JSON line), read by the worker's own
code (local_runtime/_worker.py), then handled by the store function against a real
PostgreSQL, whose backend's CPU is counted too: this process's from process_time, the
backend's from /proc/<pid>/schedstat (nanoseconds; /proc's 10 ms ticks are too coarse
for a few microseconds an event). Prints the median of the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg2

from benchmarks.environment import REPO_ROOT, bench_environment


def _backend_cpu(pid: int) -> float:
    """CPU seconds a PostgreSQL backend (one thread, idle when read) has used."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _worker_module():
    spec = importlib.util.spec_from_file_location(
        "_bench_worker", REPO_ROOT / "local_runtime" / "_worker.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MESSAGES, EVENTS_PER_MESSAGE = 10, 100  # local-env.json's StoreBatchSize; the load's batches


def invocation_line(
    messages: int = MESSAGES, events_per_message: int = EVENTS_PER_MESSAGE
) -> bytes:
    """The runtime's line to a store worker: SQS records of `python -m loadtest`'s events."""
    from sluice.queued_events import QueuedEvent, pack, serialize_event
    from uuid_utils.compat import uuid7

    from toolkit.lambda_events import sqs_event

    run, now = uuid.uuid4().hex[:8], datetime.now(UTC)
    bodies: list[str] = []
    for first in range(0, messages * events_per_message, events_per_message):
        events = [
            QueuedEvent(
                event_id=uuid7(),
                app_id="app_0123456789abcdef",
                event_name="user_login",
                payload=orjson.dumps(
                    {
                        "eventName": "user_login",
                        "messageId": f"{run}-{i}",
                        "userId": i + 1,
                        "method": "password",
                        "device": {"os": "ios", "version": "17.2"},
                    }
                ).decode(),
                status="valid",
                validation_errors=None,
                message_id=f"{run}-{i}",
                client_timestamp=None,
                sent_at=None,
                occurred_at=now,
                received_at=now,
            )
            for i in range(first, first + events_per_message)
        ]
        bodies += [body.decode() for body, _ in pack(serialize_event(e) for e in events)]
    # As local_runtime.workers writes an SQS event: with orjson, marked as exact for it.
    request = {"exact": True, "event": sqs_event(bodies), "request_id": "bench", "deadline": 0.0}
    return orjson.dumps(request) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store_worker")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    # Logs at INFO as in `make dev` (the batch's line is part of the worker's cost), to
    # /dev/null; the app is imported once the environment is set (Powertools reads it then).
    with (
        bench_environment() as env,
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"
        from sluice.core.config import DatabaseSettings
        from sluice.core.db import Database
        from sluice.store.events_data import copy_events

        import functions.store.app as store_app
        from benchmarks.store_throughput import Context

        worker = _worker_module()
        database = Database(DatabaseSettings(url=env.database_url))
        store_app.database = lambda: database
        backend = database.connection().get_backend_pid()
        context = Context()
        # The floor beside it: the same rows COPYed by another connection (no claims).
        copying = psycopg2.connect(env.database_url)
        copier = copying.get_backend_pid()
        read, handled, backend_cpu, copy_cpu = [], [], [], []
        events = MESSAGES * EVENTS_PER_MESSAGE
        for round_ in range(args.rounds + 3):  # three to warm up
            line = invocation_line()
            start = time.process_time()
            request = worker._read_request(line)
            middle, backend_start = time.process_time(), _backend_cpu(backend)
            response = store_app.handler(request["event"], context)
            end, backend_end = time.process_time(), _backend_cpu(backend)
            assert response["batchItemFailures"] == [], response
            rows = [
                event
                for record in orjson.loads(invocation_line())["event"]["Records"]
                for event in orjson.loads(record["body"])["events"]
            ]
            copy_start = _backend_cpu(copier)
            with copying:
                copy_events(copying, rows)
            copy_end = _backend_cpu(copier)
            if round_ >= 3:
                copy_cpu.append((copy_end - copy_start) / events)
                read.append((middle - start) / events)
                handled.append((end - middle) / events)
                backend_cpu.append((backend_end - backend_start) / events)
        database.close()
        copying.close()
    row = "  {:<44} {:6.1f} us per event"
    print("A store worker's CPU per event, 10 messages of 100 events an invocation (median)")
    print(row.format("reading the invocation line (the worker):", statistics.median(read) * 1e6))
    print(row.format("the handler:", statistics.median(handled) * 1e6))
    print(row.format("its PostgreSQL backend:", statistics.median(backend_cpu) * 1e6))
    print(row.format("a raw COPY of as many rows, its backend:", statistics.median(copy_cpu) * 1e6))


if __name__ == "__main__":
    main()
