"""The functions' own CPU per event on this machine: the most one machine could reach.

Issue 16 compares `make dev` with the replaced design on one 2-core machine. Whatever
the local runtime does, each event costs at least what its two Lambdas cost:

- ingest with its real SQS client (boto3, configured and signed as in Lambda)
  sending to local_queue in a process of its own, so the client's CPU is counted
  here and the queue server's is not;
- store, as in part 2, plus the CPU of its PostgreSQL backend (read from /proc, so
  only when the server runs on this machine);
- for reference, not in the ceiling: the queue one machine needs in place of SQS,
  local_queue's process and its PostgreSQL backends while ingest sends one request
  at a time (each send its own commit; under concurrent load, group commit shares
  them);
- the part no local path can leave out: ingest's boto3 `SendMessage` to a durable
  queue, one call per single-event request, from as many processes as `make dev`
  keeps ingest workers, with nothing else running. Its rate is what this machine
  can do for that call alone, before any HTTP front, handler logic or storage.

Divided into this machine's cores, that is a ceiling: the rate `make dev` could reach
if its HTTP front, its queue and its runtime cost nothing.
A raw COPY of the same rows, on one connection, is measured alongside for the batch
target.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import boto3
import psycopg2
from sluice.core import aws_clients
from sluice.core.config import AwsSettings, DatabaseSettings
from sluice.core.db import Database
from sluice.queued_events import pack, serialize_event
from sluice.store.events_data import COPY_EVENTS

import functions.ingest.app as ingest_app
import functions.store.app as store_app
from benchmarks.environment import REPO_ROOT, BenchEnvironment
from benchmarks.ingest_cpu import cpu_per_request, ingest_requests
from benchmarks.store_throughput import Context as StoreContext
from benchmarks.store_throughput import copy_text, queued_events, store_round

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_queue(database_url: str) -> Iterator[tuple[str, int]]:
    """local_queue in its own process, as `make dev` runs it; its endpoint URL and pid."""
    command = [sys.executable, "-m", "local_queue", "--until-stdin-closes"]
    process = subprocess.Popen(  # noqa: S603 - our own module
        [*command, "--database-url", database_url],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        if not endpoint:
            raise RuntimeError(f"local_queue did not start (status {process.wait()})")
        yield endpoint, process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()  # --until-stdin-closes: it stops
        process.wait(30)


def _process_cpu(pid: int, command: bytes) -> float | None:
    """CPU seconds a process of this machine has used; None when `command` is not its."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if command not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None  # e.g. the pid of a database server elsewhere
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds of one PostgreSQL backend so far; None when it is not on this machine."""
    return _process_cpu(pid, b"postgres")


def backend_pids(database_url: str) -> list[int]:
    """The PostgreSQL backends connected to this database, but for the one asking."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return [pid for (pid,) in cur.fetchall()]
    finally:
        conn.close()


def _queue_cpu(database_url: str, queue_pid: int) -> float | None:
    """CPU seconds of local_queue's process and of every backend of the bench database."""
    backends = [_backend_cpu(pid) for pid in backend_pids(database_url)]
    own = _process_cpu(queue_pid, b"local_queue")
    if own is None or None in backends:
        return None
    return own + sum(b for b in backends if b is not None)


def ingest_environment(env: BenchEnvironment, endpoint: str, queue_name: str) -> dict[str, str]:
    """What the template gives ingest, for one part only: a queue of its own on
    local_queue, and the bench database (DATABASE_URL may be the server the other parts
    make their databases on)."""
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    return {
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "EVENTS_QUEUE_URL": sqs.create_queue(QueueName=queue_name)["QueueUrl"],
        "DATABASE_URL": env.database_url,
    }


def _ingest_cpu(
    env: BenchEnvironment, endpoint: str, queue_pid: int, rounds: int
) -> tuple[float, float, float | None]:
    """Ingest's CPU seconds per single-event request and per event of 100-event requests,
    and the queue's per single-event request (None when its database is elsewhere)."""
    app_id, key = env.create_app("floor")
    singles, batches = ingest_requests(app_id, key, singles=1_000, batches=20)
    with mock.patch.dict(os.environ, ingest_environment(env, endpoint, "bench-floor")):
        ingest_app.ingestor.cache_clear()  # built on first use, as in a new container
        single = statistics.median(cpu_per_request(singles, rounds))
        before = _queue_cpu(env.database_url, queue_pid)
        cpu_per_request(singles, 1)  # 50 to warm up, then each of them
        after = _queue_cpu(env.database_url, queue_pid)
        batch = statistics.median(cpu_per_request(batches, rounds)) / 100
        ingest_app.ingestor.cache_clear()
    queue = None if before is None or after is None else (after - before) / (len(singles) + 50)
    return single, batch, queue


# make dev's ingest workers at most when this part was written (local_runtime's
# --max-workers default, 12 since): kept, so its figures compare across days.
SENDING_PROCESSES = 8


def _send_for(endpoint: str, queue_url: str, body: bytes, seconds: float, start, results) -> None:
    """One ingest worker's SQS calls alone: its client, as ingest makes it, in a loop."""
    with mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL_SQS": endpoint}):
        sqs = aws_clients.client("sqs", AwsSettings(), check_parameters=False)
    for _ in range(50):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())
    start.wait()
    calls, began, cpu = 0, time.monotonic(), time.process_time()
    while time.monotonic() - began < seconds:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())
        calls += 1
    results.put((calls, time.process_time() - cpu))


