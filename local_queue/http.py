"""A small threaded HTTP/1.1 server for SQS's JSON protocol.

botocore keeps connections alive and sends one request at a time per connection,
always with Content-Length, so a thread per connection reading requests in a loop
is enough; each answer goes out in one write with TCP_NODELAY (headers and body
in separate segments would meet the peer's delayed ACK and stall for ~40 ms).
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable

# (method, path, headers with lower-case names, body) -> (status, headers, body)
App = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    500: "Internal Server Error",
}
MAX_BODY = 16 * 1024 * 1024


class _Connection(socketserver.StreamRequestHandler):
    rbufsize = 64 * 1024
    server: HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        super().finish()

    def handle(self) -> None:
        rfile = self.rfile
        while True:
            line = rfile.readline(65537)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            parts = line.split()
            if len(parts) != 3:
                return
            method, target, version = (p.decode("latin-1") for p in parts)
            headers: dict[str, str] = {}
            while True:
                header = rfile.readline(65537)
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                return
            if length > MAX_BODY:
                self._respond(413, {}, b"", close=True)
                return
            body = rfile.read(length) if length else b""
            if len(body) < length:
                return
            status, response_headers, payload = self.server.app(method, target, headers, body)
            close = version == "HTTP/1.0" or headers.get("connection", "").lower() == "close"
            self._respond(status, response_headers, payload, close=close)
            if close:
                return

    def _respond(
        self, status: int, headers: dict[str, str], payload: bytes, *, close: bool
    ) -> None:
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Length: {len(payload)}",
        ]
        head.extend(f"{name}: {value}" for name, value in headers.items())
        if close:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)


class HttpServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Connection)

    def track(self, sock: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            (self._open.add if is_open else self._open.discard)(sock)

    def close_connections(self) -> None:
        """Ends kept-alive connections, so their threads stop waiting for a next request."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
