"""The template's APIs on one local port: requests in, API Gateway's Lambda events out, and back.

Events follow API Gateway's Lambda proxy integration: payload 2.0 for HTTP APIs
(lower-cased headers, repeated headers and query values comma-joined, `cookies`,
base64 for bodies that are not text), payload 1.0 for REST APIs (or an HTTP API
that asks for it). Responses are read back the way API Gateway reads them.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import re
import secrets
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from local_runtime import eventloop, integrations
from local_runtime.template import ACCOUNT_ID, Cors, Route, ServiceRoute
from local_runtime.workers import Outcome
from toolkit import forgery

log = logging.getLogger("local_runtime")

# Bodies API Gateway passes as text; anything else (forms and binaries too) arrives base64.
_TEXT_TYPES = re.compile(
    r"^(text/.*|application/(json|xml|javascript|.*\+json|.*\+xml))$", re.IGNORECASE
)
# The runtime's own endpoints (fire a schedule, invoke, health). They answer only
# the exact paths they serve (`owns`); any other path under the prefix is the
# template's, so a catch-all route ({proxy+}, $default) receives it as in AWS.
LOCAL_PREFIX = "/_local/"
_JSON_TYPE = ("Content-Type", "application/json")
STOP_WAIT_SECONDS = 60.0  # at stop, how long requests being answered may still take
# What the server refuses before it invokes anything.
MAX_BODY = 16 * 1024 * 1024  # 413 past it (API Gateway's own limit is 10 MB)
MAX_HEADERS = 200  # 431 past it, or past MAX_HEADER_BYTES of names and values
MAX_HEADER_BYTES = 64 * 1024
BACKLOG = 1024  # connections waiting to be accepted; 5 would reset clients under load
# An idle kept-alive connection stays open this long (clients here reuse theirs).
KEEP_ALIVE_SECONDS = 120
BLOCKING_THREADS = 8  # for the runtime's own endpoints and SQS integrations


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # as received, repeated names kept
    body: bytes
    source_ip: str
    protocol: str


@dataclass(frozen=True)
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class CompiledRoute:
    def __init__(self, route: Route | ServiceRoute) -> None:
        self.route = route
        if route.path == "$default":
            self.pattern = None
            self.rank = (2, 0, 0)
            return
        parts, literal = [], 0
        greedy = False
        for segment in route.path.strip("/").split("/"):
            match = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
            if match and match.group(2):
                parts.append(f"(?P<{_group(match.group(1))}>.+)")
                greedy = True
            elif match:
                parts.append(f"(?P<{_group(match.group(1))}>[^/]+)")
            else:
                parts.append(re.escape(segment))
                literal += 1
        self.names = re.findall(r"\{([^}+]+)\+?\}", route.path)
        self.pattern = re.compile("/" + "/".join(parts) if parts != [""] else "/")
        # API Gateway prefers the most specific route: literal segments beat
        # parameters, parameters beat a greedy {proxy+}, and ANY comes last.
        self.rank = (1 if greedy else 0, -literal, 1 if route.method == "ANY" else 0)

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.route.method not in ("ANY", method):
            return None
        if self.pattern is None:
            return {}
        found = self.pattern.fullmatch(path)
        if not found:
            return None
        return {name: unquote(found.group(_group(name))) for name in self.names}


def _group(name: str) -> str:
    return "p_" + re.sub(r"\W", "_", name)


def _request_id() -> str:
    # HTTP APIs use 16-character ids like "JKJaXmPLvHcESHA="
    return base64.b64encode(secrets.token_bytes(11)).decode()


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)}"


def _body_for_event(request: Request) -> tuple[str | None, bool]:
    if not request.body:
        return None, False
    content_type = next((v for k, v in request.headers if k.lower() == "content-type"), "")
    mime = content_type.split(";")[0].strip()
    if _TEXT_TYPES.match(mime):
        try:
            return request.body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(request.body).decode(), True


def _joined(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in pairs:
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    return joined


def _multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    return multi


def http_api_event(
    request: Request, route: Route, path_parameters: dict[str, str], port: int
) -> dict[str, Any]:
    """Payload format 2.0, as an HTTP API sends it to Lambda."""
    now = datetime.now(UTC)
    cookies: list[str] = []
    headers: list[tuple[str, str]] = []
    for name, value in request.headers:
        if name.lower() == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        else:
            headers.append((name.lower(), value))
    headers += [
        ("x-forwarded-for", request.source_ip),
        ("x-forwarded-port", str(port)),
        ("x-forwarded-proto", "http"),
        ("x-amzn-trace-id", _trace_id()),
    ]
    user_agent = next((v for k, v in headers if k == "user-agent"), "")
    body, is_base64 = _body_for_event(request)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = _joined(headers)
    query = parse_qsl(request.raw_query, keep_blank_values=True)
    if query:
        event["queryStringParameters"] = _joined(query)
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": route.api,
        "domainName": f"127.0.0.1:{port}",
        "domainPrefix": "127",
        "http": {
            "method": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": user_agent,
        },
        "requestId": _request_id(),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if body is not None:
        event["body"] = body
    if path_parameters:
        event["pathParameters"] = path_parameters
    event["isBase64Encoded"] = is_base64
    return event


def rest_api_event(
    request: Request, route: Route, path_parameters: dict[str, str], port: int
) -> dict[str, Any]:
    """Payload format 1.0, as a REST API (Lambda proxy integration) sends it."""
    now = datetime.now(UTC)
    headers = [*request.headers, ("X-Forwarded-For", request.source_ip)]
    query = parse_qsl(request.raw_query, keep_blank_values=True)
    body, is_base64 = _body_for_event(request)
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
    single_query = dict(query)  # the last value of each name, as API Gateway does
    return {
        "resource": route.path,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": dict(headers),
        "multiValueHeaders": _multi(headers),
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": _multi(query) or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": route.api,
            "resourcePath": route.path,
            "httpMethod": request.method,
            "path": request.raw_path,
            "protocol": request.protocol,
            "requestId": str(uuid.uuid4()),
            "extendedRequestId": _request_id(),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "stage": "local",
            "domainName": f"127.0.0.1:{port}",
            "identity": {"sourceIp": request.source_ip, "userAgent": user_agent},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def _error(status: int, message: str) -> Response:
    body = json.dumps({"message": message}).encode()
    return Response(status, [("Content-Type", "application/json")], body)


def response_from_result(result: Any, payload_version: str) -> Response:
    """What API Gateway returns for the handler's result; a malformed one is its error."""
    bad = _error(502 if payload_version == "1.0" else 500, "Internal Server Error")
    if payload_version == "2.0" and not (isinstance(result, dict) and "statusCode" in result):
        # HTTP APIs accept any JSON and treat it as a 200 body.
        text = result if isinstance(result, str) else json.dumps(result)
        return Response(200, [("Content-Type", "application/json")], text.encode())
    if not isinstance(result, dict):
        return bad
    try:
        status = int(result.get("statusCode"))
    except (TypeError, ValueError):
        return bad
    headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(str(name), str(v)) for v in values]
    for cookie in result.get("cookies") or []:
        headers.append(("Set-Cookie", str(cookie)))
    body = result.get("body") or ""
    if not isinstance(body, str):
        body = json.dumps(body) if payload_version == "2.0" else None
        if body is None:
            return bad
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    if payload_version == "2.0" and not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return Response(status, headers, raw)