def _parallel_sends(endpoint: str, seconds: float) -> tuple[float, float]:
    """SendMessage calls per second from SENDING_PROCESSES processes at once, and each
    call's client CPU: the durable queue's group commit shares their commits."""
    queue_url = boto3.client("sqs", endpoint_url=endpoint).create_queue(QueueName="bench-parallel")[
        "QueueUrl"
    ]
    body, _ = next(pack([serialize_event(queued_events(1)[0])]))  # what ingest sends
    context = multiprocessing.get_context("fork")
    start = context.Barrier(SENDING_PROCESSES + 1)
    results = context.Queue()
    senders = [
        context.Process(target=_send_for, args=(endpoint, queue_url, body, seconds, start, results))
        for _ in range(SENDING_PROCESSES)
    ]
    for sender in senders:
        sender.start()
    start.wait()
    counts = [results.get(timeout=seconds + 60) for _ in senders]
    for sender in senders:
        sender.join()
    calls = sum(count for count, _ in counts)
    return calls / seconds, sum(cpu for _, cpu in counts) / calls


def _store_cpu(env: BenchEnvironment, events_per_message: int, rounds: int) -> float | None:
    """Store's CPU seconds per event, its PostgreSQL backend's included; 10-message batches."""
    database = Database(DatabaseSettings(url=env.database_url))
    store_app.database = lambda: database
    context = StoreContext()
    backend = database.connection().get_backend_pid()
    spent, stored = 0.0, 0
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for _ in range(rounds):
            event, count = store_round(events_per_message, 10)
            before = _backend_cpu(backend)
            start = time.process_time()
            response = store_app.handler(event, context)
            own = time.process_time() - start
            after = _backend_cpu(backend)
            assert response["batchItemFailures"] == [], response
            if before is None or after is None:
                database.close()
                return None
            spent += own + after - before
            stored += count
    database.close()
    return spent / stored


def _copy_rate(env: BenchEnvironment, rounds: int) -> float:
    """Rows per second of a raw COPY of 1,000 typical rows at a time, one connection."""
    conn = psycopg2.connect(env.database_url)
    rates = []
    for _ in range(rounds):
        text = copy_text(queued_events(1_000))
        start = time.perf_counter()
        with conn, conn.cursor() as cur:
            cur.copy_expert(COPY_EVENTS, io.StringIO(text))
        rates.append(1_000 / (time.perf_counter() - start))
    conn.close()
    return statistics.median(rates)


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    cores = len(os.sched_getaffinity(0))
    rounds = 3 if quick else 7
    with local_queue(env.database_url) as (endpoint, queue_pid):
        single, batch, queue = _ingest_cpu(env, endpoint, queue_pid, rounds)
        before = _queue_cpu(env.database_url, queue_pid)
        sends, send_cpu = _parallel_sends(endpoint, seconds := 3.0 if quick else 8.0)
        after = _queue_cpu(env.database_url, queue_pid)
        queue_per_send = (
            None if before is None or after is None else (after - before) / (sends * seconds)
        )
    # Enough rounds that /proc's 10 ms ticks are a few percent of the backend's total.
    store_single = _store_cpu(env, 1, 40 if quick else 150)
    store_batch = _store_cpu(env, 100, 8 if quick else 30)
    copy_rate = _copy_rate(env, rounds * 3)

    print(f"10. The functions' own CPU per event on this machine ({cores} cores), the ceiling")
    print("    of one machine if HTTP, the queue and the runtime cost nothing (issue 16)")
    row = "    {:<52} {:7.1f} us per {}"
    print(row.format("ingest, one event a request, real SQS client:", single * 1e6, "request"))
    print(row.format("ingest, 100-event requests, real SQS client:", batch * 1e6, "event"))
    if store_single is None or store_batch is None or queue is None:
        print("    store, queue: the database is not on this machine; its CPU cannot be read here")
        return
    store_row = "store, 1-event messages, with its database's CPU:"
    print(row.format(store_row, store_single * 1e6, "event"))
    print(row.format("store, 100-event messages, the same:", store_batch * 1e6, "event"))
    queue_row = "(local_queue and its database, serial sends:"
    print(row.format(queue_row, queue * 1e6, "request, not in the ceiling)"))
    print(
        f"    boto3 SendMessage alone from {SENDING_PROCESSES} processes at once, nothing else:"
        f" {sends:,.0f} calls/s, the most this machine can send"
    )
    print(row.format("  the client's CPU:", send_cpu * 1e6, "call"))
    if queue_per_send is not None:
        meanwhile = "  local_queue and its database meanwhile:"
        print(row.format(meanwhile, queue_per_send * 1e6, "call"))
    single_ceiling = cores / (single + store_single)
    batch_ceiling = cores / (batch + store_batch)
    print(
        f"    ceiling, single events:      {single_ceiling:7,.0f} requests/s"
        f" ({cores / single:,.0f} with ingest alone)"
    )
    print(
        f"    ceiling, 100-event requests: {batch_ceiling:7,.0f} events/s"
        f" = {batch_ceiling / copy_rate:4.0%} of a raw COPY ({copy_rate:,.0f} rows/s)"
    )
