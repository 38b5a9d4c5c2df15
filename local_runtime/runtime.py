"""The whole template on one machine: start everything in order, stop it without losing a message.

Start: the API's port is bound first (so `Local::ApiUrl` and the HTTP APIs'
endpoints are known), then moto's server and the embedded PostgreSQL, local_queue
(the queues, kept in PostgreSQL) and the template's queues, the settings' setup
hook (migrations, a demo app), one warm worker per triggered function, the SQS
pollers, the schedules, and last the API.

Stop: the API stops accepting and answers what it has; schedules stop; pollers
keep invoking until their queue is empty or `drain_seconds` pass; messages still
in flight are made visible again (what is queued stays in local_queue, dead-letter
queues included, for the next start); then every process the runtime started is
stopped.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from local_runtime import deps
from local_runtime import template as sam
from local_runtime.api import ApiServer, Request, Response
from local_runtime.async_invoke import LAMBDA_RETRY_DELAYS, AsyncInvoker
from local_runtime.console import Console
from local_runtime.integrations import SqsRefused
from local_runtime.reload import CodeWatcher
from local_runtime.schedules import Scheduler
from local_runtime.services import (
    Helper,
    HelperProcess,
    Supervisor,
    answers_sql,
    answers_tcp,
    ensure_database,
    port_of,
    start_local_queue,
    start_moto,
    start_postgres,
)
from local_runtime.sqs import Backlog, Poller, create_queues, sqs_client
from local_runtime.workers import FunctionPool, Outcome

log = logging.getLogger("local_runtime")

STATE_FILE = "runtime.json"  # the running stack's addresses, while it runs
QUEUE_DATABASE = "local_queues"


@dataclass
class RuntimeConfig:
    template: Path
    settings: Path | None = None
    state_dir: Path = Path(".local/dev")
    host: str = "127.0.0.1"
    port: int = 3000
    database_url: str | None = None  # an existing server instead of the embedded one
    # Another SQS endpoint (anything speaking SQS's API) instead of local_queue: the
    # queues, the pollers and the functions (AWS_ENDPOINT_URL_SQS) all use it.
    sqs_endpoint_url: str | None = None
    drain_seconds: float = 10.0
    # Per function, like a concurrency limit. 12: a worker waits on its SQS send's durable
    # commit, and 12 kept two cores busier than 8 (16 no more): docs/performance.md.
    max_workers: int = 12
    # Batches in flight per SQS trigger without a ScalingConfig (batches_in_flight).
    # Lambda starts at five and scales up; two let one batch be stored while the next
    # is received on a 2-core laptop. A FIFO queue gets as many: the queue hands out one
    # batch of a message group at a time, so its groups go side by side, each in order.
    batches_per_trigger: int = 2
    region: str = "us-east-1"
    # Where the functions' requirements are installed (local_runtime/deps.py); by
    # default the state folder's deps/. Kept across starts: a restart installs nothing.
    deps_dir: Path | None = None


@dataclass
class SetupContext:
    """What a settings file's Setup hook is given."""

    template_dir: Path
    state_dir: Path
    api_url: str
    aws_endpoint_url: str
    database_url: str | None
    queue_urls: dict[str, str]
    topology: sam.Topology
    # Variables the operator's tools need to reach this stack (a bucket, a queue's
    # URL), on top of the runtime's own: `python -m local_runtime env` sets them.
    tool_environment: dict[str, str] = field(default_factory=dict)


