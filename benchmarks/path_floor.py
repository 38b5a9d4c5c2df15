"""The request path issue 26 keeps, with nothing else on it: how fast can it go here?

Issue 26 keeps, on every single-event request: the handler runs in a worker process
of its own, one invocation at a time; it reaches SQS through boto3; the queue answers
only after a durable commit; the event is then stored in PostgreSQL by the store's
handler. This builds that path and nothing more, and drives it with the same wrk load
as `make loadtest ARGS="--wrk"`:

    wrk -> an HTTP front (uvicorn on uvloop and httptools, as the runtime's API)
        -> a free worker, over its stdin pipe (the request's body as one line)
        -> the worker's boto3 SendMessage (ingest's client) of a new event, packed
           as ingest packs it, to local_queue
        <- a one-line answer on its stdout pipe
        <- 202
    with --store, also: local_queue -> up to 10 messages a receive, over the
        runtime's lean client, in each of two storer processes (make dev's store
        batches at a time) -> the store's handler, in that process -> delete

Left out: the handler's own work (reading the request, the app's key and rules,
Powertools' logger, metrics and resolver), API Gateway's event, log lines, the
console's counts, the pipe to a store worker. Each only adds, so the rate is a
ceiling for `make dev` on this machine, measured under the same contention (wrk, the
front, as many workers as `make dev` starts, local_queue and PostgreSQL sharing the
cores); the CPU per request by process is what the kept path costs before Sluice
does anything of its own.

    .venv/bin/python -m benchmarks.path_floor --duration 20 --concurrency 32 [--store]

Also `make bench` part 11, both ways (needs wrk, as `make loadtest ARGS="--wrk"` does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg2

from benchmarks.environment import REPO_ROOT, BenchEnvironment, bench_environment
from benchmarks.request_floor import _process_cpu, backend_pids, ingest_environment, local_queue
from toolkit import wrk

# make dev's workers a function at most (local_runtime's --max-workers default).
WORKERS = 12
ANSWER = b'{"accepted":1,"ids":["0192f6a1-6c1e-7c3a-9d3e-1b2f3a4b5c6d"]}'


# ---- the worker: one process, one invocation at a time ----------------------------
def _worker(queue_url: str) -> None:
    """Reads a request line, sends a new event as ingest queues it, answers one line."""
    from sluice.core import aws_clients
    from sluice.core.config import AwsSettings
    from sluice.queued_events import pack, serialize_event

    from benchmarks.environment import typical_queued_event

    sqs = aws_clients.client("sqs", AwsSettings(), check_parameters=False)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    answers.write(b"ready\n")
    answers.flush()
    sent = 0
    while requests.readline():
        # A new id each time: the store must insert every one, not skip a duplicate.
        event = typical_queued_event(FLOOR_APP, sent, datetime.now(UTC))
        body, _ = next(pack([serialize_event(event)]))
        sqs.send_message(QueueUrl=queue_url, MessageBody=body.decode())
        sent += 1
        answers.write(b"{}\n")
        answers.flush()


def _exit_when_stdin_closes() -> None:
    sys.stdin.read()
    os._exit(0)


# ---- the storer: the store's handler on what the queue gives, as its trigger would ----
def _storer(endpoint: str, queue_url: str, database_url: str) -> None:
    """Receives up to 10 messages, stores them with the store's handler, deletes them."""
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database

    import functions.store.app as store_app
    from benchmarks.store_throughput import Context
    from toolkit.lambda_events import sqs_event
    from toolkit.local_queue_client import LocalQueueClient

    database = Database(DatabaseSettings(url=database_url))
    store_app.database = lambda: database
    queue = LocalQueueClient(endpoint)
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    while True:
        messages = queue.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            continue
        event = sqs_event([m["Body"] for m in messages])  # the records in the same order
        answer = store_app.handler(event, Context())
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        records = zip(messages, event["Records"], strict=True)
        done = [m for m, record in records if record["messageId"] not in failed]
        if not done:
            continue  # every one back to the queue, as the trigger leaves them
        queue.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
            ],
        )


# ---- the front: one event loop, a pool of workers ------------------------------------
class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.waiter: asyncio.Future[bytes] | None = None

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None and not self.waiter.done() and b"\n" in self.buffer:
            line, _, self.buffer = self.buffer.partition(b"\n")
            self.waiter.set_result(line)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(RuntimeError("a worker exited"))  # its request: 500


