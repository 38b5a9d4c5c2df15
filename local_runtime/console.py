"""The local console: the template's own CloudWatch dashboard, drawn from what `make dev` sees.

`GET /_local/console/` is a page (local_runtime/console_static/, charts by the
vendored uPlot) that polls `GET /_local/console/data` every second. The data is
the dashboard resource of the template (its `DashboardBody`, `${...}` replaced by
the local names), each widget line filled from what exists locally:

- `Sluice` metrics: the EMF documents the functions print (Powertools Metrics),
  read from the runtime's log of their output;
- `AWS/Lambda` and `AWS/ApiGateway`: the runtime's own line per request and per
  queue or schedule invocation (duration, outcome);
- `AWS/SQS` depth and in-flight counts: the local queues' attributes, sampled at
  every poll; `AWS/RDS` connections: pg_stat_activity.

A line with no local counterpart (the age of the oldest message, RDS CPU,
concurrency) says so instead of drawing zeros. Beside the dashboard: the queues
with a redrive button for each DLQ (`POST /_local/console/redrive`), the recent
events followed by id through ingest's and store's log lines, the functions'
warnings and errors, the mail moto's SES captured and the rollups.

Every `/_local/` request passes toolkit.forgery first (ApiServer._local),
so only the page itself, served from the same origin, can use these endpoints.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict, deque
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import orjson

from local_runtime.api import Request, Response
from local_runtime.template import Template, Topology

STATIC = Path(__file__).with_name("console_static")
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# The page and its scripts come from this server only; nothing is fetched elsewhere.
PAGE_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Cache-Control", "no-store"),
]
WINDOW_SECONDS = 5 * 60  # what the charts show
BUCKET_SECONDS = 5  # locally a widget's period is this, so a chart moves within seconds
MAX_POINTS = 20_000  # per metric line, oldest dropped first
MAX_EVENTS = 200
MAX_PROBLEMS = 50
SUBSTITUTION = re.compile(r"\$\{([^}]+)\}")
# Lines the runtime logs (local_runtime.api, .sqs, .schedules): "%.0f ms" is the duration.
# Powertools' fields on every line: the console shows a problem's own fields only.
LOG_CONTEXT = ("level", "message", "timestamp", "location", "service", "xray_trace_id")
REQUEST_LINE = "request "
INVOKE_LINE = "invoke "


# What the runtime measures of the AWS namespaces (everything of Sluice's own is printed).
MEASURED = {
    "AWS/ApiGateway": {"Count", "4xx", "5xx", "Latency"},
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible"},
    "AWS/RDS": {"DatabaseConnections"},
}


def measured_locally(namespace: str, name: str) -> bool:
    return not namespace.startswith("AWS/") or name in MEASURED.get(namespace, set())


@cache  # a handful of formats, one per log call site; read at every request's line
def _placeholders(message: str) -> list[str]:
    return re.findall(r"%[-+ #0-9.]*[sdfr]", message)


class Metrics:
    """Data points by (namespace, name, dimensions), as CloudWatch would hold them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._points: dict[tuple[str, str, tuple], deque[tuple[float, float]]] = {}

    @staticmethod
    def key(namespace: str, name: str, dimensions: dict[str, str]) -> tuple[str, str, tuple]:
        return namespace, name, tuple(sorted(dimensions.items()))

    def add(self, namespace: str, name: str, dimensions: dict[str, str], at: float, value: float):
        key = self.key(namespace, name, dimensions)
        with self._lock:
            points = self._points.get(key)
            if points is None:
                points = self._points[key] = deque(maxlen=MAX_POINTS)
            points.append((at, value))

    def points(
        self, namespace: str, name: str, dimensions: dict[str, str], since: float
    ) -> list[tuple[float, float]] | None:
        """The points since `since`; None when nothing local ever reported this metric."""
        with self._lock:
            points = self._points.get(self.key(namespace, name, dimensions))
            return None if points is None else [p for p in points if p[0] >= since]

    def names(self, namespace: str) -> set[str]:
        with self._lock:
            return {name for ns, name, _ in self._points if ns == namespace}