def service_response(
    route: ServiceRoute,
    values: integrations.RequestValues,
    content_type: str,
    send: integrations.Send,
) -> Response:
    """The integration for one request: SQS's answer as API Gateway returns it."""
    if route.kind == "HttpApi":
        try:
            result = send(route.queue, integrations.mapped(dict(route.parameters), values))
        except integrations.SqsRefused as refused:
            body = integrations.error_response(refused.code, refused.message, values.request_id)
            return Response(refused.status, [_JSON_TYPE], body)
        return Response(
            200, [_JSON_TYPE], integrations.send_message_response(result, values.request_id)
        )
    templates = dict(route.templates)
    template = templates.get(content_type)
    if template is not None:
        form = integrations.render(template, values)
    elif route.passthrough == "NEVER" or (route.passthrough == "WHEN_NO_TEMPLATES" and templates):
        body = json.dumps({"message": "Unsupported Media Type"}).encode()
        return Response(415, [_JSON_TYPE], body)
    else:
        form = values.body  # passed through to SQS as it came
    parameters = integrations.form_parameters(form)
    try:
        if parameters.get("Action") != "SendMessage":
            raise integrations.SqsRefused(
                "InvalidAction", f"The action {parameters.get('Action')} is not valid"
            )
        message = {k: v for k, v in parameters.items() if k in integrations.SEND_MESSAGE_PARAMETERS}
        if "MessageBody" not in message:
            raise integrations.SqsRefused(
                "MissingParameter", "The request must contain MessageBody."
            )
        status, body = (
            200,
            integrations.send_message_response(send(route.queue, message), values.request_id),
        )
    except integrations.SqsRefused as refused:
        status, body = (
            refused.status,
            integrations.error_response(refused.code, refused.message, values.request_id),
        )
    mapped_status = integrations.integration_status(route.responses, status)
    if mapped_status is None:
        # No integration response for SQS's status: API Gateway's configuration error.
        body = json.dumps({"message": "Internal server error"}).encode()
        return Response(500, [_JSON_TYPE], body)
    return Response(mapped_status, [_JSON_TYPE], body)


