"""A SAM template, read with aws-sam-translator's loader, as what the local runtime runs.

`load()` reads the template and the local settings file; `Template.topology(local)`
resolves every intrinsic against the local stand-ins (queue URLs on moto, the API
on loopback, the embedded database) and returns functions, routes, queue triggers,
schedules and queues. References to resources with no local counterpart (an RDS
proxy, a secret) resolve to a visible placeholder; the settings file can replace
or remove the variables that hold them.

Libraries: aws-sam-translator reads the YAML (its loader keeps `!Ref` and friends)
and merges Globals. Two more of its parts were tried and do not fit:
- its IntrinsicsResolver (samtranslator.intrinsics) substitutes only Ref, Fn::Sub,
  Fn::GetAtt and Fn::FindInMap, and only with values known up front; it has no
  Fn::If, Fn::Join, Fn::Select, Fn::Split, Fn::Equals or Conditions (Sluice's own
  template needs Fn::If and Conditions), and leaves what it cannot resolve in place,
  where the runtime needs a local value or a visible placeholder for each;
- its translated output (CloudFormation) needs s3:// CodeUris and a policy loader,
  so local code folders would have to be mapped back from generated resources, and
  the SAM-only settings the runtime reads (event names for /_local/schedules, Globals
  per function) are gone from it. Raw resources that SAM would generate
  (EventSourceMapping, Scheduler::Schedule) are read here directly instead.
cfn-lint resolves intrinsics only inside its validators (not a public API).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from samtranslator.plugins.globals.globals import Globals
from samtranslator.yaml_helper import yaml_parse

from local_runtime import integrations
from local_runtime.properties import HONOURED, QUEUE_ATTRIBUTES, not_run_lines

ACCOUNT_ID = "123456789012"  # moto's default account
UNRESOLVED = "local-unresolved:"

FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
QUEUE = "AWS::SQS::Queue"
HTTP_API = "AWS::Serverless::HttpApi"
REST_API = "AWS::Serverless::Api"
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
SCHEDULER_SCHEDULE = "AWS::Scheduler::Schedule"
EVENT_INVOKE_CONFIG = "AWS::Lambda::EventInvokeConfig"
SQS_DEFAULT_VISIBILITY_SECONDS = 30
# Resources that name a function without invoking it: nothing to report when they do.
_NAMES_FUNCTIONS_HARMLESSLY = (
    FUNCTION,
    EVENT_SOURCE_MAPPING,
    SCHEDULER_SCHEDULE,
    EVENT_INVOKE_CONFIG,
    HTTP_API,
    REST_API,
    "AWS::Lambda::Permission",
    "AWS::Lambda::Version",
    "AWS::Lambda::Alias",
    "AWS::Logs::LogGroup",
    "AWS::Logs::SubscriptionFilter",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::CompositeAlarm",
    "AWS::CloudWatch::Dashboard",  # draws a function's metrics; it never calls one
    "AWS::Logs::MetricFilter",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
)


class TemplateError(Exception):
    """The template (or the local settings) asks for something this runtime cannot do."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class AsyncConfig:
    """What Lambda does with an asynchronous invocation (a schedule's) that fails."""

    max_retries: int = 2  # Lambda's default: two retries after the first attempt
    max_event_age_seconds: float = 6 * 3600
    on_failure_arn: str | None = None  # EventInvokeConfig's OnFailure destination
    dead_letter_arn: str | None = None  # the function's DeadLetterQueue


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: float
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    arn: str
    inline_code: str | None = None  # InlineCode: written to code_dir/index.py at start
    async_config: AsyncConfig = AsyncConfig()
    log_format: str = "Text"  # LoggingConfig.LogFormat
    log_level: str | None = None  # LoggingConfig.ApplicationLogLevel (JSON only)
    # ReservedConcurrentExecutions: the most invocations at once; one more is throttled.
    reserved_concurrency: int | None = None


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # as in the template ("{param}", "{proxy+}"); "$default" for the catch-all
    function: str
    payload_version: str  # "2.0" (HTTP API) or "1.0" (REST API, or an HTTP API that asks for it)
    api: str  # the API's logical id
    kind: str  # HttpApi or Api

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ServiceRoute:
    """A route an API integrates straight with SQS SendMessage (local_runtime.integrations)."""

    method: str
    path: str
    api: str
    kind: str  # HttpApi or Api
    queue: str  # the queue's logical id
    parameters: tuple[tuple[str, str], ...] = ()  # HttpApi: SQS-SendMessage's parameters
    templates: tuple[tuple[str, str], ...] = ()  # Api: content type -> mapping template
    passthrough: str = "WHEN_NO_MATCH"  # Api: passthroughBehavior
    responses: tuple[tuple[str, int], ...] = ()  # Api: selection pattern -> status

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def function(self) -> str:  # what the route goes to, for the banner and the log
        return f"SQS SendMessage {self.queue}"


@dataclass(frozen=True)
class Cors:
    """An HTTP API's CorsConfiguration: API Gateway answers preflights and adds the headers."""

    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    max_age: int | None = None


@dataclass(frozen=True)
class QueueTrigger:
    function: str
    event: str
    queue: str  # the queue's logical id
    batch_size: int
    window_seconds: float
    report_item_failures: bool
    enabled: bool
    # ScalingConfig's MaximumConcurrency: the most batches Lambda runs at once.
    max_concurrency: int | None = None


@dataclass(frozen=True)
class SchedulerDelivery:
    """EventBridge Scheduler's hand-off to its target: RetryPolicy and DeadLetterConfig.

    They apply when Scheduler cannot hand the event to Lambda (no such function, no
    permission, throttled), not when the function fails: Scheduler invokes Lambda
    asynchronously, so a function error is Lambda's to retry (AsyncConfig)."""

    target_arn: str
    max_retries: int = 185  # Scheduler's defaults: 185 retries over up to 24 hours
    max_event_age_seconds: float = 86400
    dead_letter_arn: str | None = None


