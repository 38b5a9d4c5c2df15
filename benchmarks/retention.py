"""Retention (issue 14): the partitioned table's store speed, dropping a day, the archive.

a. The store function's path (messages checked as the COPY into events streams them,
   then the COPY of their messageIds into event_dedup) next to a raw COPY of the same
   kind of rows straight into today's partition, interleaved.
b. A day's partition of BENCH_DROP_ROWS rows (10,000,000 unless set; --quick 1,000,000),
   built with INSERT ... SELECT generate_series, detached and dropped by the maintain
   function's calls while a thread stores batches without pause: the time of each
   step, and the slowest store batch during them next to the slowest before.
c. The archive of one app's day (a quarter of that partition) to S3 (moto's server, in
   a process of its own): rows per second, the object's size, and the peak of Python
   memory while streaming (tracemalloc), which must not grow with the day.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import psycopg2
from psycopg2 import sql
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.retention import partitions as p
from sluice.retention.archive import ArchiveBucket, object_key
from sluice.store.events_table import WRITTEN, names
from sluice.store.store_batch import QueueRecord, store_records

from benchmarks.environment import BenchEnvironment
from benchmarks.store_throughput import copy_text, queued_events, store_round

DAY = date(2026, 1, 15)  # the day built and dropped: far from today's partition
APPS = 4


def _store(database: Database, messages: int = 100) -> float:
    """One store invocation of `messages` one-event messages; its seconds."""
    event, _ = store_round(1, messages)
    records = [QueueRecord(r["messageId"], r["body"]) for r in event["Records"]]
    start = time.perf_counter()
    assert store_records(database, records).failed == []
    return time.perf_counter() - start


def _store_versus_copy(env: BenchEnvironment, rounds: int) -> None:
    database = Database(DatabaseSettings(url=env.database_url, user="sluice_store"))
    today = datetime.now(UTC).date()
    partition = p.partition_name(today)
    copy_conn = psycopg2.connect(env.database_url)
    store_rates, copy_rates = [], []
    for _ in range(rounds):
        event, count = store_round(1, 1_000)
        records = [QueueRecord(r["messageId"], r["body"]) for r in event["Records"]]
        start = time.perf_counter()
        assert store_records(database, records).failed == []
        store_rates.append(count / (time.perf_counter() - start))

        text = copy_text(queued_events(count))
        start = time.perf_counter()
        with copy_conn, copy_conn.cursor() as cur:
            cur.copy_expert(
                sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(partition), names(WRITTEN)
                ),
                io.StringIO(text),
            )
        copy_rates.append(count / (time.perf_counter() - start))
    store_rate, copy_rate = statistics.median(store_rates), statistics.median(copy_rates)
    print(
        f"   a. store (COPY into events + dedup) {store_rate:9,.0f} rows/s, raw COPY into"
        f" {partition} {copy_rate:9,.0f} rows/s -> {store_rate / copy_rate:5.0%} (target >= 50%)"
    )
    copy_conn.close()
    database.close()


def _build_day(env: BenchEnvironment, rows: int) -> float:
    """A day's partition of `rows` typical-size events of APPS apps; the seconds it took."""
    conn = psycopg2.connect(env.database_url)
    conn.autocommit = True
    start_of_day, _ = p.day_bounds(DAY)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("SELECT sluice_make_event_partitions(%s, %s)", (DAY, DAY))
        # Straight into the partition: the same rows, without routing each through events.
        cur.execute(
            f"INSERT INTO {p.partition_name(DAY)} (event_id, app_id, event_name, payload,"  # noqa: S608
            " status, message_id, occurred_at, received_at)"
            " SELECT gen_random_uuid(), 'app_bench_' || (n %% %s), 'user_login',"
            " jsonb_build_object('eventName', 'user_login', 'userId', n, 'method', 'password',"
            "  'email', 'user' || n || '@example.com', 'device',"
            "  jsonb_build_object('os', 'ios', 'version', '17.2')),"
            " 'valid', 'm-' || n, t, t"
            " FROM generate_series(1, %s) AS n,"
            # Spread over the day, the last row a second before its end (a float of
            # seconds: an interval divided by 10 M rounds to microseconds, and adds up).
            " LATERAL (SELECT %s::timestamptz"
            "  + make_interval(secs => (n - 1)::float8 * 86399 / %s))"
            "  AS at(t)",
            (APPS, rows, start_of_day, rows),
        )
        cur.execute(f"VACUUM ANALYZE {p.partition_name(DAY)}")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


