"""`python -m loadtest.drain`: how fast a running `make dev` stores a full queue, no ingest load.

    python -m loadtest.drain --fill-seconds 30 --concurrency 8 --batch-size 100

It holds the store back (the events queue's DelaySeconds at 900: every message
ingest sends waits), fills the queue through the API with `python -m loadtest`'s
batches for --fill-seconds, then makes every queued message visible at once and
measures stored events per second until the queue is empty; then a raw COPY of as
many rows (`--copy-baseline`'s), for the ratio. Only with the local_queue `make dev`
starts: the release is an UPDATE of its table.

`make dev` runs the aggregator every minute, and its run over what the drain stored
works the same two cores: where it fell inside a drain, it kept PostgreSQL about as
busy as the store's own COPYs. The COPY runs without it, so the queue is released
just after a scheduled run that found the counts caught up, and the next (a minute on)
comes after the drain and the COPY; the report says if it did not. `--with-aggregator`
releases at once.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import boto3
import psycopg2
from botocore import UNSIGNED
from botocore.config import Config

from loadtest import cpu
from loadtest.__main__ import STATE_FILE, baseline_rows, copy_baseline, remove_baseline
from loadtest.__main__ import main as load

QUEUE = "EventsQueue"  # the template's queue the store drains
QUEUE_DATABASE = "local_queues"  # where make dev's local_queue keeps its messages
# make dev's schedule is a minute (local-env.json); after a restart the first run or two
# count what the last drain stored.
AGGREGATOR_WAIT = 180.0
QUIET = timedelta(seconds=5)  # between two runs; a run's chunks follow each other closely


def _count(database_url: str) -> int:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM events")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _held(queue_database: str, name: str) -> int:
    """Messages the queue holds, delayed ones too (SQS's attributes leave those out)."""
    conn = psycopg2.connect(queue_database)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM local_sqs.messages "
                "WHERE queue_id = (SELECT id FROM local_sqs.queues WHERE name = %s)",
                (name,),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def _queued(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def aggregator_position(conn) -> tuple[datetime | None, bool]:
    """When the aggregator last moved its position (each chunk of a run does, with new
    rows or none), and whether its window was closed then: caught up, not a chunk of a
    run that goes on."""
    with conn.cursor() as cur:
        cur.execute("SELECT updated_at, target IS NULL FROM aggregate_position")
        row = cur.fetchone()
    return (row[0], row[1]) if row else (None, False)


def wait_for_aggregator(conn, since: datetime | None, timeout: float) -> bool:
    """Whether, within `timeout` seconds, a run of the aggregator came and went at once:
    caught up, and QUIET after the last move seen (`since` to begin with). The next
    scheduled run is then a whole period away. The end of a catch-up (the first runs
    after a restart count what the last drain stored) follows its own chunks closely."""
    deadline = time.monotonic() + timeout
    last = since
    while time.monotonic() < deadline:
        moved, caught_up = aggregator_position(conn)
        if moved != last:
            if caught_up and (last is None or moved is None or moved - last >= QUIET):
                return True
            last = moved
        time.sleep(0.2)  # polling a condition the schedule ends
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.drain", description=__doc__)
    parser.add_argument("--fill-seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--with-aggregator",
        action="store_true",
        help="release at once, whenever the aggregator's scheduled run falls",
    )
    args = parser.parse_args(argv)
    state = json.loads(STATE_FILE.read_text())
    database_url = state["database_url"]
    queue_database = urlunsplit(urlsplit(database_url)._replace(path="/" + QUEUE_DATABASE))
    sqs = boto3.client(
        "sqs",
        endpoint_url=state["sqs_endpoint_url"],
        region_name=state["region"],
        config=Config(signature_version=UNSIGNED),
    )
    url = state["queue_urls"][QUEUE]
    name = url.rsplit("/", 1)[-1]

    sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "900"})
    try:
        before = _count(database_url)
        load(
            [
                "--duration",
                str(args.fill_seconds),
                "--concurrency",
                str(args.concurrency),
                "--batch-size",
                str(args.batch_size),
                "--drain-timeout",
                "0",
                "--quiet",
            ]
        )
    finally:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "0"})
    # The COPY's rows are made now, while nothing is timed: made after the drain, they
    # took a quarter of the minute before the aggregator's next run. A message holds at
    # most one request's events.
    rows = baseline_rows(
        _held(queue_database, name) * args.batch_size, "dr" + uuid.uuid4().hex[:10]
    )
    watching = psycopg2.connect(database_url)
    watching.autocommit = True
    moved, _ = aggregator_position(watching)
    if not args.with_aggregator:
        print("\nwaiting for the aggregator's scheduled run, to release after it", flush=True)
        if wait_for_aggregator(watching, moved, AGGREGATOR_WAIT):
            moved, _ = aggregator_position(watching)
        else:
            print(f"no aggregator run in {AGGREGATOR_WAIT:.0f} s; releasing anyway")
    conn = psycopg2.connect(queue_database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "UPDATE local_sqs.messages SET visible_at = %s "
                "WHERE queue_id = (SELECT id FROM local_sqs.queues WHERE name = %s)",
                (int(time.time() * 1000), name),
            )
            messages = cur.rowcount
    finally:
        conn.close()
    postmaster = cpu.postmaster_pid(STATE_FILE.parent)
    cpu_before = cpu.snapshot(state["pid"], postmaster)
    started = time.monotonic()
    print(f"\nreleased {messages} queued messages; draining", flush=True)
    while _queued(sqs, url):
        time.sleep(0.2)  # polling interval of a condition the store ends
    elapsed = time.monotonic() - started
    cpu_after = cpu.snapshot(state["pid"], postmaster)
    stored = _count(database_url) - before
    rate = stored / elapsed
    copy = copy_baseline(database_url, rows[:stored])
    aggregated = aggregator_position(watching)[0] != moved
    remove_baseline(database_url, rows)
    print(f"drained {stored:,} events in {elapsed:.1f} s: {rate:,.0f} stored/s")
    for group, ms in cpu.per_request(cpu_before, cpu_after, stored).items():
        if ms:  # the functions the drain never ran
            print(f"  CPU {group:34} {ms * 1000:8.1f} us per event")
    print(f"raw COPY of as many rows:  {copy:,.0f} rows/s; the drain is {rate / copy:.0%} of it")
    if aggregated:
        print("the aggregator ran during the drain or the COPY: these figures include its work")
    watching.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