@dataclass(frozen=True)
class Schedule:
    function: str
    event: str
    expression: str
    input: str | None
    enabled: bool
    rule_arn: str
    delivery: SchedulerDelivery | None = None  # Scheduler's; None for an EventBridge rule
    target_missing: bool = False  # its target names a function the template lacks


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    arn: str
    attributes: dict[str, str]  # for CreateQueue, RedrivePolicy as JSON
    dead_letter_arn: str | None
    max_receive_count: int | None

    @property
    def fifo(self) -> bool:
        return self.name.endswith(".fifo")  # SQS's rule: only FIFO queues' names do


@dataclass
class Topology:
    functions: dict[str, Function]
    routes: list[Route]
    triggers: list[QueueTrigger]
    schedules: list[Schedule]
    queues: dict[str, Queue]  # in creation order: dead-letter targets first
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # function -> variables
    # What the template asks for that runs nowhere locally, one sentence each.
    not_run: list[str] = field(default_factory=list)
    cors: dict[str, Cors] = field(default_factory=dict)  # HTTP API's logical id -> its CORS
    service_routes: list[ServiceRoute] = field(default_factory=list)

    def queue_by_arn(self, arn: str) -> Queue | None:
        return next((q for q in self.queues.values() if q.arn == arn), None)


@dataclass(frozen=True)
class LocalValues:
    """What the local stand-ins are reachable at, known once they have started."""

    region: str
    api_url: str
    aws_endpoint_url: str
    database_url: str | None = None
    state_dir: str = ""
    sqs_endpoint_url: str | None = None  # when SQS is served apart from the other APIs

    @property
    def sqs_url(self) -> str:
        return self.sqs_endpoint_url or self.aws_endpoint_url


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _deep_merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


