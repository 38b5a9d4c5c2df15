"""`make loadtest ARGS="..."`: load a running `make dev` stack, then report.

    python -m loadtest --duration 60 --batch-size 100 --concurrency 8
    python -m loadtest --duration 60 --rate 450 --concurrency 32 --invalid-ratio 0.1
    python -m loadtest ... --json results.json
    python -m loadtest --wrk --duration 20 --concurrency 32          # wrk, one event per request
    python -m loadtest --duration 20 --batch-size 100 --copy-baseline  # and a raw COPY after
    python -m loadtest --duration 20 --rate 100 --password-flood 16   # quiet, then flooded

It finds the stack through the state file `make dev` writes (.local/dev/runtime.json:
API URL and DATABASE_URL), or --url and --database-url. Each run makes an app of
its own, with a rule and a key, so its events are easy to find and count.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import psycopg2
from sluice.manage import admin
from sluice.store import events_data
from uuid_utils.compat import uuid7

from loadtest import cpu
from loadtest.driver import Driver, LoadPlan, make_event
from loadtest.flood import Flood
from loadtest.stats import latency_summary
from toolkit import wrk

STATE_FILE = Path(".local/dev/runtime.json")  # written by a running `make dev`
RULE = {
    "type": "object",
    "required": ["userId"],
    "properties": {"userId": {"type": "integer"}, "method": {"enum": ["password", "sso"]}},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="API base URL (default: from .local/dev/runtime.json)")
    parser.add_argument(
        "--database-url", help="the stack's PostgreSQL (default: from .local/dev/runtime.json)"
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument(
        "--rate", type=float, help="requests per second, open loop (default: closed loop)"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--batch-size", type=int, default=1, help="events per request; >1 uses /batch"
    )
    parser.add_argument(
        "--invalid-ratio", type=float, default=0.0, help="share of events that break the rule"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=120.0, help="seconds to wait for storage"
    )
    parser.add_argument(
        "--wrk",
        action="store_true",
        help="drive single events with wrk (toolkit/one_event.lua) instead of Python threads",
    )
    parser.add_argument(
        "--copy-baseline",
        action="store_true",
        help="after the load, COPY as many rows straight into the events table, for the ratio",
    )
    parser.add_argument(
        "--password-flood",
        type=int,
        metavar="CLIENTS",
        help="run the load twice, quiet and while CLIENTS flood the password routes"
        " from random sources, and compare ingest's latency",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stack_location(args: argparse.Namespace) -> tuple[str, str]:
    state = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    if state and not _alive(state.get("pid")):
        state = {}  # left behind by a make dev that was killed
    url = args.url or state.get("api_url")
    database_url = args.database_url or state.get("database_url")
    if not url or not database_url:
        sys.exit("no running stack found: start `make dev`, or pass --url and --database-url")
    return url.rstrip("/"), database_url


def create_load_app(database_url: str, run_id: str) -> tuple[str, str]:
    conn = psycopg2.connect(database_url)
    try:
        with conn:
            app_id = admin.create_app(conn, f"loadtest {run_id}")
            key = admin.create_api_key(conn, app_id)
            admin.put_rule(conn, app_id, "user_login", RULE)
    finally:
        conn.close()
    return app_id, key


def progress_bar(driver: Driver) -> None:
    elapsed = time.time() - driver.start
    share = min(1.0, elapsed / driver.plan.duration)
    filled = int(share * 30)
    acknowledged = sum(len(s.acknowledged) for s in driver.samples)
    sys.stderr.write(
        f"\r[{'#' * filled}{'.' * (30 - filled)}] {elapsed:5.1f}s  requests {driver.sent:>7}"
        f"  events acked {acknowledged:>8}  errors {driver.errors:>5}  "
    )
    sys.stderr.flush()


def stored_times(database_url: str, app_id: str) -> dict[str, float]:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT message_id, extract(epoch FROM stored_at) FROM events WHERE app_id = %s",
                (app_id,),
            )
            return {message_id: float(epoch) for message_id, epoch in cur.fetchall()}
    finally:
        conn.close()


def wait_for_storage(
    database_url: str, app_id: str, expected: int, timeout: float, quiet: bool
) -> dict[str, float]:
    """Polls until every acknowledged event is stored, or nothing new arrives for `timeout` s."""
    stored = stored_times(database_url, app_id)
    last_change, last_count = time.time(), len(stored)
    while len(stored) < expected and time.time() - last_change < timeout:
        time.sleep(0.5)  # polling interval of a condition with a deadline
        stored = stored_times(database_url, app_id)
        if len(stored) != last_count:
            last_change, last_count = time.time(), len(stored)
        if not quiet:
            sys.stderr.write(f"\rdraining: {len(stored):>8} of {expected} stored   ")
            sys.stderr.flush()
    if not quiet:
        sys.stderr.write("\n")
    return stored


def stored_count(database_url: str, app_id: str) -> tuple[int, float | None]:
    """How many events of the app are stored, and when the last one was (epoch s)."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), extract(epoch FROM max(stored_at)) FROM events WHERE app_id = %s",
                (app_id,),
            )
            count, last = cur.fetchone()
            return count, None if last is None else float(last)
    finally:
        conn.close()