def allowed_origin(cors: Cors, origin: str) -> str:
    """What Access-Control-Allow-Origin answers an origin; empty when it is not allowed."""
    if "*" in cors.allow_origins:
        return "*"
    return origin if origin in cors.allow_origins else ""


def _preflight(cors: Cors, origin: str) -> Response:
    """API Gateway answers a preflight itself (204), never invoking a function."""
    allowed = allowed_origin(cors, origin)
    if not allowed:
        return Response(204, [], b"")
    headers = [
        ("Access-Control-Allow-Origin", allowed),
        ("Access-Control-Allow-Methods", ",".join(cors.allow_methods)),
        ("Access-Control-Allow-Headers", ",".join(cors.allow_headers)),
    ]
    if cors.max_age is not None:
        headers.append(("Access-Control-Max-Age", str(cors.max_age)))
    return Response(204, headers, b"")


Invoker = Callable[[str, Any], Awaitable[Outcome]]
LocalEndpoint = Callable[[Request, str], Response]


class _Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, keeping header names as the client sent them.

    ASGI lower-cases them; a REST API's event (payload 1.0) has them as sent, and
    uvicorn itself reads none of a request's headers past the parser's own flags.
    """

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.headers[-1] = (name, self.headers[-1][1])


class ApiServer:
    """Serves every route of the template on one address: uvicorn (httptools, uvloop).

    An ASGI app on the runtime's event loop (local_runtime/eventloop.py): a Lambda
    route's request awaits its function's worker there, with no thread per connection
    or request. The runtime's own endpoints and API Gateway's SQS integrations make
    blocking calls (PostgreSQL, botocore, a schedule's invocation), so they run in a
    few threads beside it.
    """

    def __init__(
        self,
        routes: list[Route],
        invoke: Invoker,
        host: str = "127.0.0.1",
        port: int = 3000,
        local_endpoints: dict[str, LocalEndpoint] | None = None,
        owns: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.routes = sorted((CompiledRoute(r) for r in routes), key=lambda c: c.rank)
        self.cors: dict[str, Cors] = {}
        self.invoke = invoke
        self.send: integrations.Send | None = None
        self.local_endpoints = local_endpoints or {}
        # (endpoint name, rest of the path) -> whether the runtime serves that exact path
        self.owns = owns or (lambda name, rest: name in self.local_endpoints)
        # Bound now: the API's URL is in the template's values before anything starts.
        self.socket = socket.create_server((host, port), backlog=BACKLOG)
        self.port = self.socket.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.hosts = forgery.own_hosts(host, self.port)
        self._blocking = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="api blocking")
        self._server: uvicorn.Server | None = None
        self._serving: concurrent.futures.Future[None] | None = None

    def set_routes(
        self,
        routes: list[Route],
        cors: dict[str, Cors] | None = None,
        service_routes: list[ServiceRoute] | None = None,
        send: integrations.Send | None = None,
    ) -> None:
        every: list[Route | ServiceRoute] = [*routes, *(service_routes or [])]
        self.routes = sorted((CompiledRoute(r) for r in every), key=lambda c: c.rank)
        self.cors = cors or {}
        self.send = send

    def start(self) -> None:
        config = uvicorn.Config(
            self,
            http=_Protocol,
            ws="none",
            lifespan="off",
            log_config=None,  # the runtime's logging stays as it is
            log_level="warning",
            access_log=False,  # the runtime logs each request itself
            proxy_headers=False,
            server_header=False,
            date_header=False,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=STOP_WAIT_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(
            self._server.serve(sockets=[self.socket]), eventloop.loop()
        )

    def stop(self) -> None:
        """Stops accepting connections, then waits for the requests being answered."""
        if self._server is not None and self._serving is not None:
            self._server.should_exit = True
            try:
                self._serving.result(STOP_WAIT_SECONDS + 5)
            except concurrent.futures.TimeoutError:
                log.warning("the API's last requests were not answered in time")
        self.socket.close()
        self._blocking.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        """The ASGI app: one HTTP request in, one answer out."""
        if scope["type"] != "http":
            return
        pairs = [
            (name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]
        ]
        refused = _refused(pairs)
        if refused is not None:
            await _answer(send, refused, head=False, close=True)
            return
        body = await _body(receive, pairs)
        if isinstance(body, Response):
            await _answer(send, body, head=False, close=True)
            return
        if body is None:
            return  # the client went away
        client = scope.get("client") or ("", 0)
        request = Request(
            method=scope["method"],
            raw_path=scope["raw_path"].decode("latin-1"),
            raw_query=scope["query_string"].decode("latin-1"),
            headers=pairs,
            body=body,
            source_ip=client[0],
            protocol="HTTP/" + scope["http_version"],
        )
        response = await self.handle(request)
        await _answer(send, response, head=request.method == "HEAD", close=False)

    async def handle(self, request: Request) -> Response:
        started = time.monotonic()
        target = "-"
        name, _, rest = request.raw_path.removeprefix(LOCAL_PREFIX).partition("/")
        if request.raw_path.startswith(LOCAL_PREFIX) and self.owns(name, rest):
            target = "runtime"
            response = await self._in_thread(self._local, request, name, rest)
        else:
            response, target = await self._route(request)
        log.info(
            "request  %s %s -> %s %s %.0f ms",
            request.method,
            request.raw_path,
            response.status,
            target,
            (time.monotonic() - started) * 1000,
        )
        return response

    async def _in_thread(self, call: Callable[..., Response], *args: Any) -> Response:
        return await asyncio.get_running_loop().run_in_executor(self._blocking, call, *args)

    def _local(self, request: Request, name: str, rest: str) -> Response:
        # The runtime's own endpoints invoke functions with any event and fire schedules,
        # so a page in the developer's browser must not reach them (toolkit.forgery).
        # The template's routes are the app's API: they answer as API Gateway would.
        headers = {name.lower(): value for name, value in request.headers}
        refused = forgery.refusal(
            request.method, headers, len(request.body), self.hosts, forgery.JSON
        )
        if refused is not None:
            log.warning("refused  %s %s: %s", request.method, request.raw_path, refused)
            return _error(403, f"Refused: {refused}. Local endpoints take no browser requests.")
        endpoint = self.local_endpoints.get(name)
        return endpoint(request, rest) if endpoint else _error(404, "Not Found")

    async def _route(self, request: Request) -> tuple[Response, str]:
        headers = {name.lower(): value for name, value in request.headers}
        origin = headers.get("origin")
        cors = self._cors_for(request.raw_path) if origin else None
        if cors is not None and origin is not None:
            if request.method == "OPTIONS" and "access-control-request-method" in headers:
                return _preflight(cors, origin), "cors preflight"
            response, target = await self._invoke_route(request)
            if allowed_origin(cors, origin):
                response.headers.append(
                    ("Access-Control-Allow-Origin", allowed_origin(cors, origin))
                )
            return response, target
        return await self._invoke_route(request)

    def _cors_for(self, path: str) -> Cors | None:
        """The CORS of the HTTP API that has a route for this path, any method."""
        for compiled in self.routes:
            route = compiled.route
            if route.api in self.cors and compiled.match(route.method, path) is not None:
                return self.cors[route.api]
        return None

    async def _invoke_route(self, request: Request) -> tuple[Response, str]:
        for compiled in self.routes:
            params = compiled.match(request.method, request.raw_path)
            if params is None:
                continue
            route = compiled.route
            if isinstance(route, ServiceRoute):
                response = await self._in_thread(self._service, request, route, params)
                return response, route.function
            build = http_api_event if route.payload_version == "2.0" else rest_api_event
            event = build(request, route, params, self.port)
            outcome = await self.invoke(route.function, event)
            if not outcome.ok:
                # API Gateway hides the function's error from the client.
                status = 502 if route.payload_version == "1.0" else 500
                target = f"{route.function} {outcome.error['errorType']}"
                return _error(status, "Internal Server Error"), target
            response = response_from_result(outcome.result, route.payload_version)
            target = route.function + (" (cold)" if outcome.cold else "")
            if route.payload_version == "2.0":
                request_id = event["requestContext"]["requestId"]
                response.headers.append(("apigw-requestid", request_id))
            return response, target
        return _error(404, "Not Found"), "no route"

    def _service(self, request: Request, route: ServiceRoute, params: dict[str, str]) -> Response:
        assert self.send is not None
        headers = {name.lower(): value for name, value in request.headers}
        values = integrations.RequestValues(
            body=request.body.decode("utf-8", errors="replace"),
            request_id=str(uuid.uuid4()),
            headers=headers,
            query=dict(parse_qsl(request.raw_query, keep_blank_values=True)),
            path=params,
        )
        # API Gateway picks a REST mapping template by Content-Type, application/json if none.
        content_type = headers.get("content-type", "application/json").split(";")[0].strip()
        return service_response(route, values, content_type.lower(), self.send)


def _plain(status: int) -> Response:
    return Response(status, [("Content-Type", "text/plain")], HTTPStatus(status).phrase.encode())


def _refused(pairs: list[tuple[str, str]]) -> Response | None:
    """What the server refuses before reading a body: too many or too large headers,
    a body over the limit, a length that is no number."""
    if len(pairs) > MAX_HEADERS or sum(len(n) + len(v) for n, v in pairs) > MAX_HEADER_BYTES:
        return _plain(431)
    length = next((v for n, v in pairs if n.lower() == "content-length"), None)
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        return _plain(413)
    return None


async def _body(receive: Callable, pairs: list[tuple[str, str]]) -> bytes | Response | None:
    """The request's body (chunked ones too, up to the limit); None if the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return _plain(413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Callable, response: Response, *, head: bool, close: bool) -> None:
    headers = [
        (name.encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in response.headers
        if name.lower() not in ("content-length", "connection", "transfer-encoding")
    ]
    headers.append((b"content-length", str(len(response.body)).encode()))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else response.body})