class Template:
    def __init__(self, path: Path, document: dict[str, Any], settings: dict[str, Any]) -> None:
        self.path = path
        self.base_dir = path.parent
        self.settings = settings
        self.stack_name = settings.get("StackName", "local")
        self.document = document
        if "Resources" not in document:
            raise TemplateError(f"{path}: no Resources")
        resources = copy.deepcopy(document["Resources"])
        for logical_id, override in settings.get("Resources", {}).items():
            if logical_id not in resources:
                raise TemplateError(f"settings override {logical_id}, which the template lacks")
            properties = resources[logical_id].setdefault("Properties", {})
            resources[logical_id]["Properties"] = _deep_merge(properties, override)
        self.resources: dict[str, dict[str, Any]] = resources
        self.parameters = self._parameters(settings.get("Parameters", {}))
        self._check()

    def _check(self) -> None:
        """What AWS would refuse at deploy, refused before anything starts: one sentence each."""
        for logical_id, resource in self.resources.items():
            if not isinstance(resource, dict):
                raise TemplateError(f"{logical_id}: not a resource (no Type and Properties)")
        names = set(self.resources) | set(self.parameters)
        # Resources SAM generates are named after theirs: MyFunctionRole, MyApiProdStage,
        # MyFunctionAliaslive, and the implicit APIs' ServerlessRestApi...
        prefixes = (
            *(
                i
                for i, r in self.resources.items()
                if str(r.get("Type")).startswith("AWS::Serverless::")
            ),
            "ServerlessRestApi",
            "ServerlessHttpApi",
        )
        for logical_id, resource in self.resources.items():
            problems = _reference_problems(resource.get("Properties", {}), names, prefixes)
            for path, problem in problems:
                raise TemplateError(f"{logical_id}: Properties.{path} {problem}")
        resolver = _Resolver(self, LocalValues(region="us-east-1", api_url="", aws_endpoint_url=""))
        function_globals = (self.document.get("Globals") or {}).get("Function") or {}
        _check_numbers("Globals.Function", FUNCTION, function_globals)
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type")
            props = resource.get("Properties") or {}
            _check_numbers(logical_id, kind, props)
            if kind == QUEUE:
                _check_queue_name(logical_id, props, resolver)
            events = props.get("Events") if kind == FUNCTION else None
            for name, event in (events if isinstance(events, dict) else {}).items():
                if isinstance(event, dict) and event.get("Type") == "SQS":
                    _check_numbers(f"{logical_id}.{name}", "SQS", event.get("Properties") or {})

    def _parameters(self, overrides: dict[str, Any]) -> dict[str, Any]:
        declared = self.document.get("Parameters", {})
        unknown = set(overrides) - set(declared)
        if unknown:
            raise TemplateError(f"settings set parameters the template lacks: {sorted(unknown)}")
        values = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: set it in the settings file")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = value.split(",")
            values[name] = value if isinstance(value, list) else str(value)
        return values

    def function_ids(self) -> list[str]:
        return [name for name, r in self.resources.items() if r.get("Type") == FUNCTION]

    # ------------------------------------------------------------------ topology
    def topology(self, local: LocalValues) -> Topology:
        resolver = _Resolver(self, local)
        queues = self._queues(resolver, local)
        resolver.queues = queues
        globals_ = Globals(self.document)
        functions: dict[str, Function] = {}
        routes: list[Route] = []
        triggers: list[QueueTrigger] = []
        schedules: list[Schedule] = []
        unresolved: dict[str, list[str]] = {}
        not_run: list[str] = []
        invoke_configs = self._event_invoke_configs(resolver)
        properties_set: dict[str, dict[str, Any]] = {}  # as set, for not_run_lines
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != FUNCTION or not resolver.included(resource):
                continue
            properties = globals_.merge(
                FUNCTION,
                copy.deepcopy(resource.get("Properties", {})),
                logical_id,
                resource.get("IgnoreGlobals"),
            )
            properties_set[logical_id] = resolver.present(properties)
            if logical_id in invoke_configs:
                properties["EventInvokeConfig"] = invoke_configs[logical_id]
            function, holes = self._function(logical_id, properties, resolver, local)
            functions[logical_id] = function
            if holes:
                unresolved[logical_id] = holes
            for event_name, event in (properties.get("Events") or {}).items():
                kind = event.get("Type")
                props = resolver.resolve(event.get("Properties", {}))
                if kind in ("HttpApi", "Api"):
                    routes.append(self._route(logical_id, kind, props, resource, resolver))
                elif kind == "SQS":
                    triggers.append(self._trigger(logical_id, event_name, props, queues))
                elif kind in ("Schedule", "ScheduleV2"):
                    schedules.append(
                        self._schedule(logical_id, event_name, kind, props, local, function.arn)
                    )
                else:
                    not_run.append(f"{logical_id}.{event_name}: {kind} events are not run locally")
        by_name = {f.name: f.logical_id for f in functions.values()}
        by_name.update({f.arn: f.logical_id for f in functions.values()})
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type")
            if not resolver.included(resource):
                continue
            if kind == EVENT_SOURCE_MAPPING:
                trigger = self._mapping(logical_id, resource, resolver, queues, by_name, not_run)
                if trigger is not None:
                    triggers.append(trigger)
            elif kind == SCHEDULER_SCHEDULE:
                schedule = self._scheduler(logical_id, resource, resolver, local, by_name)
                if schedule is not None and schedule.target_missing:
                    dlq = schedule.delivery.dead_letter_arn if schedule.delivery else None
                    not_run.append(
                        f"{logical_id} ({kind}): its target {schedule.function} is not a function"
                        " of the template; as in an account without it, each firing fails"
                        " (ResourceNotFoundException) and "
                        + ("goes to its DeadLetterConfig" if dlq else "is dropped")
                    )
                if schedule is not None:
                    schedules.append(schedule)
                else:
                    not_run.append(f"{logical_id} ({kind}): its target is not a function here")
        for schedule in schedules:
            dead_letter = schedule.delivery.dead_letter_arn if schedule.delivery else None
            if dead_letter and not any(q.arn == dead_letter for q in queues.values()):
                raw = schedule.event in self.resources  # else a function's ScheduleV2 event
                name = schedule.event if raw else f"{schedule.function}.{schedule.event}"
                not_run.append(
                    f"{name}: its DeadLetterConfig {dead_letter} is not a queue of the"
                    " template; locally a failed hand-off is logged and dropped"
                )
        service_routes = self._service_routes(resolver, queues, not_run)
        for logical_id, resource in self.resources.items():
            if logical_id not in properties_set and resource.get("Type") in HONOURED:
                properties_set[logical_id] = resolver.present(resource.get("Properties") or {})
        not_run += not_run_lines(self.resources, properties_set, resolver.included)
        not_run += self._unrunnable(functions)
        self._check_routes([*routes, *service_routes])
        self._check_visibility(triggers, functions, queues)
        cors = self._cors(resolver)
        return Topology(
            functions,
            routes,
            triggers,
            schedules,
            queues,
            unresolved,
            not_run,
            cors,
            service_routes,
        )

    def _service_routes(
        self, resolver: _Resolver, queues: dict[str, Queue], not_run: list[str]
    ) -> list[ServiceRoute]:
        """Integrations straight to SQS SendMessage in an API's DefinitionBody; any other
        integration to a service, or one that cannot be run exactly, is named as not run."""
        found = []
        by_arn = {q.arn: q.logical_id for q in queues.values()}
        by_url = {resolver.ref(q.logical_id): q.logical_id for q in queues.values()}
        for logical_id, resource in self.resources.items():
            kind = resource.get("Type")
            if kind not in (HTTP_API, REST_API) or not resolver.included(resource):
                continue
            body = (resource.get("Properties") or {}).get("DefinitionBody")
            if isinstance(body, dict) and "Fn::Transform" in body:
                not_run.append(
                    f"{logical_id} ({kind}): its DefinitionBody is an Fn::Transform"
                    " (AWS::Include), not read locally: only its functions' Events are routed"
                )
                continue
            paths = body.get("paths") if isinstance(body, dict) else None
            for path, methods in (paths or {}).items():
                for method, operation in (methods or {}).items():
                    raw = (operation or {}).get("x-amazon-apigateway-integration")
                    integration = resolver.resolve(raw) if isinstance(raw, dict) else None
                    if not integration or not _service_integrations(integration):
                        continue  # a function's (its route comes from its Events)
                    method = "ANY" if method == "x-amazon-apigateway-any-method" else method
                    route = f"{method.upper()} {path}"
                    made = _sqs_route(
                        logical_id, str(kind), method.upper(), path, integration, by_arn, by_url
                    )
                    if isinstance(made, ServiceRoute):
                        found.append(made)
                    else:
                        not_run.append(f"{logical_id} ({kind}) {route}: {made} (it answers 404)")
        return found

    def _cors(self, resolver: _Resolver) -> dict[str, Cors]:
        found = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != HTTP_API or not resolver.included(resource):
                continue
            config = resolver.resolve(resource.get("Properties", {}).get("CorsConfiguration"))
            if not isinstance(config, dict):
                continue  # none (or `true`, which SAM reads as any origin: not used here)
            found[logical_id] = Cors(
                allow_origins=tuple(str(o) for o in config.get("AllowOrigins", [])),
                allow_methods=tuple(str(m).upper() for m in config.get("AllowMethods", [])),
                allow_headers=tuple(str(h).lower() for h in config.get("AllowHeaders", [])),
                max_age=int(config["MaxAge"]) if "MaxAge" in config else None,
            )
        return found

    def _event_invoke_configs(self, resolver: _Resolver) -> dict[str, dict[str, Any]]:
        """AWS::Lambda::EventInvokeConfig resources, as the function's EventInvokeConfig."""
        configs = {}
        for resource in self.resources.values():
            if resource.get("Type") != EVENT_INVOKE_CONFIG or not resolver.included(resource):
                continue
            props = resource.get("Properties", {})
            target = _logical_id_of(props.get("FunctionName"), self.resources)
            if target is not None:
                configs[target] = props
        return configs

    def _mapping(
        self,
        logical_id: str,
        resource: dict[str, Any],
        resolver: _Resolver,
        queues: dict[str, Queue],
        functions: dict[str, str],
        not_run: list[str],
    ) -> QueueTrigger | None:
        """A raw AWS::Lambda::EventSourceMapping: an SQS one is a queue trigger like SAM's."""
        raw = resource.get("Properties", {})
        target = _logical_id_of(raw.get("FunctionName"), self.resources)
        props = resolver.resolve(raw)
        target = target or functions.get(str(props.get("FunctionName")))
        source = str(props.get("EventSourceArn", ""))
        queue = next((q for q in queues.values() if q.arn == source), None)
        if target is None or queue is None:
            not_run.append(
                f"{logical_id} ({EVENT_SOURCE_MAPPING}): source {source or '?'} is not a queue"
                " of this template, or its function is not here"
            )
            return None
        return _queue_trigger(target, logical_id, queue, props)

    def _scheduler(
        self,
        logical_id: str,
        resource: dict[str, Any],
        resolver: _Resolver,
        local: LocalValues,
        functions: dict[str, str],
    ) -> Schedule | None:
        """A raw AWS::Scheduler::Schedule whose target is a function of this template."""
        raw = resource.get("Properties", {})
        target = _logical_id_of((raw.get("Target") or {}).get("Arn"), self.resources)
        props = resolver.resolve(raw)
        target_arn = str((props.get("Target") or {}).get("Arn"))
        target = target or functions.get(target_arn)
        lambda_arn = re.fullmatch(r"arn:aws:lambda:[^:]*:\d+:function:([\w-]+)", target_arn)
        missing = target is None and lambda_arn is not None
        if missing and lambda_arn is not None:
            # A function this template lacks: in the local account there is no such
            # function, so Scheduler's hand-off fails (see Scheduler.fire).
            target = lambda_arn.group(1)
        elif target is None or self.resources.get(target, {}).get("Type") != FUNCTION:
            return None
        expression = props.get("ScheduleExpression")
        if not isinstance(expression, str):
            raise TemplateError(f"{logical_id}: no ScheduleExpression")
        input_ = (props.get("Target") or {}).get("Input")
        if input_ is not None and not isinstance(input_, str):
            input_ = json.dumps(input_)
        name = props.get("Name") or logical_id
        group = props.get("GroupName") or "default"
        rule = f"arn:aws:scheduler:{local.region}:{ACCOUNT_ID}:schedule/{group}/{name}"
        enabled = props.get("State", "ENABLED") != "DISABLED"
        delivery = _scheduler_delivery(target_arn, props.get("Target") or {})
        return Schedule(target, logical_id, expression, input_, enabled, rule, delivery, missing)

    def _unrunnable(self, functions: dict[str, Function]) -> list[str]:
        """Resources that would invoke a function (or stand in for one) in AWS but not here."""
        lines = []
        for logical_id, resource in self.resources.items():
            kind = str(resource.get("Type"))
            props = resource.get("Properties", {})
            if kind in (HTTP_API, REST_API):
                continue  # their DefinitionBody's integrations: _service_routes
            if kind in ("AWS::ApiGatewayV2::Integration", "AWS::ApiGateway::Method"):
                for service in sorted(_service_integrations(props)):
                    lines.append(
                        f"{logical_id} ({kind}): an integration straight to {service}"
                        " is not served locally (its routes answer 404)"
                    )
                continue
            if kind in _NAMES_FUNCTIONS_HARMLESSLY or kind == QUEUE:
                continue
            named = sorted(_mentions(props) & set(functions))
            if named and (kind.startswith("Custom::") or kind.endswith("::CustomResource")):
                lines.append(
                    f"{logical_id} ({kind}): a custom resource; {', '.join(named)} is not run"
                    " for it locally (a settings file's Setup hook can do its work)"
                )
            elif named:
                lines.append(
                    f"{logical_id} ({kind}) invokes {', '.join(named)} in AWS;"
                    " nothing invokes it locally"
                )
        return lines

    @staticmethod
    def _check_visibility(
        triggers: list[QueueTrigger], functions: dict[str, Function], queues: dict[str, Queue]
    ) -> None:
        """AWS refuses an SQS trigger whose queue hides a message for less than the timeout."""
        for trigger in triggers:
            queue = queues[trigger.queue]
            visibility = float(
                queue.attributes.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_SECONDS)
            )
            timeout = functions[trigger.function].timeout
            if visibility < timeout:
                raise TemplateError(
                    f"{trigger.function}.{trigger.event}: queue {queue.logical_id}'s visibility"
                    f" timeout ({visibility:g} s) is less than the function's timeout"
                    f" ({timeout:g} s); AWS refuses to create this trigger"
                )

    def _function(
        self, logical_id: str, props: dict[str, Any], resolver: _Resolver, local: LocalValues
    ) -> tuple[Function, list[str]]:
        code_uri = props.get("CodeUri")
        inline_code = resolver.resolve(props.get("InlineCode"))
        if isinstance(inline_code, str):
            # CloudFormation writes InlineCode to index.py, so Handler is index.<name>.
            code_dir = Path(local.state_dir or ".").resolve() / "inline" / logical_id
        elif isinstance(code_uri, dict) or not code_uri:
            raise TemplateError(f"{logical_id}: CodeUri must be a local folder, or InlineCode")
        else:
            inline_code = None
            code_dir = (self.base_dir / code_uri).resolve()
            if not code_dir.is_dir():
                raise TemplateError(f"{logical_id}: CodeUri {code_uri} is not a folder")
        handler = resolver.resolve(props.get("Handler"))
        if not isinstance(handler, str) or "." not in handler:
            raise TemplateError(f"{logical_id}: Handler must look like module.function")
        name = resolver.resolve(props.get("FunctionName")) or f"{self.stack_name}-{logical_id}"
        environment: dict[str, str] = {}
        for key, value in (
            resolver.resolve((props.get("Environment") or {}).get("Variables") or {})
        ).items():
            environment[key] = _text(value)
        env_settings = self.settings.get("Environment", {})
        for scope in ("Parameters", logical_id):
            for key, value in (env_settings.get(scope) or {}).items():
                value = resolver.resolve(value)
                if value is None or value is NO_VALUE:
                    environment.pop(key, None)
                else:
                    environment[key] = _text(value)
        holes = sorted(k for k, v in environment.items() if UNRESOLVED in v)
        logging = resolver.resolve(props.get("LoggingConfig")) or {}
        function = Function(
            logical_id=logical_id,
            name=name,
            code_dir=code_dir,
            handler=handler,
            runtime=str(resolver.resolve(props.get("Runtime")) or "python3"),
            timeout=float(resolver.resolve(props.get("Timeout", 3))),
            memory_mb=int(resolver.resolve(props.get("MemorySize", 128))),
            environment=environment,
            layer_dirs=tuple(self._layers(logical_id, props.get("Layers") or [], resolver)),
            arn=f"arn:aws:lambda:{local.region}:{ACCOUNT_ID}:function:{name}",
            inline_code=inline_code,
            async_config=_async_config(resolver.resolve(props)),
            log_format=str(logging.get("LogFormat", "Text")),
            log_level=logging.get("ApplicationLogLevel"),
            reserved_concurrency=_optional_int(
                resolver.resolve(props.get("ReservedConcurrentExecutions"))
            ),
        )
        return function, holes

    def _layers(self, logical_id: str, layers: list[Any], resolver: _Resolver) -> list[Path]:
        """A layer of this template is its ContentUri on the path (Lambda mounts it at /opt)."""
        dirs = []
        for layer in layers:
            target = layer.get("Ref") if isinstance(layer, dict) else None
            resource = self.resources.get(target) if target else None
            if not resource or resource.get("Type") != LAYER:
                raise TemplateError(
                    f"{logical_id}: layer {layer!r} is not a LayerVersion in this template"
                )
            content = resolver.resolve(resource.get("Properties", {}).get("ContentUri"))
            if not isinstance(content, str):
                raise TemplateError(f"{target}: ContentUri must be a local folder")
            root = (self.base_dir / content).resolve()
            # A built layer keeps Python code under python/; a source layer (built by a
            # makefile, as Sluice's is) is the package folder itself.
            dirs.append(root / "python" if (root / "python").is_dir() else root)
        return dirs

    def _route(
        self,
        logical_id: str,
        kind: str,
        props: dict[str, Any],
        resource: dict[str, Any],
        resolver: _Resolver,
    ) -> Route:
        api_ref = props.get("ApiId" if kind == "HttpApi" else "RestApiId")
        api = resolver.api_of.get(api_ref, api_ref) if isinstance(api_ref, str) else None
        api = api or ("ServerlessHttpApi" if kind == "HttpApi" else "ServerlessRestApi")
        default_version = "2.0" if kind == "HttpApi" else "1.0"
        path = props.get("Path")
        method = str(props.get("Method", "ANY")).upper()
        if kind == "HttpApi" and not path:
            path, method = "$default", "ANY"
        if not path:
            raise TemplateError(f"{logical_id}: an Api event needs a Path")
        return Route(
            method=method,
            path=path,
            function=logical_id,
            payload_version=str(props.get("PayloadFormatVersion", default_version)),
            api=api,
            kind=kind,
        )

    @staticmethod
    def _check_routes(routes: Sequence[Route | ServiceRoute]) -> None:
        seen: dict[tuple[str, str], str] = {}
        for route in routes:
            key = (route.method, route.path)
            if key in seen:
                raise TemplateError(
                    f"{route.route_key} is routed to both {seen[key]} and {route.function}"
                    " (several APIs share one local port)"
                )
            seen[key] = route.function

    def _trigger(
        self, logical_id: str, event: str, props: dict[str, Any], queues: dict[str, Queue]
    ) -> QueueTrigger:
        arn = props.get("Queue")
        queue = next((q for q in queues.values() if q.arn == arn), None)
        if queue is None:
            raise TemplateError(f"{logical_id}.{event}: queue {arn!r} is not in this template")
        return _queue_trigger(logical_id, event, queue, props)

    def _schedule(
        self,
        logical_id: str,
        event: str,
        kind: str,
        props: dict[str, Any],
        local: LocalValues,
        function_arn: str,
    ) -> Schedule:
        if kind == "Schedule":
            expression = props.get("Schedule")
            enabled = _true(props.get("Enabled", True)) and props.get("State", "ENABLED") != (
                "DISABLED"
            )
            rule = f"arn:aws:events:{local.region}:{ACCOUNT_ID}:rule/{logical_id}{event}"
        else:
            expression = props.get("ScheduleExpression")
            enabled = props.get("State", "ENABLED") != "DISABLED"
            rule = (
                f"arn:aws:scheduler:{local.region}:{ACCOUNT_ID}:schedule/default/"
                f"{logical_id}{event}"
            )
        if not isinstance(expression, str):
            raise TemplateError(f"{logical_id}.{event}: no schedule expression")
        input_ = props.get("Input")
        if input_ is not None and not isinstance(input_, str):
            input_ = json.dumps(input_)
        delivery = None
        if kind == "ScheduleV2":
            delivery = _scheduler_delivery(function_arn, props)
        return Schedule(logical_id, event, expression, input_, enabled, rule, delivery)

    def _queues(self, resolver: _Resolver, local: LocalValues) -> dict[str, Queue]:
        queues: dict[str, Queue] = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != QUEUE or not resolver.included(resource):
                continue
            props = resolver.resolve(resource.get("Properties", {}))
            name = props.get("QueueName") or f"{self.stack_name}-{logical_id}"
            if _true(props.get("FifoQueue", False)) and not name.endswith(".fifo"):
                name += ".fifo"
            attributes = {
                key: _text(props[key]).lower()
                if isinstance(props[key], bool)
                else _text(props[key])
                for key in QUEUE_ATTRIBUTES
                if key in props
            }
            redrive = props.get("RedrivePolicy")
            dead_letter_arn = max_receive = None
            if redrive:
                redrive = json.loads(redrive) if isinstance(redrive, str) else redrive
                dead_letter_arn = redrive["deadLetterTargetArn"]
                max_receive = int(redrive["maxReceiveCount"])
                attributes["RedrivePolicy"] = json.dumps(
                    {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive}
                )
            queues[logical_id] = Queue(
                logical_id=logical_id,
                name=name,
                arn=resolver.queue_arn(logical_id),
                attributes=attributes,
                dead_letter_arn=dead_letter_arn,
                max_receive_count=max_receive,
            )
        return _dead_letters_first(queues)