class _Worker:
    def __init__(self, transport: asyncio.SubprocessTransport, pipes: _Pipes) -> None:
        self.transport, self.pipes = transport, pipes
        self.stdin: asyncio.WriteTransport = transport.get_pipe_transport(0)  # type: ignore[assignment]

    async def line(self) -> bytes:
        self.pipes.waiter = asyncio.get_running_loop().create_future()
        if b"\n" in self.pipes.buffer:
            line, _, self.pipes.buffer = self.pipes.buffer.partition(b"\n")
            return line
        return await self.pipes.waiter

    async def call(self, body: bytes) -> bytes:
        self.stdin.write(body.replace(b"\n", b" ") + b"\n")
        return await self.line()


async def _front(queue_url: str, endpoint: str, workers: int) -> None:
    import uvicorn

    loop = asyncio.get_running_loop()
    environ = {**os.environ, "AWS_ENDPOINT_URL_SQS": endpoint}
    command = [sys.executable, "-m", "benchmarks.path_floor", "--worker", queue_url]
    pool: list[_Worker] = []
    for _ in range(workers):
        transport, pipes = await loop.subprocess_exec(
            _Pipes,
            *command,
            cwd=REPO_ROOT,
            env=environ,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        pool.append(_Worker(transport, pipes))
    for worker in pool:
        assert await worker.line() == b"ready"
    idle: asyncio.Queue[_Worker] = asyncio.Queue()
    for worker in pool:
        idle.put_nowait(worker)

    async def app(scope: dict, receive, send) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        worker = await idle.get()
        try:
            await worker.call(body)
        finally:
            idle.put_nowait(worker)
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(ANSWER)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": ANSWER})

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        server_header=False,
        date_header=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    served = asyncio.ensure_future(server.serve(sockets=[listening]))
    while not server.started:
        if served.done():
            served.result()  # it could not start: say why
        await asyncio.sleep(0.01)
    pids = [worker.transport.get_pid() for worker in pool]
    print(json.dumps({"port": listening.getsockname()[1], "workers": pids}), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    server.should_exit = True
    await served
    for worker in pool:
        worker.transport.close()


# ---- the bench -------------------------------------------------------------------------
FLOOR_APP = "app_path_floor"
STORERS = 2  # make dev's store batches at a time (local-env.json), but for a backlog's third


def _cpu(pids: list[int], command: bytes) -> float:
    return sum(_process_cpu(pid, command) or 0.0 for pid in pids)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stored(database_url: str) -> int:
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events WHERE app_id = %s", (FLOOR_APP,))
        return cur.fetchone()[0]


@contextlib.contextmanager
def _running(command: list[str], **popen: Any) -> Iterator[subprocess.Popen]:
    """A process of this module; told to stop by closing its stdin, stopped if it lingers."""
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.PIPE, **popen)  # noqa: S603
    try:
        yield process
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(30)


def _settled(database_url: str, deadline_s: float = 60.0) -> None:
    """Waits until the stored count holds still for a second (nothing stored: at once)."""
    last, still_since = _stored(database_url), time.monotonic()
    give_up = still_since + deadline_s
    while time.monotonic() - still_since < 1.0:
        if time.monotonic() > give_up:
            raise RuntimeError("the floor's storers never caught up")
        time.sleep(0.1)
        count = _stored(database_url)
        if count != last:
            last, still_since = count, time.monotonic()


def _drained(database_url: str, target: int, figures: dict, deadline_s: float = 120.0) -> float:
    """Seconds from the load's end until `target` events are stored."""
    give_up = time.monotonic() + deadline_s
    while _stored(database_url) < target:
        if time.monotonic() > give_up:
            raise RuntimeError(f"fewer than {target} events stored {deadline_s:.0f} s after")
        time.sleep(0.05)
    return max(0.0, time.time() - figures["end"])


def _acknowledged(figures: dict) -> int:
    return figures["requests"] - figures["non_2xx"]


def measure(
    env: BenchEnvironment, duration: float, concurrency: int, *, store: bool, workers: int = WORKERS
) -> dict:
    """wrk against the kept path alone, storing or not: rate, latency, CPU per request."""
    this = [sys.executable, "-m", "benchmarks.path_floor"]
    with contextlib.ExitStack() as stack:
        endpoint, queue_pid = stack.enter_context(local_queue(env.database_url))
        queue_url = ingest_environment(env, endpoint, "bench-path-floor")["EVENTS_QUEUE_URL"]
        front = stack.enter_context(
            _running([*this, "--front", queue_url, endpoint, str(workers)], stdout=subprocess.PIPE)
        )
        storers = [
            stack.enter_context(
                _running(
                    [*this, "--storer", endpoint, queue_url, env.database_url],
                    stdout=subprocess.DEVNULL,  # the store's log lines
                )
            )
            for _ in range(STORERS if store else 0)
        ]
        assert front.stdout is not None
        started = json.loads(front.stdout.readline())
        url = f"http://127.0.0.1:{started['port']}"
        wrk.run(url, "floor", "unused", 3, concurrency)  # every worker's connection made
        _settled(env.database_url)  # the warm-up's events stored before counting starts
        ours = {
            "front": [front.pid],
            "workers": started["workers"],
            "storers": [storer.pid for storer in storers],
        }
        backends = backend_pids(env.database_url)
        before = {name: _cpu(pids, b"path_floor") for name, pids in ours.items()}
        queue_before = _process_cpu(queue_pid, b"local_queue") or 0.0
        postgres_before = _cpu(backends, b"postgres")
        stored_before = _stored(env.database_url)
        wrk_before = _children_cpu()
        figures = wrk.run(url, "floor", "unused", duration, concurrency)
        wrk_cpu = _children_cpu() - wrk_before
        stored_during = _stored(env.database_url) - stored_before
        backlog_s = 0.0
        if store:
            backlog_s = _drained(env.database_url, stored_before + _acknowledged(figures), figures)
        after = {name: _cpu(pids, b"path_floor") for name, pids in ours.items()}
        queue_after = _process_cpu(queue_pid, b"local_queue") or 0.0
        postgres_after = _cpu(backends, b"postgres")
    requests = figures["requests"]
    cpu = {name: (after[name] - before[name]) / requests for name in ours if ours[name]}
    cpu["wrk"] = wrk_cpu / requests
    cpu["local_queue"] = (queue_after - queue_before) / requests
    cpu["PostgreSQL"] = (postgres_after - postgres_before) / requests
    return {
        **figures,
        "cpu_per_request_s": cpu,
        "workers": workers,
        "connections": concurrency,
        "store": store,
        "stored_per_s": stored_during / (figures["end"] - figures["start"]),
        "backlog_s": backlog_s,
    }


def print_report(result: dict) -> None:
    cores = len(os.sched_getaffinity(0))
    latency = result["latency_ms"]
    what = "stored as it goes" if result["store"] else "acknowledged only"
    print(
        f"    {what}: {result['requests_per_s']:,.0f} requests/s, p50 {latency['p50']} ms,"
        f" p99 {latency['p99']} ms ({result['non_2xx']} non-2xx)"
    )
    if result["store"]:
        print(
            f"      stored {result['stored_per_s']:,.0f}/s during the load,"
            f" the rest {result['backlog_s']:.2f} s after it"
        )
    cpu = result["cpu_per_request_s"]
    for name, seconds in cpu.items():
        print(f"      {name + ':':<14} {seconds * 1e6:6.0f} us CPU per request")
    total = sum(cpu.values())
    print(
        f"      {'total:':<14} {total * 1e6:6.0f} us"
        f" ({cores} cores / total: {cores / total:,.0f}/s)"
    )


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    print(
        "11. The path issue 26 keeps, alone: wrk (32 connections) -> an HTTP front on one"
        f" event loop -> {WORKERS} worker processes -> boto3 SendMessage -> local_queue;"
        " then the same with the store's handler on the queue"
    )
    for store in (False, True):
        try:
            result = measure(env, 8 if quick else 20, 32, store=store)
        except SystemExit as missing:  # wrk.run says what is missing
            print(f"    not run: {missing}")
            return
        print_report(result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.path_floor")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--store", action="store_true", help="store as it goes, as make dev does")
    parser.add_argument("--worker", metavar="QUEUE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--front", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--storer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
    elif args.storer:
        _storer(*args.storer)
    elif args.front:
        import uvloop

        queue_url, endpoint, workers = args.front
        uvloop.run(_front(queue_url, endpoint, int(workers)))
    else:
        with bench_environment() as env:
            result = measure(
                env, args.duration, args.concurrency, store=args.store, workers=args.workers
            )
            print_report(result)


if __name__ == "__main__":
    main()
