"""python -m local_queue.bench: local_queue next to moto's server, through boto3, side by side.

Both servers run in processes of their own (as the local runtime runs them), and the
clients in --processes processes of --threads threads each, so neither side's GIL
caps the other. PostgreSQL is DATABASE_URL if set, else an embedded one in a
temporary folder. Prints calls/s, latency and CPU per call of the server process
and of its PostgreSQL (every process of the cluster); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from multiprocessing import get_context
from pathlib import Path

import boto3
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = "e" * 1_000  # one packed single event
LARGE = "E" * 60_000  # a message packed full of events

MOTO_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(f"http://127.0.0.1:{server._server.server_port}", flush=True)
sys.stdin.read()
server.stop()
"""


def client(endpoint: str):
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - local endpoints check no signature
        config=Config(retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=50),
    )


# ---------------------------------------------------------------- client side (worker processes)
def _worker(args: tuple[str, str, str, int, float]) -> tuple[list[float], int]:
    """`threads` threads running one scenario for `seconds`: (latencies, messages moved)."""
    import threading

    endpoint, url, scenario, threads, seconds = args
    latencies: list[float] = []
    messages = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def run() -> None:
        sqs = client(endpoint)
        own: list[float] = []
        moved = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            if scenario == "send-1":
                sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "0", "MessageBody": SMALL}])
                moved += 1
            elif scenario == "send-10x60k":
                sqs.send_message_batch(
                    QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": LARGE} for i in range(10)]
                )
                moved += 10
            else:  # receive-delete: one ReceiveMessage(10) and one DeleteMessageBatch
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    break
                own.append(time.perf_counter() - started)
                started = time.perf_counter()
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)
                    ],
                )
                moved += len(got)
            own.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own)
            messages[0] += moved

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return latencies, messages[0]


def run_scenario(
    pool, endpoint: str, url: str, scenario: str, processes: int, threads: int, seconds: float
):
    started = time.monotonic()
    results = list(pool.map(_worker, [(endpoint, url, scenario, threads, seconds)] * processes))
    elapsed = time.monotonic() - started
    latencies = sorted(x for lat, _ in results for x in lat)
    moved = sum(m for _, m in results)
    return len(latencies) / elapsed, moved / elapsed, latencies


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux), to tell server cost from client cost."""
    fields = _stat(pid)
    if fields is None:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU time of PostgreSQL: the postmaster, its live children (backends, WAL writer,
    checkpointer) and the children it has reaped (their time is in its cutime/cstime)."""
    fields = _stat(postmaster)
    if fields is None:
        return float("nan")
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            child = _stat(int(entry.name))
            if child is not None and int(child[1]) == postmaster:
                ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def postmaster_pid(database_url: str) -> int:
    import psycopg2

    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
    finally:
        conn.close()
    fields = _stat(backend)
    return int(fields[1]) if fields else -1


def percentile(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] * 1000 if values else float("nan")


def depth_latency(endpoint: str, depth: int, samples: int) -> list[float]:
    sqs = client(endpoint)
    url = sqs.create_queue(QueueName=f"bench-depth-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    for _ in range(0, depth, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": SMALL} for i in range(10)]
        )
    latencies = []
    for _ in range(samples):
        started = time.perf_counter()
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        latencies.append(time.perf_counter() - started)
        assert len(got.get("Messages", [])) == 10
    return sorted(latencies)


# ---------------------------------------------------------------- servers
def _spawn(argv: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
        argv,
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    return process, process.stdout.readline().strip()


def _database(stack: ExitStack) -> str:
    from toolkit.postgres import embedded_postgres, scratch_database

    url = os.environ.get("DATABASE_URL") or stack.enter_context(
        embedded_postgres("local-queue-bench-")
    )
    return stack.enter_context(scratch_database(url, "local_queue_bench"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_queue.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per scenario and server")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--threads", type=int, default=4, help="client threads per process")
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--skip-moto", action="store_true")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        database_url = _database(stack)
        servers = {}
        local, endpoint = _spawn(
            [
                sys.executable,
                "-m",
                "local_queue",
                "--database-url",
                database_url,
                "--until-stdin-closes",
            ]
        )
        stack.callback(local.wait)
        stack.callback(local.stdin.close)
        servers["local_queue"] = (endpoint, local.pid)
        if not args.skip_moto:
            moto, endpoint = _spawn([sys.executable, "-c", MOTO_SERVER])
            stack.callback(moto.wait)
            stack.callback(moto.stdin.close)
            servers["moto"] = (endpoint, moto.pid)
        postmaster = postmaster_pid(database_url)
        pool = stack.enter_context(
            ProcessPoolExecutor(args.processes, mp_context=get_context("spawn"))
        )
        clients = args.processes * args.threads
        print(
            f"{clients} client threads ({args.processes} processes x {args.threads}), "
            f"{args.seconds:g} s per scenario, on {os.cpu_count()} cores"
        )
        print(
            f"{'server':12} {'scenario':28} {'calls/s':>8} {'msgs/s':>8} {'p50 ms':>7} "
            f"{'p95 ms':>7} {'p99 ms':>7} {'server CPU us/call':>18} {'its PG us/call':>14}"
        )
        for name, (endpoint, pid) in servers.items():
            sqs = client(endpoint)
            small = sqs.create_queue(QueueName=f"bench-small-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            large = sqs.create_queue(QueueName=f"bench-large-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            for label, url, scenario in (
                ("SendMessageBatch 1 x 1 KB", small, "send-1"),
                ("SendMessageBatch 10 x 60 KB", large, "send-10x60k"),
                ("Receive(10) + DeleteBatch", small, "receive-delete"),
            ):
                cpu, pg_cpu = cpu_seconds(pid), postgres_cpu_seconds(postmaster)
                calls, moved, latencies = run_scenario(
                    pool, endpoint, url, scenario, args.processes, args.threads, args.seconds
                )
                per_call = (cpu_seconds(pid) - cpu) / max(1, len(latencies)) * 1e6
                # moto keeps its queues in memory: PostgreSQL's CPU is local_queue's alone.
                pg_per_call = (
                    (postgres_cpu_seconds(postmaster) - pg_cpu) / max(1, len(latencies)) * 1e6
                    if name == "local_queue"
                    else 0.0
                )
                print(
                    f"{name:12} {label:28} {calls:8.0f} {moved:8.0f} "
                    f"{percentile(latencies, 0.5):7.1f} {percentile(latencies, 0.95):7.1f} "
                    f"{percentile(latencies, 0.99):7.1f} {per_call:18.0f} {pg_per_call:14.0f}"
                )
            samples = depth_latency(endpoint, args.depth, 5 if name == "moto" else 50)
            print(
                f"{name:12} {f'Receive(10) at depth {args.depth}':28} {'':8} {'':8} "
                f"{statistics.median(samples) * 1000:7.1f} {percentile(samples, 0.95):7.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