def statistic(stat: str, values: list[float]) -> float | None:
    """CloudWatch's statistic over values: Sum, Average, Minimum, Maximum, SampleCount, pNN."""
    if not values:
        return None
    if stat == "Sum":
        return sum(values)
    if stat == "Average":
        return sum(values) / len(values)
    if stat == "Minimum":
        return min(values)
    if stat == "Maximum":
        return max(values)
    if stat == "SampleCount":
        return float(len(values))
    match = re.fullmatch(r"p(\d+(?:\.\d+)?)", stat)
    if match:
        ordered = sorted(values)
        rank = math.ceil(float(match.group(1)) / 100 * len(ordered))
        return ordered[min(max(rank, 1), len(ordered)) - 1]
    return None


def emf_points(document: dict[str, Any]) -> list[tuple[str, str, dict[str, str], float, float]]:
    """(namespace, name, dimensions, time, value) of each value an EMF document holds."""
    found = []
    meta = document.get("_aws")
    if not isinstance(meta, dict):
        return found
    at = float(meta.get("Timestamp", time.time() * 1000)) / 1000
    for directive in meta.get("CloudWatchMetrics") or []:
        namespace = directive.get("Namespace", "")
        dimension_sets = directive.get("Dimensions") or [[]]
        for metric in directive.get("Metrics") or []:
            name = metric.get("Name")
            values = document.get(name)
            values = values if isinstance(values, list) else [values]
            for names in dimension_sets:
                dimensions = {n: str(document.get(n, "")) for n in names}
                found += [
                    (namespace, name, dimensions, at, float(v))
                    for v in values
                    if isinstance(v, int | float)
                ]
    return found


class _Tap(logging.Handler):
    """Hands every record of one logger to a callback; never lets it fail the logger."""

    def __init__(self, callback) -> None:
        super().__init__(logging.INFO)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.callback(record)
        except Exception:  # noqa: S110 - a console bug must not break the runtime's log
            pass


class _Region(Protocol):
    region: str


class Stack(Protocol):
    """What the console reads of the running stack: local_runtime.runtime.Runtime, which
    makes the console, is one (named here, not imported: the runtime imports this module)."""

    template: Template
    topology: Topology | None
    queue_urls: dict[str, str]
    aws_endpoint_url: str
    database_url: str | None
    config: _Region

    def sqs_client(self) -> Any: ...


