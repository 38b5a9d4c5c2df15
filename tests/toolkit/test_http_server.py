"""The keep-alive HTTP/1.1 server both local_queue and the runtime's API serve on."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import wait_for
from toolkit.http_server import HttpRequest, HttpServer, _Connection


class Echo:
    """Answers with what it saw; `hold` keeps a request in the app until released."""

    def __init__(self) -> None:
        self.seen: list[HttpRequest] = []
        self.hold = threading.Event()
        self.hold.set()
        self.entered = threading.Event()

    def __call__(self, request: HttpRequest) -> tuple[int, list[tuple[str, str]], bytes]:
        self.seen.append(request)
        self.entered.set()
        self.hold.wait(10)
        headers = [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
        return 200, headers, request.method.encode() + b" " + request.body


@pytest.fixture
def served() -> Iterator[tuple[HttpServer, Echo]]:
    app = Echo()
    server = HttpServer(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server, app
    app.hold.set()
    server.shutdown()
    thread.join()
    server.close_connections(timeout=5)
    server.server_close()


def _raw(server: HttpServer, data: bytes) -> bytes:
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_requests_share_one_connection_and_keep_headers_as_sent(served):
    server, app = served
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    for body in (b"one", b"two"):
        conn.request("POST", "/p?q=1", body, {"X-Api-Key": "k", "x-dup": "1"})
        response = conn.getresponse()
        assert response.read() == b"POST " + body
        assert response.status == 200
        assert response.getheader("Connection") is None  # kept alive
        assert response.msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert len(app.seen) == 2 and app.seen[0].client == app.seen[1].client  # one connection
    assert ("X-Api-Key", "k") in app.seen[0].header_pairs
    assert app.seen[0].target == "/p?q=1" and app.seen[0].headers["x-dup"] == "1"
    conn.close()


def test_an_http_1_0_request_or_connection_close_ends_the_connection(served):
    server, _ = served
    reply = _raw(server, b"GET / HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in reply
    reply = _raw(server, b"POST / HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
    assert reply.endswith(b"POST hi")


def test_head_gets_the_length_of_the_body_but_no_body(served):
    server, _ = served
    reply = _raw(server, b"HEAD / HTTP/1.0\r\n\r\n")
    assert b"Content-Length: 5" in reply and reply.endswith(b"\r\n\r\n")


def test_expect_100_continue_is_answered_before_the_body_is_read(served):
    server, _ = served
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        assert b"POST abc" in sock.recv(1000)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", b"411"),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 300 + b"\r\n", b"431"),
    ],
)
def test_a_malformed_request_gets_a_4xx_and_the_connection_ends(served, request_bytes, status):
    server, app = served
    reply = _raw(server, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status) and b"Connection: close" in reply
    assert app.seen == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=400))
def test_any_bytes_get_no_5xx_and_the_server_keeps_serving(served, garbage):
    server, _ = served
    with socket.create_connection(server.server_address[:2], timeout=5) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the server must answer or close
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    for line in reply.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            assert not line[9:10] == b"5", reply
    assert _raw(server, b"GET / HTTP/1.0\r\n\r\n").endswith(b"GET ")


def test_a_connection_answered_as_the_stop_began_closes_once_idle(served, monkeypatch):
    """Its answer kept it alive and stop() saw it busy: it must end, not wait for the client."""
    server, _ = served
    answered, resume = threading.Event(), threading.Event()
    respond = _Connection._respond

    def respond_then_pause(self, *args, **kwargs):
        respond(self, *args, **kwargs)
        answered.set()
        resume.wait(10)  # still busy: the stop begins here

    monkeypatch.setattr(_Connection, "_respond", respond_then_pause)
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    conn.request("POST", "/", b"kept")
    response = conn.getresponse()
    assert response.read() == b"POST kept"
    assert response.getheader("Connection") is None  # kept alive: no stop had begun
    assert answered.wait(5)

    stopper = threading.Thread(target=server.close_connections, kwargs={"timeout": 30})
    stopper.start()
    wait_for(lambda: server.stopping)
    resume.set()
    # Well before the stop's own 30 s: the connection ended when it became idle.
    stopper.join(10)
    assert not stopper.is_alive()
    with pytest.raises((http.client.HTTPException, OSError)):
        conn.request("GET", "/")
        conn.getresponse()


def test_stop_closes_idle_connections_and_lets_an_answer_in_flight_finish(served):
    server, app = served
    idle = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    idle.request("GET", "/")
    idle.getresponse().read()  # now idle, kept alive
    app.hold.clear()
    app.entered.clear()
    busy = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    busy.request("POST", "/", b"late")
    assert app.entered.wait(5)

    stopper = threading.Thread(target=server.close_connections, kwargs={"timeout": 5})
    stopper.start()
    wait_for(lambda: server.stopping)
    app.hold.set()
    response = busy.getresponse()
    assert response.read() == b"POST late"
    assert response.getheader("Connection") == "close"  # its answer ends the connection
    stopper.join(5)
    assert not stopper.is_alive()
    with pytest.raises((http.client.HTTPException, OSError)):
        idle.request("GET", "/")
        idle.getresponse()
