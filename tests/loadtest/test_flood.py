"""The password flood of `make loadtest ARGS="--password-flood N"`: the hashing routes, from
many sources, against a server that records what reached it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loadtest.flood import ROUTES, Flood
from tests.support import wait_for


class Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recorder.seen.append((self.client_address[0], self.path, body))
        self.send_response(429)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_flood_posts_every_hashing_route_from_many_sources_with_random_addresses():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    flood = Flood(f"http://127.0.0.1:{server.server_port}", clients=3)
    try:
        flood.start()
        wait_for(lambda: len(Recorder.seen) >= 30)
        statuses = flood.stop()
    finally:
        server.shutdown()
        server.server_close()

    sources = {source for source, _, _ in Recorder.seen}
    paths = {path for _, path, _ in Recorder.seen}
    addresses = [body["email"] for _, _, body in Recorder.seen if "email" in body]
    assert len(sources) > 20  # a "machine" per request: no per-source limit stops it
    assert all(source.startswith("127.") for source in sources)
    assert paths == set(ROUTES)
    assert len(set(addresses)) == len(addresses)
    assert set(statuses) == {"429"} and sum(statuses.values()) >= 30
