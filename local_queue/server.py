"""QueueServer: the SQS JSON protocol over HTTP, on top of SqsService.

One event loop (uvicorn with httptools and uvloop) serves every connection; the
database work runs in a few threads the loop awaits, so a long poll (up to 20 s)
or a send waiting for its group commit holds no thread.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import uvicorn
import uvloop

from local_queue import errors
from local_queue.service import ACCOUNT_ID, REGION, SqsService
from toolkit import forgery

log = logging.getLogger("local_queue")

TARGET_PREFIX = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
JSON_TYPES = frozenset({CONTENT_TYPE, "application/json"})
MAX_BODY = 16 * 1024 * 1024  # well above SQS's 1 MiB per request, once encoded as JSON
STATS_PATH = "/_local/stats"

Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogates ("\ud800"), which botocore may send; SQS then
        # answers InvalidMessageContents, so parse them and let the body check refuse them.
        return json.loads(body)


def _plain(status: int, text: str, *, close: bool = False) -> Answer:
    headers = [(b"content-type", b"text/plain")]
    if close:  # the body was not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    return status, headers, text.encode() + b"\n"


class QueueServer:
    """A durable SQS endpoint on `host:port` (port 0 picks a free one), storing in `database_url`.

    `account_id` and `region` only shape queue URLs and ARNs; requests name queues by
    the last part of their URL or ARN, so URLs built for another account still resolve.
    `clock` (epoch seconds) is for tests that step through a FIFO queue's 5-minute
    deduplication window. `pool_size` is the database connections and the threads that
    use them.
    """

    def __init__(
        self,
        database_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
        pool_size: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database_url = database_url
        self._address = (host, port)
        self._pool_size = pool_size
        self._options = {"account_id": account_id, "region": region, "clock": clock}
        self.service: SqsService | None = None
        self._uvicorn: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._bound: tuple[str, int] | None = None
        self._hosts: frozenset[str] = frozenset()

    @property
    def endpoint_url(self) -> str:
        if self._bound is None:
            raise RuntimeError("the server is not started")
        host, port = self._bound
        return f"http://{host}:{port}"

    def start(self) -> QueueServer:
        self.service = SqsService(self._database_url, pool_size=self._pool_size, **self._options)
        self._executor = ThreadPoolExecutor(self._pool_size, thread_name_prefix="local-queue-db")
        host, port = self._address
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        self._bound = (host, sock.getsockname()[1])
        self._hosts = forgery.own_hosts(*self._bound)
        config = uvicorn.Config(
            self,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_config=None,
            # botocore keeps connections for reuse between bursts of sends.
            timeout_keep_alive=60,
            timeout_graceful_shutdown=5,
            backlog=1024,
            server_header=False,
            date_header=False,
        )
        self._uvicorn = uvicorn.Server(config)
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(sock, started), name="local-queue-loop", daemon=True
        )
        self._thread.start()
        started.wait(30)
        if not self._uvicorn.started:
            self.stop()
            raise RuntimeError("local_queue: the HTTP server did not start")
        return self

    def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        assert self._uvicorn is not None and self.service is not None
        loop = uvloop.new_event_loop()
        self._loop = loop
        self.service.bind(loop)

        async def serve() -> None:
            task = asyncio.ensure_future(self._uvicorn.serve(sockets=[sock]))  # type: ignore[union-attr]
            while not self._uvicorn.started and not task.done():  # type: ignore[union-attr]
                await asyncio.sleep(0.01)
            started.set()
            await task

        try:
            loop.run_until_complete(serve())
        finally:
            started.set()
            loop.close()
            sock.close()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop_waiting()  # long polls answer now, empty
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self.service is not None:
            self.service.close()
        self._uvicorn = self._thread = self._executor = None
        self._bound = None
        self.service = None

    def __enter__(self) -> QueueServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        status, response_headers, payload = await self._answer(scope, headers, receive)
        response_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, scope: dict[str, Any], headers: dict[str, str], receive: Any) -> Answer:
        method, path = scope["method"], scope["path"]
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            return _plain(400, "Bad Request: Content-Length is not a number", close=True)
        if length > MAX_BODY:
            return _plain(413, "Content Too Large", close=True)
        body = await _read_body(receive)
        if body is None:
            return _plain(413, "Content Too Large", close=True)
        request_id = str(uuid.uuid4())
        # No credentials are checked here: a page in the developer's browser must not
        # reach the queues either (toolkit.forgery). botocore sends SQS's JSON type.
        refused = forgery.refusal(method, headers, len(body), self._hosts, JSON_TYPES)
        if refused is not None:
            log.warning("local_queue: refused %s %s: %s", method, path, refused)
            denied = errors.SqsError("AccessDenied", f"Refused: {refused}.", status=403)
            return _error_response(denied, request_id)
        if method != "POST":
            if path == STATS_PATH and self.service is not None:
                stats = orjson.dumps(self.service.stats())
                return 200, [(b"content-type", b"application/json")], stats
            return _plain(200, "local_queue: SQS JSON protocol on POST /")
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        base = "http://" + (headers.get("host") or "{}:{}".format(*self._bound or ("", "")))
        service = self.service
        assert service is not None
        try:
            try:
                request = _loads(body) if body else {}
            except ValueError:
                raise errors.SqsError(
                    "SerializationException", "The request body is not JSON."
                ) from None
            if not isinstance(request, dict):
                raise errors.SqsError(
                    "SerializationException", "The request body is not a JSON object."
                )
            awaited = service.async_operations.get(operation)
            if awaited is not None:
                result = await awaited(request, base, self._run)
            else:
                handler = service.operations.get(operation)
                if handler is None:
                    raise errors.unsupported_operation(operation or "(no X-Amz-Target)")
                result = await self._run(handler, request, base)
        except errors.SqsError as exc:
            return _error_response(exc, request_id)
        except Exception:
            log.exception("local_queue: %s failed", operation)
            return _error_response(errors.internal_error(), request_id)
        response_headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        return 200, response_headers, orjson.dumps(result)

    def _run(self, function: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Database work, off the loop."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, functools.partial(function, *args))


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None past MAX_BODY (a chunked one has no Content-Length to check)."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _error_response(exc: errors.SqsError, request_id: str) -> Answer:
    """An error as SQS's JSON protocol sends it; the query-error header lets botocore
    raise the same exception classes and codes as against real SQS."""
    payload = orjson.dumps({"__type": f"com.amazonaws.sqs#{exc.shape}", "message": exc.message})
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"x-amzn-requestid", request_id.encode()),
        (b"x-amzn-query-error", f"{exc.code};{exc.fault}".encode()),
    ]
    return exc.status, headers, payload