def _dead_letters_first(queues: dict[str, Queue]) -> dict[str, Queue]:
    ordered: dict[str, Queue] = {}
    by_arn = {q.arn: q for q in queues.values()}

    def visit(queue: Queue, path: tuple[str, ...]) -> None:
        if queue.logical_id in ordered:
            return
        if queue.logical_id in path:
            raise TemplateError(f"dead-letter queues form a cycle: {' -> '.join(path)}")
        if queue.dead_letter_arn:
            target = by_arn.get(queue.dead_letter_arn)
            if target is None:
                raise TemplateError(
                    f"{queue.logical_id}: dead-letter queue {queue.dead_letter_arn} is not local"
                )
            visit(target, (*path, queue.logical_id))
        ordered[queue.logical_id] = queue

    for queue in queues.values():
        visit(queue, ())
    return ordered


def _async_config(props: dict[str, Any]) -> AsyncConfig:
    invoke = props.get("EventInvokeConfig") or {}
    destination = (invoke.get("DestinationConfig") or {}).get("OnFailure") or {}
    dead_letter = props.get("DeadLetterQueue") or {}
    return AsyncConfig(
        max_retries=int(invoke.get("MaximumRetryAttempts", 2)),
        max_event_age_seconds=float(invoke.get("MaximumEventAgeInSeconds", 6 * 3600)),
        on_failure_arn=destination.get("Destination"),
        dead_letter_arn=dead_letter.get("TargetArn"),
    )


