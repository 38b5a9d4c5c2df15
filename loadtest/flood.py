"""A flood of the password routes (register, sign-in, reset confirm) with random addresses,
from "many machines": each connection comes from its own loopback address (127.x.y.z),
which the local runtime hands the function as API Gateway's sourceIp. Issue 24: ingest
must keep its latency while this goes on.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import uuid
from collections import Counter
from urllib.parse import urlsplit

PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a load pattern's password
ROUTES = ("/api/accounts/register", "/api/accounts/sign-in", "/api/accounts/password-reset/confirm")


class Flood:
    """`clients` threads, each posting to the hashing routes back to back until stopped."""

    def __init__(self, url: str, clients: int) -> None:
        self.parts = urlsplit(url)
        self.clients = clients
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _body(self, path: str) -> bytes:
        if path.endswith("/confirm"):
            return json.dumps({"token": f"{uuid.uuid4()}.x", "password": PASSWORD}).encode()
        address = f"flood-{uuid.uuid4().hex[:12]}@example.com"
        return json.dumps({"email": address, "password": PASSWORD}).encode()

    def _client(self, seed: int) -> None:
        rng = random.Random(seed)  # noqa: S311 - a load pattern, not a secret
        n = 0
        while not self._stop.is_set():
            # A new "machine" per request: the per-source limit never stops the flood.
            source = f"127.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            conn = http.client.HTTPConnection(
                self.parts.hostname, self.parts.port or 80, timeout=30, source_address=(source, 0)
            )
            path = ROUTES[n % len(ROUTES)]
            n += 1
            try:
                conn.request("POST", path, self._body(path), {"Content-Type": "application/json"})
                status = conn.getresponse().status
            except (OSError, http.client.HTTPException):
                status = 0
            finally:
                conn.close()
            with self._lock:
                self.statuses[status] += 1

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        for thread in self._threads:
            thread.join(35)
        return {str(status): count for status, count in sorted(self.statuses.items())}
