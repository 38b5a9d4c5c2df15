"""local_queue's HTTP side: one event loop, group commit, and what it does with bad bytes."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local_queue import QueueServer
from tests.local_queue.conftest import local_client
from tests.support import wait_for


def stats(server: QueueServer) -> dict:
    with urllib.request.urlopen(server.endpoint_url + "/_local/stats", timeout=10) as answer:  # noqa: S310 - local
        return json.load(answer)


def test_concurrent_sends_share_commits_and_each_is_answered_after_its_commit(
    queue_server, queue_database_url
):
    # Given 16 clients sending at once
    endpoint = queue_server.endpoint_url
    url = local_client(endpoint).create_queue(QueueName=f"group-{uuid.uuid4().hex[:10]}")[
        "QueueUrl"
    ]
    before = stats(queue_server)["sends"]
    start = threading.Barrier(16)

    def send(worker: int) -> int:
        client = local_client(endpoint)
        database = psycopg2.connect(queue_database_url)
        database.autocommit = True
        start.wait()
        try:
            for n in range(15):
                message_id = client.send_message(QueueUrl=url, MessageBody=f"{worker}-{n}")[
                    "MessageId"
                ]
                # Then the answer came after the commit: another connection sees the row.
                with database.cursor() as cur:
                    cur.execute(
                        "SELECT count(*) FROM local_sqs.messages WHERE message_id = %s",
                        (message_id,),
                    )
                    assert cur.fetchone()[0] == 1
        finally:
            database.close()
        return 15

    with ThreadPoolExecutor(16) as pool:
        sent = sum(pool.map(send, range(16)))

    # And sends that arrived together shared a commit
    after = stats(queue_server)["sends"]
    sends = after["sends"] - before["sends"]
    commits = after["commits"] - before["commits"]
    assert sends == sent == after["messages"] - before["messages"]
    assert 0 < commits < sends


def test_long_polls_hold_no_thread_each(queue_database_url):
    # Given a server with two database threads and 24 long polls waiting on an empty queue
    with QueueServer(queue_database_url, pool_size=2) as server:
        client = local_client(server.endpoint_url)
        empty = client.create_queue(QueueName=f"idle-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        busy = client.create_queue(QueueName=f"busy-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        threads_before = threading.active_count()
        polls: list[socket.socket] = []
        body = json.dumps({"QueueUrl": empty, "WaitTimeSeconds": 20}).encode()
        request = (
            b"POST / HTTP/1.1\r\nHost: " + server.endpoint_url[7:].encode() + b"\r\n"
            b"X-Amz-Target: AmazonSQS.ReceiveMessage\r\n"
            b"Content-Type: application/x-amz-json-1.0\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        try:
            for _ in range(24):
                poll = socket.create_connection(server.endpoint_url[7:].split(":"), timeout=30)
                poll.sendall(request)
                polls.append(poll)
            # When another queue is used meanwhile
            client.send_message(QueueUrl=busy, MessageBody="through")
            got = client.receive_message(QueueUrl=busy, WaitTimeSeconds=1)["Messages"]
            # Then it is served, and the waiting polls took no thread of their own
            assert [m["Body"] for m in got] == ["through"]
            assert threading.active_count() - threads_before <= 2
            # And a send to the polled queue answers one of them
            client.send_message(QueueUrl=empty, MessageBody="for a poll")
            answered = []
            for poll in polls:
                poll.setblocking(False)

            def one_answered() -> bool:
                for poll in polls:
                    try:
                        data = poll.recv(65536)
                    except BlockingIOError:
                        continue
                    if b"for a poll" in data:
                        answered.append(data)
                return bool(answered)

            wait_for(one_answered, timeout=30)
            assert answered[0].startswith(b"HTTP/1.1 200")
        finally:
            for poll in polls:
                poll.close()


def test_stop_answers_long_polls_at_once(queue_database_url):
    server = QueueServer(queue_database_url).start()
    client = local_client(server.endpoint_url)
    url = client.create_queue(QueueName=f"stop-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(client.receive_message, QueueUrl=url, WaitTimeSeconds=20)
        wait_for(lambda: stats(server)["long_polls"] == 1)
        server.stop()
        assert "Messages" not in poll.result(timeout=15)


def _raw(endpoint: str, data: bytes) -> bytes:
    host, port = endpoint[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the server must answer or close
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_an_answer_carries_only_the_headers_a_client_reads(queue_server):
    # Every header is parsed by each send's http.client (email's parser, ~15 k
    # instructions a header): uvicorn's `server` and `date` cost ingest 2 % of a
    # request and no client reads them. SQS's own request id stays.
    client = local_client(queue_server.endpoint_url)
    answer = client.create_queue(QueueName=f"headers-{uuid.uuid4().hex[:8]}")
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    assert set(headers) == {"content-type", "content-length", "x-amzn-requestid"}
    assert headers["x-amzn-requestid"] == answer["ResponseMetadata"]["RequestId"]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NONSENSE\r\n\r\n", b"400"),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    ],
)
def test_a_malformed_request_gets_a_4xx_and_the_connection_ends(
    queue_server, request_bytes, status
):
    reply = _raw(queue_server.endpoint_url, request_bytes)
    assert reply.startswith(b"HTTP/1.1 " + status), reply


def test_a_body_past_the_limit_is_refused_without_reading_it(queue_server):
    host, port = queue_server.endpoint_url[7:].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\nabc")
        reply = b""
        while chunk := sock.recv(65536):  # the server closes: no wait for the rest
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.binary(max_size=400))
def test_any_bytes_get_no_5xx_and_the_server_keeps_serving(queue_server, garbage):
    reply = _raw(queue_server.endpoint_url, garbage)
    for line in reply.split(b"\r\n"):
        if line.startswith(b"HTTP/1.1 "):
            assert not line[9:10] == b"5", reply
    assert b"SQS JSON protocol" in _raw(queue_server.endpoint_url, b"GET / HTTP/1.0\r\n\r\n")


def test_a_send_wakes_one_idle_long_poll_of_a_standard_queue_and_a_full_batch_the_next(
    queue_server,
):
    # Given four long polls waiting on an empty queue
    client = local_client(queue_server.endpoint_url)
    url = client.create_queue(QueueName=f"herd-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    waiting = stats(queue_server)["long_polls"]
    with ThreadPoolExecutor(4) as pool:
        polls = [
            pool.submit(
                local_client(queue_server.endpoint_url).receive_message,
                QueueUrl=url,
                WaitTimeSeconds=20,
                MaxNumberOfMessages=2,
            )
            for _ in range(4)
        ]
        wait_for(lambda: stats(queue_server)["long_polls"] == waiting + 4)
        before = stats(queue_server)["receives"]

        # When one message is sent
        client.send_message(QueueUrl=url, MessageBody="one")

        # Then one poll looked and took it; the three others still wait, not woken for nothing
        wait_for(lambda: sum(p.done() for p in polls) == 1)
        wait_for(lambda: stats(queue_server)["long_polls"] == waiting + 3)
        assert stats(queue_server)["receives"] - before == 1

        # And three messages at once fill one poll's batch, which passes the wake-up on
        client.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)]
        )
        # (without the hand-over, the third message would wait for a poll's 20 s to end)
        wait_for(lambda: sum(p.done() for p in polls) == 3, timeout=10)
        bodies = sorted(m["Body"] for p in polls if p.done() for m in p.result()["Messages"])
        assert bodies == ["m0", "m1", "m2", "one"]
        client.send_message(QueueUrl=url, MessageBody="last")  # and the fourth gets this
        wait_for(lambda: all(p.done() for p in polls))
        assert sorted(m["Body"] for p in polls for m in p.result()["Messages"]) == [
            "last",
            "m0",
            "m1",
            "m2",
            "one",
        ]