def _scheduler_delivery(target_arn: str, target: dict[str, Any]) -> SchedulerDelivery:
    """A Scheduler target's (or a ScheduleV2 event's) RetryPolicy and DeadLetterConfig."""
    retry = target.get("RetryPolicy") or {}
    dead_letter = target.get("DeadLetterConfig") or {}
    return SchedulerDelivery(
        target_arn=target_arn,
        max_retries=int(retry.get("MaximumRetryAttempts", 185)),
        max_event_age_seconds=float(retry.get("MaximumEventAgeInSeconds", 86400)),
        dead_letter_arn=dead_letter.get("Arn"),
    )


def _logical_id_of(value: Any, resources: dict[str, dict[str, Any]]) -> str | None:
    """The logical id a `Ref` or `GetAtt` names, before resolving (the Arn of a function)."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" and isinstance(argument, str):
            name = argument.split(".")[0]  # !Ref Function.Alias
        elif key == "Fn::GetAtt":
            name = argument.split(".")[0] if isinstance(argument, str) else argument[0]
        else:
            return None
        return name if name in resources else None
    return None


def _mentions(value: Any) -> set[str]:
    """Every logical id a property tree names through Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _mentions(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            if key == "Ref" and isinstance(argument, str):
                found.add(argument.split(".")[0])
            elif key == "Fn::GetAtt":
                found.add(argument.split(".")[0] if isinstance(argument, str) else argument[0])
            elif key == "Fn::Sub":
                text = argument[0] if isinstance(argument, list) else argument
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", str(text))}
                if isinstance(argument, list):
                    found |= _mentions(argument[1:])
            else:
                found |= _mentions(argument)
    return found


def _service_integrations(value: Any) -> set[str]:
    """AWS services an API integrates with directly (SQS-SendMessage, arn:...:sqs:path/...)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _service_integrations(item)
    elif isinstance(value, dict):
        for key, argument in value.items():
            lowered = key.lower()
            if lowered == "integrationsubtype" and isinstance(argument, str):
                found.add(argument.split("-")[0])
            elif lowered in ("uri", "integrationuri") and isinstance(argument, (str, dict)):
                text = json.dumps(argument)
                # the region may be a ${AWS::Region} still to substitute
                match = re.search(r":apigateway:(?:\$\{[^}]*\}|[^:$])*:(\w+):(path|action)/", text)
                if match and match.group(1) != "lambda":
                    found.add(match.group(1).upper())
            else:
                found |= _service_integrations(argument)
    return found


def _reference_problems(
    value: Any, names: set[str], generated: tuple[str, ...], path: str = ""
) -> Iterator[tuple[str, str]]:
    """Intrinsic functions the resolver does not know, and Ref/GetAtt/Sub to nothing
    (neither declared nor, by its name, one SAM generates)."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _reference_problems(item, names, generated, f"{path}[{index}]")
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        ((key, argument),) = value.items()
        # Fn::Transform (AWS::Include) is CloudFormation's; the value it stands for is not
        # read locally, which _service_routes names where it matters (a DefinitionBody).
        if key.startswith("Fn::") and key not in _Resolver._intrinsics and key != "Fn::Transform":
            yield path, f"uses {key}, which is no intrinsic function the local runtime knows"
            return
        named: list[str] = []
        if key == "Ref" and isinstance(argument, str):
            named = [argument.split(".")[0]]
        elif key == "Fn::GetAtt":
            target = argument.split(".")[0] if isinstance(argument, str) else argument[0]
            named = [target] if isinstance(target, str) else []
        elif key == "Fn::Sub":
            text = argument[0] if isinstance(argument, list) else argument
            local = set(argument[1]) if isinstance(argument, list) and len(argument) > 1 else set()
            found = re.findall(r"\$\{([^}!]+)\}", text) if isinstance(text, str) else []
            named = [n.split(".")[0] for n in found if n not in local]
        for name in named:
            if name in names or name.startswith(("AWS::", "Local::", *generated)):
                continue
            yield path, f"names {name}, which the template declares nowhere"
    for key, item in value.items():
        yield from _reference_problems(item, names, generated, f"{path}.{key}" if path else key)


# Properties the runtime reads as numbers; a literal that is not one is refused at start.
_NUMBERS = {
    FUNCTION: ("Timeout", "MemorySize"),
    QUEUE: (
        "DelaySeconds",
        "MaximumMessageSize",
        "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout",
    ),
    EVENT_SOURCE_MAPPING: ("BatchSize", "MaximumBatchingWindowInSeconds"),
    "SQS": ("BatchSize", "MaximumBatchingWindowInSeconds"),
}


def _check_numbers(where: str, kind: Any, props: dict[str, Any]) -> None:
    for name in _NUMBERS.get(kind, ()):
        value = props.get(name)
        if value is None or isinstance(value, dict | bool):
            continue  # unset, or an intrinsic function resolved later
        try:
            float(value)
        except (TypeError, ValueError):
            raise TemplateError(f"{where}: {name} {value!r} is not a number") from None


# CreateQueue's rule: up to 80 characters, alphanumerics, hyphens and underscores, with
# ".fifo" at the end of a FIFO queue's name (and only there).
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def _check_queue_name(logical_id: str, props: dict[str, Any], resolver: _Resolver) -> None:
    name = resolver.resolve(props.get("QueueName"))
    if name is None:
        return  # CloudFormation makes one up from the stack's name and the logical id
    fifo = _true(resolver.resolve(props.get("FifoQueue", False)))
    text = str(name)
    if text.endswith(".fifo") and not fifo:
        raise TemplateError(
            f"{logical_id}: QueueName {text!r} ends in .fifo, which SQS accepts only with"
            " FifoQueue: true"
        )
    if len(text) > 80 or not _QUEUE_NAME.fullmatch(text.removesuffix(".fifo")):
        raise TemplateError(
            f"{logical_id}: QueueName {text!r} is not a name SQS accepts (at most 80 letters,"
            " digits, hyphens and underscores, with .fifo at the end of a FIFO queue's)"
        )


def _sqs_route(
    api: str,
    kind: str,
    method: str,
    path: str,
    integration: dict[str, Any],
    by_arn: dict[str, str],
    by_url: dict[str, str],
) -> ServiceRoute | str:
    """The route, or why it cannot be run exactly as API Gateway runs it."""
    parameters = integration.get("requestParameters") or {}
    subtype = str(integration.get("integrationSubtype", ""))
    if kind == HTTP_API and subtype == "SQS-SendMessage":
        queue = by_url.get(str(parameters.get("QueueUrl")))
        if queue is None:
            return f"its QueueUrl {parameters.get('QueueUrl')!r} is not a queue of the template"
        for name, value in parameters.items():
            if name not in ("QueueUrl", "Region", *integrations.SEND_MESSAGE_PARAMETERS):
                return f"its request parameter {name} is not taken by the local queues"
            problem = integrations.unsupported_expression(str(value))
            if problem:
                return problem
        passed = tuple(
            (k, str(v)) for k, v in parameters.items() if k not in ("QueueUrl", "Region")
        )
        return ServiceRoute(method, path, api, "HttpApi", queue, parameters=passed)
    uri = _text(integration.get("uri", ""))
    match = re.fullmatch(r"arn:aws:apigateway:([^:]*):sqs:path/(\d+)/([\w.-]+)", uri)
    if kind != REST_API or str(integration.get("type", "")).lower() != "aws" or match is None:
        services = ", ".join(sorted(_service_integrations(integration)))
        return f"an integration straight to {services} is not served locally"
    queue_arn = f"arn:aws:sqs:{match.group(1)}:{match.group(2)}:{match.group(3)}"
    queue = by_arn.get(queue_arn)
    if queue is None:
        return f"its queue {match.group(3)} is not a queue of the template"
    content_type = str(parameters.get("integration.request.header.Content-Type", "")).strip("'")
    if content_type != integrations.FORM:
        return (
            f"it sends SQS a Content-Type of {content_type or 'application/json'!r};"
            f" only {integrations.FORM} is run locally"
        )
    templates = tuple(
        (str(k).lower(), str(v)) for k, v in (integration.get("requestTemplates") or {}).items()
    )
    for _, text in templates:
        problem = integrations.unsupported_template(text)
        if problem:
            return problem
    responses = tuple(
        (str(pattern), int((response or {}).get("statusCode", 200)))
        for pattern, response in (integration.get("responses") or {}).items()
    )
    return ServiceRoute(
        method,
        path,
        api,
        "Api",
        queue,
        templates=templates,
        passthrough=str(integration.get("passthroughBehavior", "WHEN_NO_MATCH")).upper(),
        responses=responses,
    )


def _optional_int(value: Any) -> int | None:
    return None if value is None or value is NO_VALUE else int(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


class _Resolver:
    """CloudFormation's intrinsic functions, evaluated against the local stand-ins."""

    def __init__(self, template: Template, local: LocalValues) -> None:
        self.template = template
        self.local = local
        self.queues: dict[str, Queue] = {}
        self._conditions: dict[str, bool] = {}
        self.pseudo = {
            "AWS::Region": local.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": template.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{local.region}:{ACCOUNT_ID}:stack/"
            f"{template.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            # The local stand-ins, for the settings file.
            "Local::ApiUrl": local.api_url,
            "Local::AwsEndpointUrl": local.aws_endpoint_url,
            "Local::DatabaseUrl": local.database_url,
            "Local::StateDir": local.state_dir,
        }
        # Refs to an API resource name the API (used to group routes).
        self.api_of: dict[str, str] = {}

    # -- resources
    def queue_arn(self, logical_id: str) -> str:
        name = self._queue_name(logical_id)
        return f"arn:aws:sqs:{self.local.region}:{ACCOUNT_ID}:{name}"

    def _queue_name(self, logical_id: str) -> str:
        props = self.template.resources[logical_id].get("Properties", {})
        name = props.get("QueueName")
        name = self.resolve(name) if name is not None else None
        name = name or f"{self.template.stack_name}-{logical_id}"
        if _true(self.resolve(props.get("FifoQueue", False))) and not name.endswith(".fifo"):
            name += ".fifo"
        return name

    def _function_name(self, logical_id: str) -> str:
        props = self.template.resources[logical_id].get("Properties", {})
        name = props.get("FunctionName")
        return self.resolve(name) if name else f"{self.template.stack_name}-{logical_id}"

    def ref(self, name: str) -> Any:
        if name in self.template.parameters:
            return self.template.parameters[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            value = self.pseudo[name]
            if value is None:
                raise TemplateError(f"{name} has no local value")
            return value
        resource = self.template.resources.get(name)
        if resource is None:
            raise TemplateError(f"Ref to {name}, which the template does not declare")
        kind = resource.get("Type")
        if kind == QUEUE:
            return f"{self.local.sqs_url}/{ACCOUNT_ID}/{self._queue_name(name)}"
        if kind == FUNCTION:
            return self._function_name(name)
        if kind in (HTTP_API, REST_API):
            self.api_of["local-" + name] = name
            return "local-" + name
        return UNRESOLVED + name

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource = self.template.resources.get(logical_id)
        if resource is None:
            raise TemplateError(f"GetAtt {logical_id}.{attribute}: no such resource")
        kind = resource.get("Type")
        if kind == QUEUE:
            values = {
                "Arn": self.queue_arn(logical_id),
                "QueueName": self._queue_name(logical_id),
                "QueueUrl": self.ref(logical_id),
            }
            if attribute in values:
                return values[attribute]
        if kind == FUNCTION and attribute == "Arn":
            return (
                f"arn:aws:lambda:{self.local.region}:{ACCOUNT_ID}:function:"
                f"{self._function_name(logical_id)}"
            )
        if kind in (HTTP_API, REST_API) and attribute == "ApiEndpoint":
            return self.local.api_url
        return f"{UNRESOLVED}{logical_id}.{attribute}"

    def present(self, properties: dict[str, Any]) -> dict[str, Any]:
        """The properties (and events' properties) that are set: not AWS::NoValue."""
        kept = {k: v for k, v in properties.items() if self.resolve(v) is not NO_VALUE}
        events = kept.get("Events")
        if isinstance(events, dict):
            kept["Events"] = {
                name: {**event, "Properties": self.present(event.get("Properties") or {})}
                for name, event in events.items()
                if isinstance(event, dict)
            }
        return kept

    def included(self, resource: dict[str, Any]) -> bool:
        condition = resource.get("Condition")
        return condition is None or self.condition(condition)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.document.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"condition {name} is not declared")
            self._conditions[name] = bool(self.resolve(conditions[name]))
        return self._conditions[name]

    # -- values
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            handler = self._intrinsics.get(key)
            if handler is not None:
                return handler(self, argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, argument: str) -> Any:
        return self.ref(argument)

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = self.resolve(argument)
        return self.get_att(logical_id, attribute)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and name.split(".", 1)[0] in self.template.resources:
                return _text(self.get_att(*name.split(".", 1)))
            return _text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _join(self, argument: list) -> str:
        delimiter, items = argument
        return delimiter.join(_text(item) for item in self.resolve(items))

    def _select(self, argument: list) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _split(self, argument: list) -> list[str]:
        delimiter, text = self.resolve(argument)
        return text.split(delimiter)

    def _if(self, argument: list) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: list) -> bool:
        left, right = self.resolve(argument)
        return _text(left) == _text(right)

    def _not(self, argument: list) -> bool:
        return not self.resolve(argument[0])

    def _and(self, argument: list) -> bool:
        return all(self.resolve(item) for item in argument)

    def _or(self, argument: list) -> bool:
        return any(self.resolve(item) for item in argument)

    def _condition(self, argument: str) -> bool:
        return self.condition(argument)

    def _get_azs(self, argument: Any) -> list[str]:
        return [f"{self.local.region}{zone}" for zone in "abc"]

    def _base64(self, argument: Any) -> str:
        return base64.b64encode(_text(self.resolve(argument)).encode()).decode()

    def _find_in_map(self, argument: list) -> Any:
        name, top, second = self.resolve(argument)
        return self.template.document["Mappings"][name][top][second]

    def _import_value(self, argument: Any) -> str:
        return UNRESOLVED + "ImportValue:" + _text(self.resolve(argument))

    _intrinsics = {
        "Ref": _ref,
        "Fn::GetAtt": _get_att,
        "Fn::Sub": _sub,
        "Fn::Join": _join,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::If": _if,
        "Fn::Equals": _equals,
        "Fn::Not": _not,
        "Fn::And": _and,
        "Fn::Or": _or,
        "Condition": _condition,
        "Fn::GetAZs": _get_azs,
        "Fn::Base64": _base64,
        "Fn::FindInMap": _find_in_map,
        "Fn::ImportValue": _import_value,
    }


def load(template_path: Path, settings_path: Path | None = None) -> Template:
    """The template and, like `sam local --env-vars`, a JSON file of local settings."""
    try:
        document = yaml_parse(template_path.read_text())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise TemplateError(
            f"{template_path.name} is not YAML the runtime reads{where}: {exc.problem}"
        ) from None
    except yaml.YAMLError as exc:
        raise TemplateError(
            f"{template_path.name} is not YAML the runtime can read: {exc}"
        ) from None
    if not isinstance(document, dict):
        raise TemplateError(f"{template_path} is not a template")
    try:
        settings = json.loads(settings_path.read_text()) if settings_path else {}
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{settings_path}: not JSON ({exc})") from None
    return Template(template_path.resolve(), document, settings)


def _queue_trigger(function: str, event: str, queue: Queue, props: dict[str, Any]) -> QueueTrigger:
    """An SQS trigger's settings: a SAM `SQS` event and a raw mapping share their names."""
    return QueueTrigger(
        function=function,
        event=event,
        queue=queue.logical_id,
        batch_size=int(props.get("BatchSize", 10)),
        window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        report_item_failures="ReportBatchItemFailures"
        in (props.get("FunctionResponseTypes") or []),
        enabled=_true(props.get("Enabled", True)),
        max_concurrency=_optional_int((props.get("ScalingConfig") or {}).get("MaximumConcurrency")),
    )