class _Storer(threading.Thread):
    """Stores 100-event batches without pause; remembers when each started and its seconds."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.database = Database(DatabaseSettings(url=url, user="sluice_store"))
        self.batches: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            self.batches.append((started, _store(self.database)))

    def slowest(self, since: float, until: float) -> float:
        return max(
            (s for start, s in self.batches if since <= start + s and start <= until), default=0.0
        )


def _under_store(env: BenchEnvironment, step) -> tuple[float, float, float, int]:
    """Runs `step` while a thread stores without pause.

    Returns the step's seconds, the slowest store batch that overlapped it, the slowest
    before it (a second of baseline), and how many batches ran.
    """
    storer = _Storer(env.database_url)
    storer.start()
    time.sleep(1.0)
    start = time.perf_counter()
    step()
    end = time.perf_counter()
    time.sleep(0.5)
    storer.stop.set()
    storer.join()
    storer.database.close()
    before = [s for started, s in storer.batches if started + s < start]
    return end - start, storer.slowest(start, end), max(before), len(storer.batches)


def _drop_and_archive_day(env: BenchEnvironment, rows: int) -> None:
    maintainer = Database(DatabaseSettings(url=env.database_url, user="sluice_maintain"))
    detach = _under_store(
        env, lambda: assert_true(maintainer.run(lambda c: p.detach_partition(c, DAY)))
    )
    _archive_day(maintainer)
    size, data_directory = _partition_size(env)
    drop = _under_store(
        env, lambda: assert_true(maintainer.run(lambda c: p.drop_detached_partition(c, DAY)))
    )
    print(
        f"   b. {rows:,}-row day ({size / 2**30:4.2f} GiB with its indexes): detach"
        f" {detach[0]:6.3f} s, drop {drop[0]:6.3f} s (target < 1 s together). Slowest"
        f" 100-event store batch (sluice_store, beside them): during detach"
        f" {detach[1] * 1000:4.0f} ms, during drop {drop[1] * 1000:4.0f} ms, before"
        f" {max(detach[2], drop[2]) * 1000:4.0f} ms"
    )
    if data_directory is not None:
        floor = _file_of(data_directory, size)
        unlink = _under_store(env, lambda: floor.unlink())
        print(
            f"      the filesystem's own floor: one file of as many bytes beside the"
            f" database's files, written and synced, removed the same way: {unlink[0]:6.3f} s"
        )
    maintainer.close()


def _partition_size(env: BenchEnvironment) -> tuple[int, Path | None]:
    """The day's bytes (table and indexes), and the server's data directory if it is here."""
    conn = psycopg2.connect(env.database_url)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_total_relation_size(%s)", (p.partition_name(DAY),))
        size = cur.fetchone()[0]
        cur.execute("SELECT current_setting('data_directory')")
        directory = Path(cur.fetchone()[0])
    conn.close()
    return size, directory if directory.is_dir() else None


def _file_of(directory: Path, size: int) -> Path:
    """A file of `size` random bytes, written and synced, in `directory`."""
    path = directory / "sluice-bench-unlink-floor"
    block = os.urandom(8 * 2**20)
    with open(path, "wb") as file:
        for _ in range(size // len(block) + 1):
            file.write(block)
        file.flush()
        os.fsync(file.fileno())
    return path


def assert_true(value: object) -> None:
    assert value is True, value


# moto's server in a process of its own, so the archive's peak memory is this process's
# alone (moto keeps each object it is sent); it ends when its stdin closes.
MOTO_SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(f"http://127.0.0.1:{server._server.server_port}", flush=True)
sys.stdin.read()
"""


def _archive_day(maintainer: Database) -> None:
    helper = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", MOTO_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert helper.stdout is not None and helper.stdin is not None
    moto_url = helper.stdout.readline().strip()
    try:
        s3 = boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")
        s3.create_bucket(Bucket="bench-archive")
        bucket = ArchiveBucket(s3, "bench-archive")
        key = object_key("app_bench_0", DAY, 0)
        tracemalloc.start()
        start = time.perf_counter()
        written = maintainer.run(
            lambda c: bucket.write(key, p.archive_lines(c, "app_bench_0", DAY, detached=True))
        )
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = s3.head_object(Bucket="bench-archive", Key=key)["ContentLength"]
        print(
            f"   c. archive of one app's day (from the detached partition): {written:,} events"
            f" in {elapsed:5.1f} s ({written / elapsed:8,.0f} events/s), {size / 2**20:6.1f} MiB"
            f" gzip'd ({size / written:4.0f} bytes/event); peak Python memory"
            f" {peak / 2**20:5.1f} MiB"
        )
    finally:
        helper.stdin.close()
        helper.wait()


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    rows = int(os.environ.get("BENCH_DROP_ROWS", 1_000_000 if quick else 10_000_000))
    print("9. Retention: partitioned store, dropping a day, archiving a day")
    _store_versus_copy(env, 4 if quick else 10)
    built = _build_day(env, rows)
    print(f"   (built a {rows:,}-row day partition in {built:5.1f} s with generate_series)")
    _drop_and_archive_day(env, rows)
