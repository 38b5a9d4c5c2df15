"""The whole template on one machine: start everything in order, stop it without losing a message.

Start: the API's port is bound first (so `Local::ApiUrl` and the HTTP APIs'
endpoints are known), then moto's server and the embedded PostgreSQL, the queues
(and the messages saved at the last clean stop), the settings' setup hook
(migrations, a demo app), one warm worker per triggered function, the SQS
pollers, the schedules, and last the API.

Stop: the API stops accepting and answers what it has; schedules stop; pollers
keep invoking until their queue is empty or `drain_seconds` pass; what is still
queued (dead-letter queues included) is saved under the state folder; then every
process the runtime started is stopped.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime import template as sam
from local_runtime.api import ApiServer, Request, Response
from local_runtime.schedules import Scheduler
from local_runtime.services import (
    HelperProcess,
    ensure_database,
    start_local_queue,
    start_moto,
    start_postgres,
)
from local_runtime.sqs import Poller, create_queues, restore_queues, save_queues, sqs_client
from local_runtime.workers import FunctionPool, Outcome

log = logging.getLogger("local_runtime")

SAVED_QUEUES = "queues.json"
QUEUE_DATABASE = "local_queues"


@dataclass
class RuntimeConfig:
    template: Path
    settings: Path | None = None
    state_dir: Path = Path(".local/dev")
    host: str = "127.0.0.1"
    port: int = 3000
    database_url: str | None = None  # an existing server instead of the embedded one
    # Another SQS endpoint (anything speaking SQS's API) instead of moto's: the queues,
    # the pollers and the functions (AWS_ENDPOINT_URL_SQS) all use it.
    sqs_endpoint_url: str | None = None
    # "local": local_queue/, an SQS-compatible queue kept in PostgreSQL (durable, fast);
    # "moto": moto's in-memory queues, saved to a file at a clean stop.
    queue_backend: str = "local"
    drain_seconds: float = 10.0
    max_workers: int = 8  # per function, like a concurrency limit (8: see README, speed)
    # Batches in flight per SQS trigger. Lambda starts at five and scales up to the
    # trigger's ScalingConfig; two let one batch be stored while the next is received
    # on a 2-core laptop. A FIFO queue keeps one, so a message group stays in order.
    batches_per_trigger: int = 2
    region: str = "us-east-1"


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


class Runtime:
    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.template = sam.load(config.template, config.settings)
        self.state_dir = config.state_dir.resolve()
        self.api: ApiServer | None = None
        self.helpers: list[HelperProcess] = []
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[Poller] = []
        self.scheduler: Scheduler | None = None
        self.topology: sam.Topology | None = None
        self.queue_urls: dict[str, str] = {}
        self.aws_endpoint_url = ""
        self.database_url: str | None = None
        self.sqs_endpoint_url = config.sqs_endpoint_url
        # True once local_queue serves the queues: they outlive the runtime, nothing to save.
        self.durable_queues = False
        self.restored = 0
        self.setup_lines: list[str] = []
        self._sqs = None
        self._stopped = threading.Event()

    # ----------------------------------------------------------------- start
    @property
    def sqs_url(self) -> str:
        """Where the queues are: local_queue's endpoint, another one given, or moto's."""
        return self.sqs_endpoint_url or self.aws_endpoint_url

    @property
    def api_url(self) -> str:
        assert self.api is not None
        return self.api.url

    def start(self) -> Runtime:
        started = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.api = ApiServer(
            [],
            self.invoke,
            host=self.config.host,
            port=self.config.port,
            local_endpoints={
                "health": lambda request, rest: _json(200, {"status": "ok"}),
                "schedules": self._fire_endpoint,
                "invoke": self._invoke_endpoint,
            },
        )
        try:
            self._start_services()
            self._start_functions()
        except BaseException:
            # Saves what was re-queued from the last stop, if it got that far.
            self.stop()
            raise
        log.info("ready in %.1f s: %s", time.monotonic() - started, self.api_url)
        return self

    def _start_services(self) -> None:
        postgres = self.template.settings.get("Postgres")
        database_url = self.config.database_url
        with ThreadPoolExecutor(2) as pool:
            moto = pool.submit(start_moto, self.config.host)
            embedded = None
            if postgres is not None and not database_url:
                embedded = pool.submit(start_postgres, self.state_dir / "pgdata")
            helper, self.aws_endpoint_url = moto.result()
            self.helpers.append(helper)
            if embedded is not None:
                helper, server_url = embedded.result()
                self.helpers.append(helper)
                database_url = ensure_database(server_url, postgres.get("Database", "postgres"))
        self.database_url = database_url
        if self.config.queue_backend == "local" and not self.sqs_endpoint_url:
            if database_url:
                # A database of its own, so the app's stays as its migrations make it.
                helper, self.sqs_endpoint_url = start_local_queue(
                    ensure_database(database_url, QUEUE_DATABASE) if embedded else database_url,
                    self.config.host,
                    sam.ACCOUNT_ID,
                )
                self.helpers.append(helper)
                self.durable_queues = True
            else:
                log.warning("no database for durable queues: using moto's in-memory queues")
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
        self._sqs = sqs_client(local.sqs_url, self.config.region)
        self.queue_urls = create_queues(self._sqs, topology.queues)
        self.restored = restore_queues(self._sqs, self.queue_urls, self.state_dir / SAVED_QUEUES)
        if self.restored:
            log.info("re-queued %d messages saved at the last stop", self.restored)
        hook = self.template.settings.get("Setup")
        if hook:
            module, _, name = hook.partition(":")
            setup: Callable[[SetupContext], list[str]] = getattr(
                importlib.import_module(module), name
            )
            self.setup_lines = setup(
                SetupContext(
                    template_dir=self.template.base_dir,
                    state_dir=self.state_dir,
                    api_url=self.api_url,
                    aws_endpoint_url=self.aws_endpoint_url,
                    database_url=database_url,
                    queue_urls=self.queue_urls,
                    topology=topology,
                )
            )

    def _start_functions(self) -> None:
        topology = self.topology
        assert topology is not None and self.api is not None
        runtime_values = {
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
        }
        if self.sqs_endpoint_url:
            runtime_values["AWS_ENDPOINT_URL_SQS"] = self.sqs_endpoint_url
        for logical_id, function in topology.functions.items():
            self.pools[logical_id] = FunctionPool(function, runtime_values, self.config.max_workers)
        triggered = (
            {r.function for r in topology.routes}
            | {t.function for t in topology.triggers if t.enabled}
            | {s.function for s in topology.schedules if s.enabled}
        )
        with ThreadPoolExecutor(max(len(triggered), 1)) as pool:
            list(pool.map(lambda name: self.pools[name].prewarm(), sorted(triggered)))
        for trigger in topology.triggers:
            if not trigger.enabled:
                continue
            queue = topology.queues[trigger.queue]
            fifo = queue.name.endswith(".fifo")
            for _ in range(1 if fifo else max(self.config.batches_per_trigger, 1)):
                poller = Poller(
                    trigger,
                    queue,
                    self.queue_urls[trigger.queue],
                    self._sqs,
                    self.invoke,
                    self.config.region,
                )
                poller.start()
                self.pollers.append(poller)
        self.scheduler = Scheduler(topology.schedules, self.invoke, self.config.region)
        self.scheduler.start()
        self.api.set_routes(topology.routes)
        self.api.start()

    # ----------------------------------------------------------------- invoke
    def invoke(self, function: str, event: Any) -> Outcome:
        outcome = self.pools[function].invoke(event)
        if not outcome.ok:
            log.warning(
                "%s: %s: %s", function, outcome.error["errorType"], outcome.error["errorMessage"]
            )
        return outcome

    def fire(self, function: str, event: str) -> Outcome:
        assert self.scheduler is not None
        schedule = self.scheduler.find(function, event)
        if schedule is None:
            raise KeyError(f"{function} has no schedule event {event}")
        return self.scheduler.fire(schedule)

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
    def stop(self, save: bool = True) -> int:
        """Stops in order; returns how many queued messages were saved for the next start."""
        if self._stopped.is_set():
            return 0
        self._stopped.set()
        if self.api is not None:
            self.api.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
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
        saved = 0
        if self._sqs is not None:
            for poller in self.pollers:
                poller.release_outstanding()
        # Durable queues keep their messages themselves; moto's are saved to a file.
        if save and not self.durable_queues and self._sqs is not None and self.topology is not None:
            saved = save_queues(
                self._sqs, self.topology.queues, self.queue_urls, self.state_dir / SAVED_QUEUES
            )
            if saved:
                log.info("saved %d queued messages; the next start re-queues them", saved)
        for helper in reversed(self.helpers):
            helper.stop()
        return saved

    def __enter__(self) -> Runtime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _json(status: int, body: Any) -> Response:
    return Response(status, [("Content-Type", "application/json")], json.dumps(body).encode())


def _outcome_body(outcome: Outcome) -> dict[str, Any]:
    body: dict[str, Any] = {"requestId": outcome.request_id, "durationMs": outcome.duration_ms}
    if outcome.ok:
        body["result"] = outcome.result
    else:
        body["error"] = outcome.error
    return body
