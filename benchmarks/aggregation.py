"""Aggregation: a first run over 1,000,000 stored events, a run over 10,000 new ones
among them, and a 30-day hourly stats query.

Events are written with COPY in transactions of 100,000 (then 1,000 for the new ones),
as the store function's batches would leave them: spread over 60 days of occurred_at,
20 event names, two statuses, 50,000 users, a few apps.
"""

from __future__ import annotations

import io
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg2
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.rollups import aggregate
from sluice.rollups.stats import stats_series
from sluice.store.events_data import COPY_EVENTS

from benchmarks.environment import BenchEnvironment, copy_line

APPS = [f"app_bench_{i}" for i in range(4)]
NAMES = [f"event_{i}" for i in range(20)]
END = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 60
USERS = 20_000  # per app: a few thousand active on a day


class _Arrivals:
    """Events as they reach the store: in time order, ids growing (UUIDv7 as ingest makes
    them), occurred_at close to their arrival but 5 % late by up to a week."""

    def __init__(self, total: int, rng: random.Random) -> None:
        self.total = total
        self.rng = rng
        self.sent = 0

    def rows(self, count: int) -> str:
        rng = self.rng
        lines = []
        span = DAYS * 86400
        for _ in range(count):
            self.sent += 1
            arrived = END - timedelta(seconds=span * (1 - min(self.sent, self.total) / self.total))
            late = rng.random() < 0.05
            occurred = arrived - timedelta(seconds=rng.randrange(7 * 86400 if late else 600))
            iso = occurred.isoformat()
            user = rng.randrange(USERS)
            name = rng.choice(NAMES)
            payload = f'{{"eventName": "{name}", "userId": {user}, "plan": "pro"}}'
            lines.append(
                copy_line(
                    {
                        "event_id": str(uuid.UUID(int=(self.sent << 64) | rng.getrandbits(64))),
                        "app_id": rng.choice(APPS),
                        "event_name": name,
                        "payload": payload,
                        "status": "valid" if rng.random() < 0.9 else "invalid",
                        "validation_errors": "\\N",
                        "message_id": "\\N",
                        "client_timestamp": iso,
                        "sent_at": iso,
                        "occurred_at": iso,
                        "received_at": arrived.isoformat(),
                    }
                )
            )
        return "\n".join(lines) + "\n"


def _copy(conn, arrivals: _Arrivals, count: int, per_transaction: int) -> None:
    for _ in range(count // per_transaction):
        text = arrivals.rows(per_transaction)
        with conn, conn.cursor() as cur:
            cur.copy_expert(COPY_EVENTS, io.StringIO(text))


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    total = 200_000 if quick else 1_000_000
    print(f"5. Aggregation over {total:,} stored events (chunks of 20,000)")
    rng = random.Random(12)  # noqa: S311 - test data
    conn = psycopg2.connect(env.database_url)
    with conn, conn.cursor() as cur:  # the store benchmark's rows would add to the first run
        cur.execute("TRUNCATE events")
    arrivals = _Arrivals(total, rng)
    _copy(conn, arrivals, total, 100_000)
    # What autovacuum would have done to a table that grew this way over days.
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE events")
    conn.autocommit = False
    database = Database(DatabaseSettings(url=env.database_url))

    start = time.perf_counter()
    first = aggregate.run(database, 20_000)
    seconds = time.perf_counter() - start
    print(
        f"   first run: {first.counted:,} events in {first.chunks} chunks, {seconds:6.2f} s"
        f" (target <= 10 s)"
    )

    _copy(conn, arrivals, 10_000, 1_000)
    start = time.perf_counter()
    second = aggregate.run(database, 20_000)
    seconds = time.perf_counter() - start
    print(
        f"   10,000 new among {total:,}: {second.counted:,} counted, {second.scanned:,} read,"
        f" {seconds * 1000:6.0f} ms (target <= 500 ms)"
    )
    idle = time.perf_counter()
    aggregate.run(database, 20_000)
    print(f"   a run with nothing new: {(time.perf_counter() - idle) * 1000:5.1f} ms")

    timings = []
    for i in range(50 if quick else 300):
        app = APPS[i % len(APPS)]
        name = None if i % 2 else NAMES[i % len(NAMES)]
        begin = time.perf_counter()
        with conn:
            series = stats_series(conn, app, END - timedelta(days=30), END, "hour", name)
        timings.append(time.perf_counter() - begin)
        assert len(series.points) == 30 * 24
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"   30-day hourly stats query: median {statistics.median(timings) * 1000:5.1f} ms,"
        f" p99 {p99 * 1000:5.1f} ms (target <= 50 ms)"
    )
    _route_timings(env, conn, quick)
    conn.close()
    database.close()


def _route_timings(env: BenchEnvironment, conn, quick: bool) -> None:
    """The same query through the manage function's handler, as API Gateway calls it:
    the session lookup, the owner check, the query string, the JSON answer."""
    from urllib.parse import urlencode

    from sluice.accounts.sessions import open_session
    from sluice.core.clock import SystemClock
    from sluice.manage.manage import Manager

    import functions.manage.app as manage_app
    from toolkit.lambda_events import http_event

    owner = uuid.uuid4()
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts (account_id, email, password_hash, created_at,"
            " password_changed_at) VALUES (%s, %s, 'scrypt$unused', now(), now())",
            (owner, f"bench-{owner.hex[:8]}@example.com"),
        )
        cur.executemany(
            "INSERT INTO apps (app_id, name, owner_account_id) VALUES (%s, 'bench', %s)"
            " ON CONFLICT (app_id) DO UPDATE SET owner_account_id = EXCLUDED.owner_account_id",
            [(app, owner) for app in APPS],
        )
        session = open_session(conn, owner, datetime.now(UTC))
    # As in AWS: the manage function's own role.
    service = Manager(
        Database(DatabaseSettings(url=env.database_url, user="sluice_manage")), SystemClock()
    )
    manage_app.manager = lambda: service  # the handler's cached builder, for this process

    class Context:
        function_name = "bench"
        memory_limit_in_mb = 256
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
        aws_request_id = "bench"

    timings = []
    for i in range(50 if quick else 300):
        app = APPS[i % len(APPS)]
        query = {"from": (END - timedelta(days=30)).isoformat(), "to": END.isoformat()}
        if not i % 2:
            query["event_name"] = NAMES[i % len(NAMES)]
        event = http_event(
            f"/api/apps/{app}/stats",
            method="GET",
            headers={"authorization": f"Bearer {session.token}"},
        )
        event["rawQueryString"] = urlencode(query)
        begin = time.perf_counter()
        response = manage_app.handler(event, Context())
        timings.append(time.perf_counter() - begin)
        assert response["statusCode"] == 200, response["body"]
    timings.sort()
    p99 = timings[int(len(timings) * 0.99) - 1]
    print(
        f"   the same through the stats route's handler: median"
        f" {statistics.median(timings) * 1000:5.1f} ms, p99 {p99 * 1000:5.1f} ms"
    )
    service.database.close()
