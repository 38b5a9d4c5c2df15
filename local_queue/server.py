"""QueueServer: the SQS JSON protocol over HTTP, on top of SqsService."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from local_queue import errors
from local_queue.service import ACCOUNT_ID, REGION, SqsService
from toolkit import forgery
from toolkit.http_server import HttpRequest, HttpServer

log = logging.getLogger("local_queue")

TARGET_PREFIX = "AmazonSQS."
CONTENT_TYPE = "application/x-amz-json-1.0"
JSON_TYPES = frozenset({CONTENT_TYPE, "application/json"})


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogates ("\ud800"), which botocore may send; SQS then
        # answers InvalidMessageContents, so parse them and let the body check refuse them.
        return json.loads(body)


class QueueServer:
    """A durable SQS endpoint on `host:port` (port 0 picks a free one), storing in `database_url`.

    `account_id` and `region` only shape queue URLs and ARNs; requests name queues by
    the last part of their URL or ARN, so URLs built for another account still resolve.
    `clock` (epoch seconds) is for tests that step through a FIFO queue's 5-minute
    deduplication window.
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
        writers: int = 2,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._database_url = database_url
        self._address = (host, port)
        self._options = {
            "account_id": account_id,
            "region": region,
            "pool_size": pool_size,
            "writers": writers,
            "clock": clock,
        }
        self.service: SqsService | None = None
        self._http: HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        if self._http is None:
            raise RuntimeError("the server is not started")
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> QueueServer:
        self.service = SqsService(self._database_url, **self._options)
        self._http = HttpServer(self._address, self._handle)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="local-queue-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http.close_connections()
        if self.service is not None:
            self.service.close()
        self._http = None
        self.service = None

    def __enter__(self) -> QueueServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handle(self, incoming: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        method, path, headers, body = (
            incoming.method,
            incoming.target,
            incoming.headers,
            incoming.body,
        )
        request_id = str(uuid.uuid4())
        assert self._http is not None
        host, port = self._http.server_address[:2]
        # No credentials are checked here: a page in the developer's browser must not
        # reach the queues either (toolkit.forgery). botocore sends SQS's JSON type.
        refused = forgery.refusal(
            method, headers, len(body), forgery.own_hosts(host, port), JSON_TYPES
        )
        if refused is not None:
            log.warning("local_queue: refused %s %s: %s", method, path, refused)
            denied = errors.SqsError("AccessDenied", f"Refused: {refused}.", status=403)
            return _error_response(denied, request_id)
        if method != "POST":
            return (
                200,
                {"Content-Type": "text/plain"},
                b"local_queue: SQS JSON protocol on POST /\n",
            )
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        base = "http://" + (headers.get("host") or f"{host}:{port}")
        assert self.service is not None
        try:
            handler = self.service.operations.get(operation)
            if handler is None:
                raise errors.unsupported_operation(operation or "(no X-Amz-Target)")
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
            result = handler(request, base)
            status, payload = 200, orjson.dumps(result)
            response_headers = {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id}
        except errors.SqsError as exc:
            return _error_response(exc, request_id)
        except Exception:
            log.exception("local_queue: %s failed", operation)
            return _error_response(errors.internal_error(), request_id)
        return status, response_headers, payload


def _error_response(exc: errors.SqsError, request_id: str) -> tuple[int, dict[str, str], bytes]:
    """An error as SQS's JSON protocol sends it; the query-error header lets botocore
    raise the same exception classes and codes as against real SQS."""
    payload = orjson.dumps({"__type": f"com.amazonaws.sqs#{exc.shape}", "message": exc.message})
    headers = {
        "Content-Type": CONTENT_TYPE,
        "x-amzn-RequestId": request_id,
        "x-amzn-query-error": f"{exc.code};{exc.fault}",
    }
    return exc.status, headers, payload