class Runtime:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.template = sam.load(config.template, config.settings)
        self.state_dir = config.state_dir.resolve()
        self.deps_dir = (config.deps_dir or self.state_dir / "deps").resolve()
        self.watcher: CodeWatcher | None = None
        self.api: ApiServer | None = None
        self.helpers: list[Helper] = []
        self.supervisor: Supervisor | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[Poller] = []
        self.scheduler: Scheduler | None = None
        self.async_invoker: AsyncInvoker | None = None
        self.not_run: list[str] = []  # what the template asks for that runs nowhere here
        self.differs: list[str] = []  # what runs, but not as in AWS
        self.topology: sam.Topology | None = None
        self.queue_urls: dict[str, str] = {}
        self.aws_endpoint_url = ""
        self.database_url: str | None = None
        self.sqs_endpoint_url = config.sqs_endpoint_url
        self.queues_are_local_queue = False  # local_queue started here serves the queues
        self.setup_lines: list[str] = []
        self.tool_environment: dict[str, str] = {}
        self._sqs = None
        self._stopped = threading.Event()
        self.console = Console(self)  # /_local/console/: it reads the log from the start

    # ----------------------------------------------------------------- start
    @property
    def sqs_url(self) -> str:
        """Where the queues are: local_queue's endpoint or another one given."""
        return self.sqs_endpoint_url or self.aws_endpoint_url

    def sqs_client(self):
        """A client of the queues' endpoint, unsigned when it is the local_queue started here."""
        return sqs_client(self.sqs_url, self.config.region, signed=not self.queues_are_local_queue)

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    def start(self, serve: bool = True) -> Runtime:
        """Everything; with serve=False only the services and the functions' pools
        (make invoke, when make dev is not running): no routes, triggers or schedules."""
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.api = ApiServer(
            [],
            self.invoke_async,
            host=self.config.host,
            port=self.config.port,
            local_endpoints={
                "health": self._health_endpoint,
                "schedules": self._fire_endpoint,
                "invoke": self._invoke_endpoint,
                "console": self.console.endpoint,
            },
            owns=self._owns_local_path,
        )
        try:
            self._start_services()
            if not serve:
                return self
            self._start_functions()
            self.supervisor = Supervisor(self.helpers).start()
        except BaseException:
            # Saves what was re-queued from the last stop, if it got that far.
            self.stop()
            raise
        self._write_state()
        log.info("ready in %.1f s: %s", time.monotonic() - started, self.api_url)
        return self

    def _write_state(self) -> None:
        """Where tools that drive the running stack (make invoke, make loadtest, and
        through `python -m local_runtime env` make archive-read, redrive...) find it."""
        state = {
            "pid": os.getpid(),
            "api_url": self.api_url,
            "database_url": self.database_url,
            "aws_endpoint_url": self.aws_endpoint_url,
            "sqs_endpoint_url": self.sqs_url,
            "region": self.config.region,
            "queue_urls": self.queue_urls,
            "deps_dir": str(self.deps_dir),  # make invoke uses the same installed packages
            "environment": self.tool_environment_values(),
        }
        temporary = self.state_dir / (STATE_FILE + ".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self.state_dir / STATE_FILE)

    def _start_services(self) -> None:
        postgres = self.template.settings.get("Postgres")
        database_url = self.config.database_url
        # The queues live in local_queue, in PostgreSQL: a template with queues gets an
        # embedded server even when its settings ask for no database of its own.
        needs_queues = not self.sqs_endpoint_url and any(
            r.get("Type") == sam.QUEUE for r in self.template.resources.values()
        )
        host = self.config.host
        with ThreadPoolExecutor(2) as pool:
            moto = pool.submit(start_moto, host)
            embedded = None
            if not database_url and (postgres is not None or needs_queues):
                embedded = pool.submit(start_postgres, self.state_dir / "pgdata")
            process, self.aws_endpoint_url = moto.result()
            moto_port = port_of(self.aws_endpoint_url)
            self.helpers.append(
                Helper(
                    "moto",
                    self.aws_endpoint_url,
                    process,
                    launch=lambda: start_moto(host, moto_port)[0],
                    probe=answers_tcp(self.aws_endpoint_url),
                    # moto keeps everything in memory: the setup (a bucket, a sender
                    # identity) is made again in the new one.
                    after_restart=self._run_setup,
                )
            )
            server_url = None
            if embedded is not None:
                process, server_url = embedded.result()
                data_dir = self.state_dir / "pgdata"
                # Started again on the same folder, it answers at the same URL.
                self.helpers.append(
                    Helper(
                        "postgres",
                        server_url,
                        process,
                        launch=lambda: start_postgres(data_dir)[0],
                        probe=answers_sql(server_url),
                    )
                )
                if postgres is not None:
                    database_url = ensure_database(server_url, postgres.get("Database", "postgres"))
        self.database_url = database_url
        if needs_queues:
            # On the embedded server, a database of its own, so the app's stays as its
            # migrations make it; on a server given, that database.
            queue_database = ensure_database(server_url, QUEUE_DATABASE) if server_url else None
            queue_url = queue_database or database_url or ""
            process, self.sqs_endpoint_url = start_local_queue(queue_url, host, sam.ACCOUNT_ID)
            queue_port = port_of(self.sqs_endpoint_url)

            def launch_queue() -> HelperProcess:
                return start_local_queue(queue_url, host, sam.ACCOUNT_ID, queue_port)[0]

            # The same port and database: the functions' clients and the messages
            # queued before the crash are where they were.
            self.helpers.append(
                Helper(
                    "local_queue",
                    self.sqs_endpoint_url,
                    process,
                    launch=launch_queue,
                    probe=answers_tcp(self.sqs_endpoint_url),
                )
            )
            self.queues_are_local_queue = True
        local = sam.LocalValues(
            region=self.config.region,
            api_url=self.api_url,
            aws_endpoint_url=self.aws_endpoint_url,
            database_url=database_url,
            state_dir=str(self.state_dir),
            sqs_endpoint_url=self.sqs_endpoint_url,
        )
        self.topology = topology = self.template.topology(local)
        for function, names in topology.unresolved.items():
            log.warning(
                "%s: %s name resources with no local counterpart (set them in the settings file)",
                function,
                ", ".join(names),
            )
        self.not_run = list(topology.not_run)
        local_python = f"python{sys.version_info.major}.{sys.version_info.minor}"
        other_pythons: dict[str, list[str]] = {}
        for logical_id, function in topology.functions.items():
            if function.runtime != local_python:
                other_pythons.setdefault(function.runtime, []).append(logical_id)
        for declared, names in other_pythons.items():
            self.differs.append(
                f"{', '.join(names)}: Runtime {declared}; it runs on this machine's {local_python}"
            )
        for logical_id, function in topology.functions.items():
            config = function.async_config
            for arn in (config.on_failure_arn, config.dead_letter_arn):
                if arn and topology.queue_by_arn(arn) is None:
                    self.not_run.append(
                        f"{logical_id}: failed async events go to {arn} in AWS; locally only"
                        " a queue of the template can receive them (they are logged and dropped)"
                    )
        for line in self.not_run:
            log.warning("not run locally: %s", line)
        for line in self.differs:
            log.warning("differs locally: %s", line)
        self._sqs = self.sqs_client()
        self.queue_urls = create_queues(self._sqs, topology.queues)
        self.setup_lines = self._run_setup()

    def _run_setup(self) -> list[str]:
        """The settings' Setup hook (for Sluice: migrations, the demo app, moto's bucket)."""
        hook = self.template.settings.get("Setup")
        if not hook:
            return []
        assert self.topology is not None
        module, _, name = hook.partition(":")
        setup: Callable[[SetupContext], list[str]] = getattr(importlib.import_module(module), name)
        context = SetupContext(
            template_dir=self.template.base_dir,
            state_dir=self.state_dir,
            api_url=self.api_url,
            aws_endpoint_url=self.aws_endpoint_url,
            database_url=self.database_url,
            queue_urls=self.queue_urls,
            topology=self.topology,
        )
        lines = setup(context)
        self.tool_environment = context.tool_environment
        return lines

    def _start_functions(self) -> None:
        topology = self.topology
        assert topology is not None and self.api is not None
        runtime_values = local_aws_environment(
            self.config.region, self.aws_endpoint_url, self.sqs_endpoint_url
        )
        watched: dict[str, tuple[Path, ...]] = {}
        for logical_id, function in topology.functions.items():
            write_inline_code(function)
            resolution = resolve_dependencies(self.template, function, self.deps_dir)
            self.pools[logical_id] = FunctionPool(
                function, runtime_values, resolution.python_path, self.config.max_workers
            )
            watched[logical_id] = (function.code_dir, *function.layer_dirs, *resolution.watched)
        self.watcher = CodeWatcher(watched, self._reload).start()
        triggered = (
            {r.function for r in topology.routes}
            | {t.function for t in topology.triggers if t.enabled}
            | {s.function for s in topology.schedules if s.enabled and not s.target_missing}
        )
        with ThreadPoolExecutor(max(len(triggered), 1)) as pool:
            list(pool.map(lambda name: self.pools[name].prewarm(), sorted(triggered)))
        for trigger in topology.triggers:
            if not trigger.enabled:
                continue
            queue = topology.queues[trigger.queue]
            backlog = Backlog()
            in_flight = batches_in_flight(
                trigger, self.config.batches_per_trigger, self.config.max_workers
            )
            for scales in pollers_scaling(queue, in_flight, self.config.batches_per_trigger):
                poller = Poller(
                    trigger,
                    queue,
                    self.queue_urls[trigger.queue],
                    self._sqs,
                    self.invoke,
                    self.config.region,
                    backlog,
                    scales,
                )
                poller.start()
                self.pollers.append(poller)
        self.async_invoker = AsyncInvoker(
            topology.functions,
            self.invoke,
            self._send_to_queue,
            self.template.settings.get("AsyncRetryDelaySeconds", LAMBDA_RETRY_DELAYS),
        )
        self.scheduler = Scheduler(
            topology.schedules,
            self.async_invoker,
            self.config.region,
            self.template.settings.get("SchedulerRetryDelaySeconds"),
        )
        self.scheduler.start()
        self.api.set_routes(
            topology.routes, topology.cors, topology.service_routes, self._send_message
        )
        self.api.start()

    def _reload(self, names: list[str], files: list[str]) -> None:
        """The functions' code changed: their next invocations run in fresh workers."""
        assert self.topology is not None
        idle = busy = 0
        for logical_id in names:
            function = self.topology.functions[logical_id]
            try:  # a changed requirements file is installed now
                resolution = deps.resolve(self.template, function, self.deps_dir)
            except deps.DependencyError as exc:
                log.error("not reloading %s: %s", logical_id, exc)
                continue
            if {str(p) for p in resolution.watched} & set(files):
                _log_resolution(function, resolution)
            stopped, running = self.pools[logical_id].reload(resolution.python_path)
            idle, busy = idle + stopped, busy + running
        shown = [_shown(Path(f), self.template.base_dir) for f in files]
        more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
        log.info(
            "reloading %s: %s changed; %d idle worker(s) stopped, %d busy finish first,"
            " the next invocations import the new code",
            ", ".join(names),
            ", ".join(shown[:3]) + more,
            idle,
            busy,
        )

    # ----------------------------------------------------------------- invoke
    def _send_to_queue(self, arn: str, body: str, attributes: dict[str, Any]) -> None:
        assert self.topology is not None and self._sqs is not None
        queue = self.topology.queue_by_arn(arn)
        if queue is None:
            raise LookupError(f"{arn} is not a queue of the template")
        message: dict[str, Any] = {
            "QueueUrl": self.queue_urls[queue.logical_id],
            "MessageBody": body,
        }
        if attributes:
            message["MessageAttributes"] = attributes
        self._sqs.send_message(**message)

    def _send_message(self, queue: str, parameters: dict[str, str]) -> dict[str, Any]:
        """SendMessage for an API's integration straight to a queue of the template."""
        assert self._sqs is not None
        if "MessageBody" not in parameters:
            raise SqsRefused("MissingParameter", "The request must contain MessageBody.")
        message: dict[str, Any] = {"QueueUrl": self.queue_urls[queue], **parameters}
        try:
            if "DelaySeconds" in message:
                message["DelaySeconds"] = int(message["DelaySeconds"])
            result: dict[str, Any] = self._sqs.send_message(**message)
        except ValueError:
            raise SqsRefused("InvalidParameterValue", "DelaySeconds must be a number.") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
            raise SqsRefused(error.get("Code", "Error"), error.get("Message", ""), status) from None
        return result

    def invoke(self, function: str, event: Any) -> Outcome:
        """From any thread but the event loop's (pollers, schedules, local endpoints)."""
        return _logged(function, self.pools[function].invoke(event))

    async def invoke_async(self, function: str, event: Any) -> Outcome:
        """On the event loop (the API's requests)."""
        return _logged(function, await self.pools[function].invoke_async(event))

    def fire(self, function: str, event: str) -> Outcome:
        assert self.scheduler is not None
        schedule = self.scheduler.find(function, event)
        if schedule is None:
            raise KeyError(f"{function} has no schedule event {event}")
        return self.scheduler.fire(schedule)

    def _owns_local_path(self, name: str, rest: str) -> bool:
        """Only the exact paths the runtime serves; the rest of /_local/ is the template's."""
        if name == "health":
            return rest == ""
        if name == "invoke":
            return rest in self.pools
        if name == "schedules":
            function, _, event = rest.partition("/")
            return self.scheduler is not None and self.scheduler.find(function, event) is not None
        if name == "console":
            return self.console.owns(rest)
        return name in self.api.local_endpoints if self.api else False

    def tool_environment_values(self) -> dict[str, str]:
        """What a command-line tool needs to reach this stack as the functions do."""
        values = local_aws_environment(
            self.config.region, self.aws_endpoint_url, self.sqs_endpoint_url
        )
        if self.database_url:
            values["DATABASE_URL"] = self.database_url
        return values | self.tool_environment

    def _health_endpoint(self, request: Request, rest: str) -> Response:
        """Each helper probed now: 200 when all answer, 503 while one does not."""
        helpers = (
            self.supervisor.health()
            if self.supervisor
            else {helper.name: helper.state() for helper in self.helpers}
        )
        healthy = all(state == "ok" for state in helpers.values())
        body = {"status": "ok" if healthy else "degraded", "helpers": helpers}
        return _json(200 if healthy else 503, body)

    def _fire_endpoint(self, request: Request, rest: str) -> Response:
        function, _, event = rest.partition("/")
        if request.method != "POST":
            return _json(405, {"message": "POST /_local/schedules/{Function}/{Event}"})
        try:
            outcome = self.fire(function, event)
        except KeyError as exc:
            return _json(404, {"message": str(exc.args[0])})
        return _json(200, _outcome_body(outcome))

    def _invoke_endpoint(self, request: Request, rest: str) -> Response:
        if request.method != "POST" or rest not in self.pools:
            return _json(404, {"message": "POST /_local/invoke/{Function} with the event"})
        try:
            event = json.loads(request.body or b"{}")
        except ValueError:
            return _json(400, {"message": "the body must be the event, as JSON"})
        return _json(200, _outcome_body(self.invoke(rest, event)))

    # ----------------------------------------------------------------- stop
    def stop(self) -> None:
        """Stops in order; what is still queued stays in local_queue for the next start."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self.api is not None:
            self.api.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.async_invoker is not None:
            self.async_invoker.stop()
        deadline = time.monotonic() + self.config.drain_seconds
        for poller in self.pollers:
            poller.drain(deadline)
        for poller in self.pollers:
            poller.join(max(deadline - time.monotonic(), 0))
        for poller in self.pollers:
            poller.stop()
        for pool in self.pools.values():
            pool.close()  # ends invocations still running past the drain deadline
        for poller in self.pollers:
            poller.join(30)
        if self._sqs is not None:
            # In flight when the drain ended: visible again at once for the next start,
            # instead of after their visibility timeout.
            for poller in self.pollers:
                poller.release_outstanding()
        (self.state_dir / STATE_FILE).unlink(missing_ok=True)
        if self.supervisor is not None:
            self.supervisor.stop()  # none is started again while they stop
        for helper in reversed(self.helpers):
            helper.process.stop()
        self.console.close()

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def batches_in_flight(trigger: sam.QueueTrigger, default: int, max_workers: int) -> int:
    """Pollers for one SQS trigger: Lambda runs up to ScalingConfig's MaximumConcurrency
    batches at once (no more than the function has workers here), `default` without it."""
    if trigger.max_concurrency:
        return max(1, min(trigger.max_concurrency, max_workers))
    return max(default, 1)


def pollers_scaling(queue: sam.Queue, in_flight: int, standing: int) -> list[bool]:
    """For each of a trigger's pollers, whether it waits for a backlog (sqs.Backlog):
    those past the standing ones, on a standard queue. A FIFO queue's pollers all poll:
    each works on message groups of its own, which need not fill a batch to wait."""
    return [not queue.fifo and number >= standing for number in range(in_flight)]


def running_stack(state_dir: Path) -> dict[str, Any] | None:
    """The state of a `make dev` running from this state folder, if one is."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none, or left by a runtime that was killed
    return state


def local_aws_environment(
    region: str, aws_endpoint_url: str, sqs_endpoint_url: str | None
) -> dict[str, str]:
    """What every function is given to reach the local stand-ins instead of AWS."""
    values = {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL": aws_endpoint_url,
    }
    if sqs_endpoint_url and sqs_endpoint_url != aws_endpoint_url:
        values["AWS_ENDPOINT_URL_SQS"] = sqs_endpoint_url
    return values


def resolve_dependencies(
    template: sam.Template, function: sam.Function, deps_dir: Path
) -> deps.Resolution:
    """The function's path (local_runtime/deps.py), with its start line and any warning."""
    resolution = deps.resolve(template, function, deps_dir)
    _log_resolution(function, resolution)
    return resolution


def _log_resolution(function: sam.Function, resolution: deps.Resolution) -> None:
    log.info("deps  %s: %s", function.logical_id, resolution.summary)
    if resolution.warning:
        log.warning("%s", resolution.warning)


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def write_inline_code(function: sam.Function) -> None:
    """InlineCode becomes index.py in the function's folder, as CloudFormation packs it."""
    if function.inline_code is not None:
        function.code_dir.mkdir(parents=True, exist_ok=True)
        (function.code_dir / "index.py").write_text(function.inline_code)


def _logged(function: str, outcome: Outcome) -> Outcome:
    if not outcome.ok:
        log.warning(
            "%s: %s: %s", function, outcome.error["errorType"], outcome.error["errorMessage"]
        )
    return outcome


def _json(status: int, body: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(body).encode())


def _outcome_body(outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {"requestId": outcome.request_id, "durationMs": outcome.duration_ms}
    if outcome.ok:
        body["result"] = outcome.result
    else:
        body["error"] = outcome.error
    return body
