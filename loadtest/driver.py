"""Sends events over HTTP at a rate or a concurrency, and records every answer."""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class Sample:
    """One request: when it was due, when it was answered, and what was acknowledged."""

    due: float  # time.time() the request should have started (open loop) or did start
    answered: float
    status: int
    acknowledged: list[str] = field(default_factory=list)  # messageIds the answer accepted


@dataclass
class LoadPlan:
    url: str
    app_id: str
    api_key: str
    duration: float
    batch_size: int = 1  # 1: POST /api/logs/{app}; more: POST .../batch with that many
    rate: float | None = None  # requests per second (open loop); None: closed loop
    concurrency: int = 16
    invalid_ratio: float = 0.0
    run_id: str = ""


def make_event(plan: LoadPlan, number: int, rng: random.Random) -> dict:
    """A user_login event; an invalid one breaks the rule the load tool installs."""
    event = {
        "eventName": "user_login",
        "messageId": f"{plan.run_id}-{number}",
        "userId": number + 1,
        "method": "password",
        "device": {"os": "ios", "version": "17.2"},
    }
    if rng.random() < plan.invalid_ratio:
        event["userId"] = "not-a-number"
    return event


class Driver:
    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._parts = urlsplit(plan.url)
        self.sent = 0
        self.errors = 0
        self.stop_at = 0.0

    # -- one request -------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._parts.hostname, self._parts.port or 80, timeout=30)

    def _request(self, conn: http.client.HTTPConnection, rng: random.Random, due: float):
        plan = self.plan
        with self._lock:
            first = next(self._numbers)
            for _ in range(plan.batch_size - 1):
                next(self._numbers)
        events = [make_event(plan, first + i, rng) for i in range(plan.batch_size)]
        if plan.batch_size == 1:
            path, body = f"/api/logs/{plan.app_id}", events[0]
        else:
            path, body = f"/api/logs/{plan.app_id}/batch", events
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-Api-Key": plan.api_key}
        try:
            conn.request("POST", path, payload, headers)
            response = conn.getresponse()
            answer = response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()  # reconnects on the next request
            return Sample(due, time.time(), 0), conn
        answered = time.time()
        acknowledged: list[str] = []
        if status in (202, 422) and plan.batch_size == 1:
            acknowledged = [events[0]["messageId"]]
        elif status == 202:
            results = json.loads(answer)["results"]
            acknowledged = [
                events[r["index"]]["messageId"]
                for r in results
                if r["status"] in ("valid", "invalid")
            ]
        return Sample(due, answered, status, acknowledged), conn

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)
            self.sent += 1
            if sample.status not in (202, 422):
                self.errors += 1

    # -- loops ---------------------------------------------------------------------

    def _closed_loop(self, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - a load pattern, not a secret
        conn = self._connection()
        while (start := time.time()) < self.stop_at:
            sample, conn = self._request(conn, rng, start)
            self._record(sample)
        conn.close()

    def _open_loop(self, worker: int) -> None:
        """Worker `worker` of n takes every n-th slot of a fixed schedule.

        Latency counts from when a request was due, not when it was sent, so a
        stalled server shows up in the figures (no coordinated omission).
        """
        rng = random.Random(worker)  # noqa: S311 - a load pattern, not a secret
        conn = self._connection()
        interval = self.plan.concurrency / self.plan.rate
        due = self.start + worker / self.plan.rate
        while due < self.stop_at:
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)  # pacing the schedule, not waiting for a condition
            sample, conn = self._request(conn, rng, due)
            self._record(sample)
            due += interval
        conn.close()

    def stop(self) -> None:
        """Ends the load early: no request starts after this."""
        self.stop_at = time.time()

    def run(self, on_progress=None) -> None:
        self.start = time.time()
        self.stop_at = self.start + self.plan.duration
        target = self._open_loop if self.plan.rate else self._closed_loop
        threads = [
            threading.Thread(target=target, args=(n,), daemon=True)
            for n in range(self.plan.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)
                if on_progress:
                    on_progress(self)
        self.end = time.time()
