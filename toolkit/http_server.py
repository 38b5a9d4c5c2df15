"""A small threaded HTTP/1.1 keep-alive server: local_queue's SQS endpoint and the runtime's API.

Clients here (botocore, wrk, SDKs, curl) keep connections alive and send one request
at a time per connection with Content-Length, so a thread per connection reading
requests in a loop is enough: no thread is started and no TCP handshake is made per
request, which was most of what http.server's HTTP/1.0 cost per request. Each answer
goes out in one write with TCP_NODELAY (headers and body in separate segments would
meet the peer's delayed ACK and stall for ~40 ms).

`stop()` stops accepting, closes the idle connections, lets a request being answered
finish (its answer says `Connection: close`), and waits for those threads.

Still hand-written, on purpose for now: issue 26, which owns the runtime's request
path, replaces it for both packages with an event-loop server (uvicorn or granian),
measured against the design it replaces; issue 22 (tools that stand alone) only moved
it here, out of local_queue, so that neither tool imports the other.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus

MAX_BODY = 16 * 1024 * 1024
MAX_LINE = 65536
MAX_HEADERS = 200


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query, as sent
    version: str  # "HTTP/1.1"
    header_pairs: list[tuple[str, str]]  # as received: names' case and repeated names kept
    body: bytes
    client: tuple[str, int]

    @cached_property
    def headers(self) -> dict[str, str]:
        """Lower-case names; of a repeated name, the last value."""
        return {name.lower(): value for name, value in self.header_pairs}


Headers = Mapping[str, str] | Iterable[tuple[str, str]]
App = Callable[[HttpRequest], tuple[int, Headers, bytes]]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class _Connection(socketserver.StreamRequestHandler):
    rbufsize = 64 * 1024
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.busy = False
        self.server.track(self, True)

    def finish(self) -> None:
        self.server.track(self, False)
        try:
            super().finish()
        except OSError:
            pass  # the peer went away while the last answer was flushed

    def handle(self) -> None:
        try:
            # Checked once the connection is idle again (busy is False by then): an answer
            # computed just before a stop began kept the connection alive, and stop(),
            # seeing it busy, did not close it; it would sit in readline until the client
            # sent again or stop() gave up waiting.
            while self._one_request() and not self.server.stopping:
                pass
        except (ConnectionError, TimeoutError, OSError):
            pass  # the client went away or idled out: nothing to answer

    def _one_request(self) -> bool:
        """Reads and answers one request; False when the connection is to end."""
        rfile = self.rfile
        line = rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # stray blank lines between requests are allowed
            line = rfile.readline(MAX_LINE + 1)
        if not line:
            return False
        self.busy = True
        try:
            parts = line.split()
            if len(line) > MAX_LINE or len(parts) != 3 or not parts[2].startswith(b"HTTP/"):
                return self._fail(400)
            method, target, version = (p.decode("latin-1") for p in parts)
            pairs: list[tuple[str, str]] = []
            while True:
                header = rfile.readline(MAX_LINE + 1)
                if header in (b"\r\n", b"\n"):
                    break
                if not header or len(header) > MAX_LINE or len(pairs) >= MAX_HEADERS:
                    return self._fail(431 if header else 400)
                name, colon, value = header.decode("latin-1").partition(":")
                if not colon or not name.strip():
                    return self._fail(400)
                pairs.append((name.strip(), value.strip()))
            request = HttpRequest(method, target, version, pairs, b"", self.client_address)
            headers = request.headers
            if "transfer-encoding" in headers:
                return self._fail(411)  # chunked bodies: no client here sends them
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                return self._fail(400)
            if length < 0:
                return self._fail(400)
            if length > MAX_BODY:
                return self._fail(413)
            if length and headers.get("expect", "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s for it
            request.body = rfile.read(length) if length else b""
            if len(request.body) < length:
                return False
            keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            status, response_headers, payload = self.server.app(request)
            keep = keep and not self.server.stopping
            self._respond(status, response_headers, payload, keep=keep, head=method == "HEAD")
            return keep
        finally:
            self.busy = False

    def _fail(self, status: int) -> bool:
        self._respond(status, {"Content-Type": "text/plain"}, _reason(status).encode(), keep=False)
        return False

    def _respond(
        self, status: int, headers: Headers, payload: bytes, *, keep: bool, head: bool = False
    ) -> None:
        head_lines = [f"HTTP/1.1 {status} {_reason(status)}", f"Content-Length: {len(payload)}"]
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        head_lines.extend(
            f"{name}: {value}"
            for name, value in pairs
            if name.lower() not in ("content-length", "connection", "transfer-encoding")
        )
        if not keep:
            head_lines.append("Connection: close")
        data = ("\r\n".join(head_lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(data if head else data + payload)


class HttpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    request_queue_size = 256  # socketserver's 5 drops connections under load (client resets)
    daemon_threads = True
    block_on_close = False  # stop() waits for the requests being answered itself

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self.stopping = False
        self._open: set[_Connection] = set()
        self._open_cond = threading.Condition()
        super().__init__(address, _Connection)

    def track(self, connection: _Connection, is_open: bool) -> None:
        with self._open_cond:
            if is_open:
                self._open.add(connection)
            else:
                self._open.discard(connection)
                self._open_cond.notify_all()

    def close_connections(self, timeout: float | None = None) -> None:
        """Ends kept-alive connections: idle ones now, busy ones once their answer is out.

        With a timeout, waits that long for the busy ones to finish answering.
        """
        self.stopping = True
        with self._open_cond:
            connections = list(self._open)
        for connection in connections:
            if not connection.busy:
                try:  # wakes the thread waiting for a next request, which then ends
                    connection.connection.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        if timeout is not None:
            with self._open_cond:
                self._open_cond.wait_for(lambda: not self._open, timeout)