class Console:
    def __init__(self, runtime: Stack) -> None:
        self.runtime = runtime
        self.metrics = Metrics()
        self._lock = threading.Lock()
        self.events: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.problems: deque[dict[str, Any]] = deque(maxlen=MAX_PROBLEMS)
        self._sqs = None
        self._database = None
        self._dashboard: dict[str, Any] | None = None
        self._api_ids: set[str] | None = None
        self._taps = [
            (logging.getLogger("local_runtime.handler"), _Tap(self._function_output)),
            (logging.getLogger("local_runtime"), _Tap(self._runtime_line)),
        ]
        runtime_logger = logging.getLogger("local_runtime")
        if runtime_logger.getEffectiveLevel() > logging.INFO:
            # The request and invoke lines are INFO; `make dev` logs them anyway.
            runtime_logger.setLevel(logging.INFO)
        for logger, tap in self._taps:
            logger.addHandler(tap)

    def close(self) -> None:
        for logger, tap in self._taps:
            logger.removeHandler(tap)
        if self._database is not None:
            self._database.close()

    # ------------------------------------------------------------ what is logged
    def _function_output(self, record: logging.LogRecord) -> None:
        if not (isinstance(record.args, tuple) and len(record.args) == 2):
            return
        function, line = record.args
        if not isinstance(line, str) or not line.startswith("{"):
            return
        try:  # a few lines per request: orjson reads them in a fraction of json's time
            document = orjson.loads(line)
        except orjson.JSONDecodeError:  # NaN and the like, which json reads
            document = json.loads(line)
        if not isinstance(document, dict):
            return
        for namespace, name, dimensions, at, value in emf_points(document):
            self.metrics.add(namespace, name, dimensions, at, value)
        message = document.get("message")
        if "level" in document and isinstance(message, str):
            self._log_line(str(function), document, message)

    def _log_line(self, function: str, document: dict[str, Any], message: str) -> None:
        now = time.time()
        with self._lock:
            if message == "events queued":
                for event_id in document.get("event_ids") or []:
                    self._event(event_id).update(
                        status="queued",
                        queued_at=now,
                        api_request_id=document.get("api_request_id"),
                    )
            elif message in ("batch stored", "database unavailable; whole batch returned"):
                # Only events this console saw queued: under load the oldest are let go.
                for event_id in document.get("stored_event_ids") or []:
                    if event_id in self.events:
                        self.events[event_id].update(status="stored", stored_at=now)
                # A retry skipped for its messageId: its lookup leads to the stored row.
                for event_id in document.get("duplicate_event_ids") or []:
                    if event_id in self.events:
                        self.events[event_id].update(status="duplicate", stored_at=now)
                for event_id in document.get("returned_event_ids") or []:
                    self._event(event_id).update(status="handed back", error=message)
        if document.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            fields = {
                k: v
                for k, v in document.items()
                if k
                not in ("level", "message", "timestamp", "location", "service", "xray_trace_id")
                and not k.startswith(("function_", "cold_start"))
            }
            self.problems.appendleft(
                {
                    "at": now,
                    "function": function,
                    "level": document["level"],
                    "message": message,
                    "fields": fields,
                }
            )

    def _event(self, event_id: str) -> dict[str, Any]:
        event = self.events.get(event_id)
        if event is None:
            event = self.events[event_id] = {"event_id": event_id, "status": "queued"}
            while len(self.events) > MAX_EVENTS:
                self.events.popitem(last=False)
        return event

    def _runtime_line(self, record: logging.LogRecord) -> None:
        message = record.msg if isinstance(record.msg, str) else ""
        if not message.startswith((REQUEST_LINE, INVOKE_LINE)) or not isinstance(
            record.args, tuple
        ):
            return
        placeholders = _placeholders(message)
        if "%.0f" not in placeholders or len(placeholders) != len(record.args):
            return
        milliseconds = float(record.args[placeholders.index("%.0f")])
        at = record.created
        if message.startswith(REQUEST_LINE):
            _method, path, status, target = record.args[:4]
            if str(path).startswith("/_local/") or str(target) in ("-", "no route"):
                return
            function, _, rest = str(target).partition(" ")
            ok = rest in ("", "(cold)")
            for api in self._apis():
                dimensions = {"ApiId": api}
                self.metrics.add("AWS/ApiGateway", "Count", dimensions, at, 1)
                self.metrics.add("AWS/ApiGateway", "4xx", dimensions, at, int(400 <= status < 500))
                self.metrics.add("AWS/ApiGateway", "5xx", dimensions, at, int(status >= 500))
                self.metrics.add("AWS/ApiGateway", "Latency", dimensions, at, milliseconds)
            if rest == "TooManyRequestsException":  # its reserved concurrency was busy
                self._throttle(function, at)
                return
        else:
            function, outcome = str(record.args[0]), record.args[1]
            ok = outcome == "ok"
        self._invocation(function, ok, milliseconds, at)

    def _invocation(self, logical_id: str, ok: bool, milliseconds: float, at: float) -> None:
        dimensions = self._function_dimensions(logical_id)
        if dimensions is None:
            return
        self.metrics.add("AWS/Lambda", "Invocations", dimensions, at, 1)
        self.metrics.add("AWS/Lambda", "Errors", dimensions, at, 0 if ok else 1)
        self.metrics.add("AWS/Lambda", "Throttles", dimensions, at, 0)
        self.metrics.add("AWS/Lambda", "Duration", dimensions, at, milliseconds)

    def _throttle(self, logical_id: str, at: float) -> None:
        """A refused invocation: in CloudWatch a throttle, neither an invocation nor an error."""
        dimensions = self._function_dimensions(logical_id)
        if dimensions is not None:
            self.metrics.add("AWS/Lambda", "Throttles", dimensions, at, 1)

    def _function_dimensions(self, logical_id: str) -> dict[str, str] | None:
        topology = self.runtime.topology
        if topology is None or logical_id not in topology.functions:
            return None
        return {"FunctionName": topology.functions[logical_id].name}

    def _apis(self) -> set[str]:
        topology = self.runtime.topology
        if topology is None:
            return set()
        if self._api_ids is None:  # the topology is read once, at start
            self._api_ids = {route.api for route in topology.routes}
        return self._api_ids

    # ------------------------------------------------------------ the dashboard
    def dashboard(self) -> dict[str, Any]:
        """The template's dashboard body, its `${...}` replaced by the local names."""
        if self._dashboard is None:
            self._dashboard = self._resolve_dashboard()
        return self._dashboard

    def _resolve_dashboard(self) -> dict[str, Any]:
        resources = self.runtime.template.document.get("Resources", {})
        bodies = [
            r.get("Properties", {}).get("DashboardBody")
            for r in resources.values()
            if r.get("Type") == "AWS::CloudWatch::Dashboard"
        ]
        if not bodies:
            return {"widgets": []}
        body = bodies[0]
        text = body.get("Fn::Sub") if isinstance(body, dict) else body
        if not isinstance(text, str):
            return {"widgets": []}
        return json.loads(SUBSTITUTION.sub(lambda m: self._local_name(m.group(1)), text))

    def _local_name(self, reference: str) -> str:
        topology = self.runtime.topology
        logical_id, _, attribute = reference.partition(".")
        if reference == "AWS::Region":
            return self.runtime.config.region
        if topology is not None and logical_id in topology.functions and not attribute:
            return topology.functions[logical_id].name
        if topology is not None and logical_id in topology.queues and attribute == "QueueName":
            return topology.queues[logical_id].name
        return logical_id  # the API and the database: the local runtime names them so

    def widgets(self, now: float) -> list[dict[str, Any]]:
        since = now - WINDOW_SECONDS
        drawn = []
        for widget in self.dashboard().get("widgets", []):
            properties = widget.get("properties", {})
            if widget.get("type") != "metric":
                continue
            lines = []
            for line in properties.get("metrics", []):
                fields = [part for part in line if isinstance(part, str)]
                options = next((part for part in line if isinstance(part, dict)), {})
                namespace, name, *pairs = fields
                dimensions = dict(zip(pairs[::2], pairs[1::2], strict=False))
                stat = options.get("stat", properties.get("stat", "Average"))
                points = self.metrics.points(namespace, name, dimensions, since)
                lines.append(
                    {
                        "label": options.get("label", name),
                        "namespace": namespace,
                        "name": name,
                        "dimensions": dimensions,
                        "stat": stat,
                        # False: nothing on this machine stands for it (RDS CPU, say).
                        "local": measured_locally(namespace, name),
                        "value": statistic(stat, [v for _, v in points or []]),
                        "series": _buckets(points or [], stat, since, now),
                    }
                )
            drawn.append(
                {
                    "title": properties.get("title", ""),
                    "x": widget.get("x", 0),
                    "y": widget.get("y", 0),
                    "width": widget.get("width", 6),
                    "height": widget.get("height", 6),
                    "lines": lines,
                }
            )
        return drawn

    # ------------------------------------------------------------ local state
    def _sqs_client(self):
        if self._sqs is None:
            self._sqs = self.runtime.sqs_client()
        return self._sqs

    def queues(self, now: float) -> list[dict[str, Any]]:
        topology = self.runtime.topology
        if topology is None:
            return []
        sources = {
            q.dead_letter_arn: q.logical_id for q in topology.queues.values() if q.dead_letter_arn
        }
        rows = []
        for logical_id, queue in topology.queues.items():
            url = self.runtime.queue_urls.get(logical_id)
            if url is None:
                continue
            attributes = self._sqs_client().get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            visible = int(attributes.get("ApproximateNumberOfMessages", 0))
            in_flight = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
            dimensions = {"QueueName": queue.name}
            self.metrics.add(
                "AWS/SQS", "ApproximateNumberOfMessagesVisible", dimensions, now, visible
            )
            self.metrics.add(
                "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", dimensions, now, in_flight
            )
            rows.append(
                {
                    "logical_id": logical_id,
                    "name": queue.name,
                    "visible": visible,
                    "in_flight": in_flight,
                    "delayed": int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)),
                    "dead_letter_queue": next(
                        (
                            q.logical_id
                            for q in topology.queues.values()
                            if q.arn == queue.dead_letter_arn
                        ),
                        None,
                    ),
                    "dead_letters_of": sources.get(queue.arn),
                }
            )
        return rows

    def _db(self):
        if self._database is None and self.runtime.database_url:
            from sluice.core.config import DatabaseSettings
            from sluice.core.db import Database

            self._database = Database(DatabaseSettings(url=self.runtime.database_url))
        return self._database

    def stored(self, now: float) -> dict[str, Any]:
        """Recent events with what the database says of them, and the rollups."""
        database = self._db()
        with self._lock:
            tracked = [dict(event) for event in reversed(self.events.values())]
        if database is None:
            return {"events": tracked, "rollups": []}

        def read(conn) -> tuple[list, list, int]:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT event_id::text, app_id, event_name, status, validation_errors,"
                    " payload::text, extract(epoch FROM received_at), extract(epoch FROM stored_at)"
                    " FROM events WHERE event_id = ANY(%s::uuid[])"
                    " UNION ALL (SELECT event_id::text, app_id, event_name, status,"
                    " validation_errors, payload::text, extract(epoch FROM received_at),"
                    " extract(epoch FROM stored_at) FROM events ORDER BY event_id DESC LIMIT 20)",
                    ([e["event_id"] for e in tracked],),
                )
                rows = cur.fetchall()
                cur.execute(
                    "SELECT app_id, event_name, extract(epoch FROM hour), sum(events)::bigint"
                    " FROM event_counts_hourly WHERE hour >= now() - interval '24 hours'"
                    " GROUP BY 1, 2, 3 ORDER BY 3"
                )
                rollups = cur.fetchall()
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )
                (connections,) = cur.fetchone()
            conn.rollback()
            return rows, rollups, connections

        rows, rollups, connections = database.run(read)
        self.metrics.add(
            "AWS/RDS", "DatabaseConnections", {"DBInstanceIdentifier": "Database"}, now, connections
        )
        by_id = {e["event_id"]: e for e in tracked}
        for event_id, app_id, name, status, errors, payload, received, stored_at in rows:
            event = by_id.get(event_id)
            if event is None:
                event = by_id[event_id] = {"event_id": event_id, "status": "stored"}
                tracked.append(event)
            event.update(
                app_id=app_id,
                event_name=name,
                validity=status,
                validation_errors=errors,
                # As PostgreSQL prints it: a number's every digit reaches the page, which
                # shows the text (JSON.parse would make each number a double).
                payload=payload,
                received_at=float(received),
                stored_at=float(stored_at),
            )
            if event["status"] == "queued":
                event["status"] = "stored"
        tracked.sort(key=lambda e: e["event_id"], reverse=True)  # UUIDv7: newest first
        return {
            "events": tracked[:20],
            "rollups": [
                {"app_id": a, "event_name": n, "hour": float(h), "events": int(c)}
                for a, n, h, c in rollups
            ],
        }

    def emails(self) -> list[dict[str, Any]]:
        from toolkit.mail import as_text, captured

        return [
            {
                "to": message.get("destinations", {}).get("ToAddresses", []),
                "subject": message.get("subject"),
                "text": as_text(message.get("body", "")),
            }
            for message in reversed(captured(self.runtime.aws_endpoint_url)[-20:])
        ]

    def data(self) -> dict[str, Any]:
        now = time.time()
        queues = self.queues(now)
        stored = self.stored(now)
        return {
            "now": now,
            "window_seconds": WINDOW_SECONDS,
            "bucket_seconds": BUCKET_SECONDS,
            "queues": queues,
            "widgets": self.widgets(now),
            "events": stored["events"],
            "rollups": stored["rollups"],
            "problems": list(self.problems),
            "emails": self.emails(),
        }

    def redrive(self, logical_id: str) -> dict[str, Any]:
        from toolkit.redrive import redrive

        url = self.runtime.queue_urls[logical_id]
        outcome = redrive(self._sqs_client(), url, poll_seconds=0.1)
        return {"moved": outcome.moved, "status": outcome.status, "method": outcome.method}

    # ------------------------------------------------------------ HTTP
    def owns(self, rest: str) -> bool:
        """The console's exact paths: the rest of /_local/console/ is the template's."""
        if rest in ("", "index.html", "data", "redrive"):
            return True
        return any(path.name == rest for path in STATIC.iterdir() if path.suffix in STATIC_TYPES)

    def endpoint(self, request: Request, rest: str) -> Response:
        """`/_local/console/...`: the page, its files, the data and the redrive."""
        if rest == "" and not request.raw_path.endswith("/"):
            # The page's own requests are relative to the folder.
            return Response(308, [("Location", request.raw_path + "/")], b"")
        if rest in ("", "index.html"):
            return self._static("index.html", request.method)
        if rest == "data":
            if request.method != "GET":
                return _json(405, {"message": "GET /_local/console/data"})
            return _json(200, self.data())
        if rest == "redrive":
            return self._redrive_endpoint(request)
        return self._static(rest, request.method)

    def _static(self, name: str, method: str) -> Response:
        if method not in ("GET", "HEAD"):
            return _json(405, {"message": "the console's files are read with GET"})
        files = {path.name: path for path in STATIC.iterdir() if path.suffix in STATIC_TYPES}
        path = files.get(name)  # only the folder's own files, by exact name
        if path is None:
            return _json(404, {"message": "Not Found"})
        headers = [("Content-Type", STATIC_TYPES[path.suffix]), *PAGE_HEADERS]
        return Response(200, headers, path.read_bytes())

    def _redrive_endpoint(self, request: Request) -> Response:
        if request.method != "POST":
            return _json(405, {"message": 'POST /_local/console/redrive {"queue": "<DLQ>"}'})
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            return _json(400, {"message": "the body must be JSON"})
        queue = body.get("queue") if isinstance(body, dict) else None
        topology = self.runtime.topology
        dead_letter_arns = (
            {q.dead_letter_arn for q in topology.queues.values() if q.dead_letter_arn}
            if topology
            else set()
        )
        dead_letter_queues = {
            logical_id
            for logical_id, q in (topology.queues.items() if topology else [])
            if q.arn in dead_letter_arns
        }
        if not isinstance(queue, str) or queue not in dead_letter_queues:
            names = ", ".join(sorted(dead_letter_queues)) or "none"
            return _json(400, {"message": f'"queue" must be a dead-letter queue: {names}'})
        return _json(200, self.redrive(queue))


def _buckets(
    points: list[tuple[float, float]], stat: str, since: float, now: float
) -> list[list[float | None]]:
    """[[bucket start, the stat over its points or None], ...] across the window."""
    first = math.floor(since / BUCKET_SECONDS) * BUCKET_SECONDS
    count = int((now - first) // BUCKET_SECONDS) + 1
    grouped: list[list[float]] = [[] for _ in range(count)]
    for at, value in points:
        index = int((at - first) // BUCKET_SECONDS)
        if 0 <= index < count:
            grouped[index].append(value)
    return [[first + i * BUCKET_SECONDS, statistic(stat, g)] for i, g in enumerate(grouped)]


def _json(status: int, body: Any) -> Response:
    return Response(
        status,
        [("Content-Type", "application/json"), ("Cache-Control", "no-store")],
        json.dumps(body, default=str).encode(),
    )