def stack_pids() -> tuple[int, int | None] | None:
    """The running `make dev`'s pid and its embedded PostgreSQL's, from the state folder."""
    state = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    if not _alive(state.get("pid")):
        return None
    return int(state["pid"]), cpu.postmaster_pid(STATE_FILE.parent)


def run_wrk(args: argparse.Namespace, url: str, database_url: str, app_id: str, key: str) -> dict:
    """wrk's load, then storage: every 2xx answer counted must come to be stored.

    With the stack's pid known (its state file), the CPU each of its processes spent
    from the load's start until the last event was stored, per acknowledged request.
    """
    pids = stack_pids()
    before = cpu.snapshot(*pids) if pids else None
    figures = wrk.run(url, app_id, key, args.duration, args.concurrency)
    acknowledged = figures["requests"] - figures["non_2xx"]
    count, last = stored_count(database_url, app_id)
    last_change = time.time()
    while count < acknowledged and time.time() - last_change < args.drain_timeout:
        time.sleep(0.2)  # polling interval of a condition with a deadline
        new_count, last = stored_count(database_url, app_id)
        if new_count != count:
            count, last_change = new_count, time.time()
    load_seconds = figures["end"] - figures["start"]
    cpu_ms = None
    if pids and before is not None:
        cpu_ms = cpu.per_request(before, cpu.snapshot(*pids), acknowledged)
    return {
        "tool": "wrk",
        "plan": {"duration_s": args.duration, "connections": args.concurrency},
        "requests": figures["requests"],
        "non_2xx": figures["non_2xx"],
        "socket_errors": figures["socket_errors"],
        "acknowledged_per_s": figures["requests_per_s"],
        "latency_request_to_answer_ms": figures["latency_ms"],
        # wrk counts no request still in flight when it stops; those may be stored too.
        "events_stored": count,
        "stored_per_s": round(count / max(load_seconds, (last or 0) - figures["start"]), 1),
        "drain_s_after_load": round(max(0.0, (last or figures["end"]) - figures["end"]), 2),
        "acknowledged_missing": max(0, acknowledged - count),
        "cpu_ms_per_acknowledged_request": cpu_ms,
    }


def baseline_rows(count: int, run_id: str) -> list[dict]:
    """`count` events like the load's, as the store writes them, for copy_baseline."""
    app_id = f"copy_{run_id}"
    plan = LoadPlan(url="", app_id=app_id, api_key="", duration=0, run_id=run_id)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    return [
        {
            "event_id": str(uuid7()),
            "app_id": app_id,
            "event_name": "user_login",
            "payload": orjson.dumps(make_event(plan, i, random.Random(i))).decode(),  # noqa: S311
            "status": "valid",
            "validation_errors": None,
            "message_id": f"{run_id}-copy-{i}",
            "client_timestamp": None,
            "sent_at": None,
            "occurred_at": now,
            "received_at": now,
        }
        for i in range(count)
    ]


