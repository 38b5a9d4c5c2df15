"""Builders and fakes the suites share."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sluice.manage import admin

from local_queue.errors import SqsError
from local_queue.messages import check_characters
from local_runtime import sluice_app

# The suites' PostgreSQL and Lambda events live in the tools' library; imported from here too.
from toolkit.lambda_events import http_event, sqs_event  # noqa: F401
from toolkit.postgres import embedded_postgres, scratch_database  # noqa: F401

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS = REPO_ROOT / "events"
# The app, key and rule the sample events in events/ were written for.
SAMPLE_APP = "app_sample"
LOGIN_RULE = {
    "type": "object",
    "required": ["userId"],
    "properties": {"userId": {"type": "integer"}},
}


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Polls `check` until it returns something truthy; fails at the deadline.

    The deadline only bounds a failure, so it is generous: a passing check returns as
    soon as it holds, and a 2-core machine that is busy elsewhere can be slow.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {check.__name__}")
        time.sleep(interval)


def make_app(conn, *, require_key: bool = True, rules: dict | None = None) -> tuple[str, str]:
    """An app with one live key and the given rules; returns (app_id, key)."""
    with conn.cursor():
        app_id = admin.create_app(conn, "test app", require_key=require_key)
        key = admin.create_api_key(conn, app_id)
        for name, schema in (rules or {}).items():
            admin.put_rule(conn, app_id, name, schema)
    return app_id, key


def drain(sqs, queue_url: str) -> list[str]:
    """Receives (and deletes) every message on a queue; returns the bodies."""
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def drain_events(sqs, queue_url: str) -> list[str]:
    """drain, without the rejections messages (records of refused items: no events)."""
    return [body for body in drain(sqs, queue_url) if "events" in json.loads(body)]


class RefusingSqs:
    """An SQS client that passes calls to a real (moto) one, but refuses chosen entries.

    `refuse(body_predicate, times)` makes SendMessageBatch report matching entries as
    failed for their next `times` attempts (None: always), and SendMessage answer them
    with an error. Records every call (a SendMessage as a call of one entry).
    Like SQS (and local_queue), and unlike moto, it refuses an entry whose body holds
    a character outside XML's (U+FFFE, U+FFFF, C0 controls): InvalidMessageContents.
    """

    def __init__(self, client) -> None:
        self._client = client
        self._rules: list[list] = []
        self.calls: list[list[dict]] = []
        self.down = False

    def refuse(self, predicate, times: int | None = None) -> None:
        self._rules.append([predicate, times])

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls.append(Entries)
        if self.down:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url=QueueUrl)
        passed, failed = [], []
        for entry in Entries:
            try:
                check_characters(entry["MessageBody"])
            except SqsError as error:
                failed.append(error.entry(entry["Id"]))
                continue
            for rule in self._rules:
                predicate, times = rule
                if predicate(entry["MessageBody"]) and (times is None or times > 0):
                    if times is not None:
                        rule[1] -= 1
                    failed.append(
                        {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"}
                    )
                    break
            else:
                passed.append(entry)
        response = (
            self._client.send_message_batch(QueueUrl=QueueUrl, Entries=passed) if passed else {}
        )
        return {"Successful": response.get("Successful", []), "Failed": failed}

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict:
        """A lone message, as SQS answers SendMessage: a refusal is an error, not an entry."""
        from botocore.exceptions import ClientError

        response = self.send_message_batch(QueueUrl, [{"Id": "0", "MessageBody": MessageBody}])
        if response["Failed"]:
            [failed] = response["Failed"]
            raise ClientError({"Error": {"Code": failed["Code"]}}, "SendMessage")
        return {"MessageId": response["Successful"][0]["MessageId"]}


class SwitchableProxy:
    """A TCP port that forwards to PostgreSQL until switched off.

    Off, it drops every open connection and refuses new ones: what a client sees when
    the database goes away. Database settings point at it to test outages for real.
    """

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        query = parse_qs(parts.query)
        if "host" in query and query["host"][0].startswith("/"):
            socket_dir = query["host"][0]
            port = parts.port or 5432
            self._target = (socket.AF_UNIX, f"{socket_dir}/.s.PGSQL.{port}")
        elif parts.hostname and parts.hostname.startswith("%2F"):
            self._target = (
                socket.AF_UNIX,
                f"{unquote(parts.hostname)}/.s.PGSQL.{parts.port or 5432}",
            )
        else:
            self._target = (socket.AF_INET, (parts.hostname or "127.0.0.1", parts.port or 5432))
        self._user = parts.username or ""
        self._password = parts.password or ""
        self._dbname = parts.path.lstrip("/")
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        auth = self._user + (f":{self._password}" if self._password else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{self._dbname}"

    def on(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def off(self) -> None:
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would not.
                try:
                    self._listener.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            family, address = self._target
            upstream = socket.socket(family, socket.SOCK_STREAM)
            upstream.connect(address)
            with self._lock:
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def sample(name: str) -> dict:
    """One of the sample events in events/ (what `sam local invoke -e` would pass)."""
    return json.loads((EVENTS / name).read_text())


def add_sample_app(conn) -> str:
    """The app and key the sample ingest events carry, with a rule for user_login; the key.

    make dev's setup makes the same (local_runtime.sluice_app), so the samples work there.
    """
    return sluice_app.sample_app(conn, EVENTS)


class ResponseCatcher:
    """Stands in for CloudFormation's pre-signed S3 URL: records what is PUT to it."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.received = threading.Event()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:  # http.server's naming
                length = int(self.headers["Content-Length"])
                catcher.headers.append(dict(self.headers))
                catcher.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                catcher.received.set()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/stack-response?X-Amz-Signature=sample"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def make_owner(conn, clock, email: str = "owner@sluice.test") -> tuple[str, str]:
    """An account with a live session, made straight in the database: (account_id, token).

    The accounts flow that makes them for real is tested in tests/handlers/test_accounts.py.
    """

    from sluice.accounts.sessions import open_session

    account_id = uuid.uuid4()
    now = clock.now()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO accounts (account_id, email, password_hash, created_at,"
            " password_changed_at) VALUES (%s, %s, 'scrypt$unused', %s, %s)",
            (account_id, email, now, now),
        )
    return str(account_id), open_session(conn, account_id, now).token


class HangingEndpoint:
    """A TCP port that takes connections and never answers, or never takes them.

    `accept=True`: every connection is accepted and then left waiting, as an endpoint
    that stalls does (a read timeout is what ends the wait). `accept=False`: a listen
    queue already full, so the kernel drops each new SYN, as a network that drops
    packets does (a connect timeout ends the wait). `connections` counts what reached
    it (attempts; with accept=False, the attempts the filler made are not counted).
    """

    def __init__(self, *, accept: bool = True) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections = 0
        if accept:
            self._listener.listen(64)
            threading.Thread(target=self._accept, daemon=True).start()
        else:
            # Fill the accept queue and never accept: connect until one is left waiting.
            self._listener.listen(0)
            while True:
                try:
                    filler = socket.create_connection(("127.0.0.1", self.port), timeout=0.2)
                except TimeoutError:
                    break
                self._held.append(filler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._held.append(sock)

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._held:
                sock.close()
            self._held.clear()


def answered_within(seconds: float, call: Callable[[], Any]) -> Any:
    """call()'s result, or a failure when it has not returned after `seconds`.

    For deadlines: `seconds` is what a Lambda timeout would allow, never a measure of
    speed. The call runs in a daemon thread, so one that hangs cannot hold up the suite.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"no answer within {seconds} s: the function would have timed out")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
