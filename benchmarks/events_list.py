"""Listing an app's events through the management API's query: 100 newest events, filtered
or not, from an app holding 1,000,000, and the plan that serves it (an index, not a scan).
"""

from __future__ import annotations

import io
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
from sluice.manage.manage_data import list_events
from sluice.store.events_data import COPY_EVENTS

from benchmarks.environment import BenchEnvironment, copy_line

APP = "app_bench_list"
OTHER_APP = "app_bench_other"
END = datetime(2026, 3, 1, tzinfo=UTC)
NAMES = [f"event_{i}" for i in range(20)]


def _rows(rng: random.Random, app_id: str, start: int, count: int, total: int) -> str:
    span = 60 * 86400
    lines = []
    for n in range(start, start + count):
        occurred = (END - timedelta(seconds=span * (1 - n / total))).isoformat()
        name = rng.choice(NAMES)
        lines.append(
            copy_line(
                {
                    "event_id": str(uuid.UUID(int=(n << 64) | rng.getrandbits(64))),
                    "app_id": app_id,
                    "event_name": name,
                    "payload": f'{{"eventName": "{name}", "userId": {rng.randrange(50_000)}}}',
                    "status": "valid" if rng.random() < 0.9 else "invalid",
                    "validation_errors": "\\N",
                    "message_id": "\\N",
                    "client_timestamp": occurred,
                    "sent_at": occurred,
                    "occurred_at": occurred,
                    "received_at": occurred,
                }
            )
        )
    return "\n".join(lines) + "\n"


def _load(conn, total: int) -> None:
    rng = random.Random(7)  # noqa: S311 - test data
    with conn, conn.cursor() as cur:
        cur.execute("TRUNCATE events")
    step = 100_000
    for start in range(0, total, step):
        for app_id in (APP, OTHER_APP) if start % (4 * step) == 0 else (APP,):
            with conn, conn.cursor() as cur:
                cur.copy_expert(
                    COPY_EVENTS,
                    io.StringIO(_rows(rng, app_id, start, step, total)),
                )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE events")
    conn.autocommit = False


def _timings(conn, rounds: int, **filters) -> tuple[float, float, int]:
    figures = []
    rows = []
    for _ in range(rounds):
        start = time.perf_counter()
        with conn:
            rows = list_events(conn, APP, limit=100, **filters)
        figures.append(time.perf_counter() - start)
    figures.sort()
    p99 = figures[min(len(figures) - 1, int(len(figures) * 0.99))]
    return statistics.median(figures) * 1e3, p99 * 1e3, len(rows)


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    total = 200_000 if quick else 1_000_000
    rounds = 50 if quick else 300
    conn = psycopg2.connect(env.database_url)
    _load(conn, total)
    print(f"8. Listing 100 events of an app holding {total:,} (management API's query)")
    middle = END - timedelta(days=30)
    cases = {
        "newest page": {},
        "status=invalid": {"status": "invalid"},
        "event_name=event_3": {"event_name": "event_3"},
        "30 days back (cursor)": {"after": (middle, uuid.UUID(int=2**128 - 1))},
    }
    for label, filters in cases.items():
        p50, p99, count = _timings(conn, rounds, **filters)
        print(f"   {label:24s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   ({count} rows)")
    with conn, conn.cursor() as cur:
        cur.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT event_id FROM events"
            " WHERE app_id = %s ORDER BY occurred_at DESC, event_id DESC LIMIT 100",
            (APP,),
        )
        plan = [line for (line,) in cur.fetchall()]
    print("   plan of the newest page:")
    for line in plan:
        print(f"     {line}")
    conn.close()
