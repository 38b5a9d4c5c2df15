"""The pollers' calls to local_queue in SQS's JSON protocol, without botocore.

The local runtime's pollers (receive, delete, release) and the benchmarks' storers
call the local_queue they started through this client: botocore's serialising, hooks
and parsing cost more CPU than local_queue's whole answer.
"""

from __future__ import annotations

import http.client
from typing import Any
from urllib.parse import urlsplit

import orjson
from botocore.exceptions import ClientError, EndpointConnectionError


class LocalQueueClient:
    """The pollers' calls to local_queue in SQS's JSON protocol, over one kept-alive
    connection: what botocore sends and reads, without its machinery.

    Answers are the protocol's JSON as botocore would return it, but for a binary
    message attribute, which stays in base64 (Lambda's record wants it so). Errors are
    botocore's exceptions (ClientError with SQS's code, EndpointConnectionError), so a
    caller handles both clients alike. Not thread-safe: one per poller.
    """

    ATTEMPTS = 3  # as botocore's standard retry mode: a dropped kept-alive connection is redone

    def __init__(self, endpoint_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"not a local_queue endpoint: {endpoint_url}")
        self.endpoint_url = endpoint_url
        self._address = (parts.hostname, parts.port)
        self._timeout = timeout  # above SQS's longest long poll (20 s)
        self._connection: http.client.HTTPConnection | None = None

    def _call(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        body = orjson.dumps(request)
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "AmazonSQS." + operation,
        }
        for attempt in range(self.ATTEMPTS):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(*self._address, timeout=self._timeout)
            try:
                self._connection.request("POST", "/", body, headers)
                response = self._connection.getresponse()
                data = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == self.ATTEMPTS - 1:
                    raise EndpointConnectionError(endpoint_url=self.endpoint_url) from exc
        if response.will_close:
            self.close()
        try:
            answer = orjson.loads(data) if data else {}
        except orjson.JSONDecodeError:
            answer = {"message": data.decode("utf-8", "replace")}
        if response.status != 200:
            code = answer.get("__type", "").rsplit("#", 1)[-1] or str(response.status)
            query_error = response.getheader("x-amzn-query-error")
            if query_error:
                code = query_error.split(";", 1)[0]  # botocore's code for SQS's errors
            error = {"Code": code, "Message": answer.get("message", "")}
            raise ClientError(
                {"Error": error, "ResponseMetadata": {"HTTPStatusCode": response.status}},
                operation,
            )
        return answer

    def receive_message(self, **request: Any) -> dict[str, Any]:
        return self._call("ReceiveMessage", request)

    def delete_message_batch(self, **request: Any) -> dict[str, Any]:
        return self._call("DeleteMessageBatch", request)

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        return self._call("ChangeMessageVisibilityBatch", request)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
