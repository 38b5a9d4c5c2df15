"""The API's HTTP server (uvicorn on the runtime's event loop), byte by byte.

What a client sends that is not HTTP, too large, or cut short gets a clear 4xx and
never a 5xx or a hang; keep-alive, HEAD, `Expect: 100-continue` and a stop that
lets answers in flight finish work as curl, botocore and wrk expect. The function
behind the routes is a fake that records the events it was given.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_runtime import api
from local_runtime.api import ApiServer
from local_runtime.template import Route
from local_runtime.workers import Outcome
from tests.support import wait_for


class Function:
    """Answers every event with 200 and the body it was given; `hold` keeps it waiting."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.hold = threading.Event()
        self.hold.set()

    async def __call__(self, function: str, event: dict[str, Any]) -> Outcome:
        self.events.append(event)
        while not self.hold.is_set():
            await asyncio.sleep(0.01)  # on the loop: a held request blocks no thread
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):  # no text Content-Type
            body = base64.b64decode(body).decode()
        result = {
            "statusCode": 200,
            "headers": {"Content-Type": "text/plain"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": f"{event['httpMethod']} {body}",
        }
        return Outcome("r", 1.0, result=result)


@pytest.fixture
def served() -> Iterator[tuple[ApiServer, Function]]:
    function = Function()
    server = ApiServer([], function, port=0)
    server.set_routes([Route("ANY", "/{proxy+}", "Fn", "1.0", "Api", "Api")])
    server.start()
    yield server, function
    function.hold.set()
    server.stop()


def _raw(server: ApiServer, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _accepts(server: ApiServer) -> bool:
    try:
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    except OSError:
        return False
    return True


def test_requests_share_one_connection_and_keep_headers_as_sent(served):
    server, function = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for body in (b"one", b"two"):
        conn.request("POST", "/p?q=1", body, {"X-Api-Key": "k", "x-dup": "1"})
        response = conn.getresponse()
        assert response.read() == b"POST " + body
        assert response.status == 200
        assert response.getheader("Connection") is None  # kept alive
        assert response.msg.get_all("Set-Cookie") == ["a=1", "b=2"]
    conn.close()
    first, second = function.events
    client = first["requestContext"]["identity"]["sourceIp"]
    assert client == second["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"
    # A REST API's event has the names as the client wrote them (payload 1.0)
    assert first["headers"]["X-Api-Key"] == "k" and first["headers"]["x-dup"] == "1"
    assert first["path"] == "/p" and first["queryStringParameters"] == {"q": "1"}


def test_an_http_1_0_request_or_connection_close_ends_the_connection(served):
    server, _ = served
    reply = _raw(server, b"GET /x HTTP/1.0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")  # and the connection closed: _raw returned
    reply = _raw(server, b"POST /x HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi")
    assert reply.endswith(b"POST hi") and b"connection: close" in reply.lower()


def test_head_gets_the_length_of_the_body_but_no_body(served):
    server, _ = served
    reply = _raw(server, b"HEAD /x HTTP/1.0\r\n\r\n")
    assert b"content-length: 5" in reply.lower() and reply.endswith(b"\r\n\r\n")


def test_expect_100_continue_is_answered_before_the_body_is_read(served):
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        assert b"POST abc" in sock.recv(1000)


def test_a_chunked_body_reaches_the_function_whole(served):
    server, _ = served
    reply = _raw(
        server,
        b"POST /x HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"POST abcde")


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 300 + b"\r\n", b"431"),
        (b"GET / HTTP/1.1\r\nX: " + b"y" * 100_000 + b"\r\n\r\n", b"431"),
        (b"GET /caf\xc3\xa9\xff HTTP/1.1\r\n\r\n", b"400"),  # not even ASCII
    ],
)
def test_a_malformed_request_gets_a_4xx_and_the_connection_ends(served, request_bytes, status):
    server, function = served
    reply = _raw(server, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status), reply[:200]
    assert b"connection: close" in reply.lower()
    assert function.events == []


def test_a_chunked_body_past_the_limit_is_refused(served, monkeypatch):
    server, function = served
    monkeypatch.setattr(api, "MAX_BODY", 4)
    reply = _raw(
        server,
        b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413") and function.events == []


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=400))
def test_any_bytes_get_no_5xx_and_the_server_keeps_serving(served, garbage):
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the server must answer or close
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    for line in reply.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            assert not line[9:10] == b"5", reply
    assert _raw(server, b"GET /x HTTP/1.0\r\n\r\n").endswith(b"GET ")


def test_held_requests_on_many_connections_take_no_thread_each(served):
    server, function = served
    function.hold.clear()
    before = threading.active_count()
    connections = []
    for _ in range(40):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("POST", "/x", b"held")
        connections.append(conn)
    wait_for(lambda: len(function.events) == 40)

    assert threading.active_count() - before < 5  # a thread per connection would be 40

    function.hold.set()
    for conn in connections:
        assert conn.getresponse().read() == b"POST held"
        conn.close()


def test_stop_closes_idle_connections_and_lets_an_answer_in_flight_finish(served):
    server, function = served
    idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    idle.request("GET", "/x")
    idle.getresponse().read()  # now idle, kept alive
    function.hold.clear()
    busy = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    busy.request("POST", "/x", b"late")
    wait_for(lambda: len(function.events) == 2)

    stopper = threading.Thread(target=server.stop)
    stopper.start()
    wait_for(lambda: not _accepts(server))  # the stop has begun
    function.hold.set()
    response = busy.getresponse()
    assert response.read() == b"POST late"
    assert response.getheader("Connection") == "close"  # its answer ends the connection
    stopper.join(20)
    assert not stopper.is_alive()
    with pytest.raises((http.client.HTTPException, OSError)):
        idle.request("GET", "/x")
        idle.getresponse()