def copy_baseline(database_url: str, rows: list[dict]) -> float:
    """Rows/s of a raw COPY of `rows` (baseline_rows'), 1,000 per commit; remove_baseline
    deletes them.

    The floor the store path is compared with: the same table, rows prepared beforehand,
    no queue, no conflict handling (events_data.copy_events, which the store itself uses).
    """
    conn = psycopg2.connect(database_url)
    try:
        start = time.perf_counter()
        for first in range(0, len(rows), 1000):
            with conn:
                events_data.copy_events(conn, rows[first : first + 1000])
        return round(len(rows) / (time.perf_counter() - start), 1)
    finally:
        conn.close()


def remove_baseline(database_url: str, rows: list[dict]) -> None:
    conn = psycopg2.connect(database_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM events WHERE app_id = %s", (rows[0]["app_id"],))
    finally:
        conn.close()


def report(driver: Driver, stored: dict[str, float]) -> dict:
    samples = driver.samples
    load_seconds = driver.end - driver.start
    acknowledged = {(mid, s.answered) for s in samples for mid in s.acknowledged}
    ack_time = dict(acknowledged)
    statuses: dict[str, int] = {}
    for sample in samples:
        statuses[str(sample.status)] = statuses.get(str(sample.status), 0) + 1
    missing = [mid for mid in ack_time if mid not in stored]
    stored_in_window = sum(1 for t in stored.values() if t <= driver.end)
    last_stored = max(stored.values(), default=driver.end)
    return {
        "plan": {
            "duration_s": driver.plan.duration,
            "batch_size": driver.plan.batch_size,
            "rate_rps": driver.plan.rate,
            "concurrency": driver.plan.concurrency,
            "invalid_ratio": driver.plan.invalid_ratio,
        },
        "requests": len(samples),
        "statuses": statuses,
        "requests_per_s": round(len(samples) / load_seconds, 1),
        "events_acknowledged": len(ack_time),
        "acknowledged_per_s": round(len(ack_time) / load_seconds, 1),
        "events_stored": len(stored),
        "stored_per_s_during_load": round(stored_in_window / load_seconds, 1),
        "drain_s_after_load": round(max(0.0, last_stored - driver.end), 2),
        "latency_request_to_202_ms": latency_summary([s.answered - s.due for s in samples]),
        "latency_202_to_stored_ms": latency_summary(
            [stored[mid] - t for mid, t in ack_time.items() if mid in stored]
        ),
        "acknowledged_missing": len(missing),
    }


def print_report(result: dict) -> None:
    plan = result["plan"]
    mode = f"{plan['rate_rps']} req/s open loop" if plan["rate_rps"] else "closed loop"
    print(
        f"\n{result['requests']} requests of {plan['batch_size']} event(s), {mode},"
        f" {plan['concurrency']} connections, {plan['duration_s']:.0f} s;"
        f" statuses {result['statuses']}"
    )
    print(f"  requests/s                 {result['requests_per_s']:>10,.1f}")
    print(f"  events acknowledged/s      {result['acknowledged_per_s']:>10,.1f}")
    print(f"  events stored/s (in load)  {result['stored_per_s_during_load']:>10,.1f}")
    print(f"  backlog drained in         {result['drain_s_after_load']:>10.2f} s after the load")
    for name, key in (
        ("request -> 202", "latency_request_to_202_ms"),
        ("202 -> stored", "latency_202_to_stored_ms"),
    ):
        figures = result[key]
        print(
            f"  {name:<16} ms     p50 {figures['p50']}  p95 {figures['p95']}"
            f"  p99 {figures['p99']}  max {figures['max']}"
        )
    print(f"  acknowledged but missing   {result['acknowledged_missing']:>10}")
    if "copy_rows_per_s" in result:
        copy = result["copy_rows_per_s"]
        share = result["stored_per_s_during_load"] / copy if copy else 0
        print(f"  raw COPY of as many rows   {copy:>10,.1f} rows/s; stored/s is {share:.0%} of it")


def print_wrk_report(result: dict) -> None:
    latency = result["latency_request_to_answer_ms"]
    print(
        f"\nwrk, one event per request, {result['plan']['connections']} connections,"
        f" {result['plan']['duration_s']:.0f} s: {result['requests']} requests,"
        f" {result['non_2xx']} not 2xx {result['socket_errors']}"
    )
    print(f"  acknowledged requests/s    {result['acknowledged_per_s']:>10,.1f}")
    print(f"  request -> answer ms       p50 {latency.get('p50')}  p99 {latency.get('p99')}")
    print(f"  events stored/s            {result['stored_per_s']:>10,.1f}")
    print(f"  backlog drained in         {result['drain_s_after_load']:>10.2f} s after the load")
    print(f"  acknowledged but missing   {result['acknowledged_missing']:>10}")
    cpu_ms = result.get("cpu_ms_per_acknowledged_request")
    if cpu_ms:
        print("  CPU ms per acknowledged request, by process (load and drain):")
        for group, ms in cpu_ms.items():
            if ms or group == "total":  # idle functions' workers: in --json only
                print(f"    {group:<40} {ms:>8.3f}")


def flood_comparison(args: argparse.Namespace, plan: LoadPlan, database_url: str) -> int:
    """Ingest's load without, then with, a flood of the password routes (issue 24)."""
    # Untimed first: ingest's workers start cold, which would weigh on the quiet run only.
    Driver(replace(plan, duration=min(5.0, plan.duration), run_id=f"{plan.run_id}-warm")).run()
    results = {}
    for label, clients in (("quiet", 0), ("flooded", args.password_flood)):
        # An app per run, so each counts only its own stored events.
        app_id, key = create_load_app(database_url, f"{plan.run_id}-{label}")
        flood = Flood(plan.url, clients)
        flood.start()
        driver = Driver(replace(plan, app_id=app_id, api_key=key, run_id=f"{plan.run_id}-{label}"))
        driver.run(None if args.quiet else progress_bar)
        flood_statuses = flood.stop()
        if not args.quiet:
            sys.stderr.write("\n")
        expected = sum(len(s.acknowledged) for s in driver.samples)
        stored = wait_for_storage(database_url, app_id, expected, args.drain_timeout, args.quiet)
        result = report(driver, stored)
        result["password_flood"] = {"clients": clients, "statuses": flood_statuses}
        print(f"\n{label}: {clients} clients flooding the password routes")
        print_report(result)
        results[label] = result
    quiet, flooded = (results[k]["latency_request_to_202_ms"] for k in ("quiet", "flooded"))
    print(
        f"\ningest request -> 202 ms, quiet / flooded: p50 {quiet['p50']} / {flooded['p50']},"
        f" p99 {quiet['p99']} / {flooded['p99']};"
        f" the flood's answers {results['flooded']['password_flood']['statuses']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 1 if any(r["acknowledged_missing"] for r in results.values()) else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url, database_url = stack_location(args)
    run_id = "lt" + uuid.uuid4().hex[:10]
    app_id, key = create_load_app(database_url, run_id)
    if args.wrk:
        result = run_wrk(args, url, database_url, app_id, key)
        print_wrk_report(result)
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
        return 1 if result["acknowledged_missing"] else 0
    plan = LoadPlan(
        url=url,
        app_id=app_id,
        api_key=key,
        duration=args.duration,
        batch_size=args.batch_size,
        rate=args.rate,
        concurrency=args.concurrency,
        invalid_ratio=args.invalid_ratio,
        run_id=run_id,
    )
    if args.password_flood:
        return flood_comparison(args, plan, database_url)
    driver = Driver(plan)
    driver.run(None if args.quiet else progress_bar)
    if not args.quiet:
        sys.stderr.write("\n")
    expected = sum(len(s.acknowledged) for s in driver.samples)
    stored = wait_for_storage(database_url, app_id, expected, args.drain_timeout, args.quiet)
    result = report(driver, stored)
    if args.copy_baseline:
        rows = baseline_rows(len(stored), run_id)
        result["copy_rows_per_s"] = copy_baseline(database_url, rows)
        remove_baseline(database_url, rows)
    print_report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 1 if result["acknowledged_missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
