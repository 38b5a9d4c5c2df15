"""Store throughput for 1,000-message batches next to a raw COPY of the same rows.

Both paths write into the same events table, interleaved round by round, so the
table's growth and the machine's noise fall on both alike. The store path is the
real handler: pydantic check of every message while the COPY into events streams
them, a COPY of their messageIds into event_dedup, commit. COPY is the floor: rows
prepared beforehand, no conflict handling.
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
from datetime import UTC, datetime

import psycopg2
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.queued_events import QueuedEvent, pack, serialize_event
from sluice.store.events_data import COPY_EVENTS
from uuid_utils.compat import uuid7

import functions.store.app as store_app
from benchmarks.environment import BenchEnvironment, copy_line, typical_queued_event
from toolkit.lambda_events import sqs_event


class Context:
    function_name = "store"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:store"
    aws_request_id = "bench"


def queued_events(count: int) -> list[QueuedEvent]:
    now = datetime.now(UTC)
    return [
        typical_queued_event("app_bench", i, now, message_id=f"m-{uuid7()}") for i in range(count)
    ]


def copy_text(events: list[QueuedEvent]) -> str:
    lines = []
    for e in events:
        values = {
            "event_id": str(e.event_id),
            "app_id": e.app_id,
            "event_name": e.event_name,
            "payload": e.payload,
            "status": e.status,
            "validation_errors": "\\N",
            "message_id": e.message_id,
            "client_timestamp": e.client_timestamp.isoformat(),
            "sent_at": e.sent_at.isoformat(),
            "occurred_at": e.occurred_at.isoformat(),
            "received_at": e.received_at.isoformat(),
        }
        lines.append(
            copy_line({k: v.replace("\\", "\\\\") if v != "\\N" else v for k, v in values.items()})
        )
    return "\n".join(lines) + "\n"


def store_round(events_per_message: int, messages: int) -> tuple[dict, int]:
    events = queued_events(events_per_message * messages)
    bodies: list[str] = []
    serialized = [serialize_event(e) for e in events]
    for start in range(0, len(serialized), events_per_message):
        bodies += [
            body.decode() for body, _ in pack(serialized[start : start + events_per_message])
        ]
    return sqs_event(bodies), len(events)


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    database = Database(DatabaseSettings(url=env.database_url))
    store_app.database = lambda: database
    copy_conn = psycopg2.connect(env.database_url)
    context = Context()
    rounds = 4 if quick else 10
    print("2. Store throughput, 1,000-message batches, interleaved with COPY of the same rows")
    for events_per_message in (1, 10):
        store_rates, copy_rates = [], []
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            for _ in range(rounds):
                event, count = store_round(events_per_message, 1_000)
                start = time.perf_counter()
                response = store_app.handler(event, context)
                store_rates.append(count / (time.perf_counter() - start))
                assert response["batchItemFailures"] == [], response

                text = copy_text(queued_events(count))
                start = time.perf_counter()
                with copy_conn, copy_conn.cursor() as cur:
                    cur.copy_expert(COPY_EVENTS, io.StringIO(text))
                copy_rates.append(count / (time.perf_counter() - start))
        store_rate, copy_rate = statistics.median(store_rates), statistics.median(copy_rates)
        print(
            f"   {events_per_message:>2} event(s) per message: store {store_rate:9,.0f} rows/s,"
            f" COPY {copy_rate:9,.0f} rows/s -> {store_rate / copy_rate:5.0%} of COPY"
            f" (target >= 50%)"
        )
    with copy_conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM events")
        print(f"   (table held {cur.fetchone()[0]:,} rows at the end)")
    copy_conn.close()
    database.close()
