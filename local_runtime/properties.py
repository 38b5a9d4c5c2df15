"""Which properties the local runtime honours; every other one set gets a line at start.

For each resource type (and event type) the runtime reads there are two lists: what it
runs as AWS does (HONOURED), and what describes rather than behaves, so nothing differs
locally (INERT: descriptions, tags, encryption keys at rest). Any other property a
template sets, present or added to SAM or CloudFormation later, is named at start as
not run, one line per property with the resources that set it. The test holds these
lists against aws-sam-translator's and cfn-lint's own property lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

FUNCTION = "AWS::Serverless::Function"
API = "AWS::Serverless::Api"
HTTP_API = "AWS::Serverless::HttpApi"
QUEUE = "AWS::SQS::Queue"
MAPPING = "AWS::Lambda::EventSourceMapping"
SCHEDULE = "AWS::Scheduler::Schedule"
CAPACITY_PROVIDER = "AWS::Serverless::CapacityProvider"

# SQS attributes a queue's Properties map to one for one (the rest are AWS-only).
QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)

# A function's events, keyed "event <Type>"; only the types the runtime runs (others are
# named whole, as events that are not run).
HONOURED: dict[str, frozenset[str]] = {
    FUNCTION: frozenset(
        {
            "CodeUri",
            "InlineCode",
            "Handler",
            "Runtime",  # another Python gets a `differs` line
            "Timeout",
            "MemorySize",  # as AWS_LAMBDA_FUNCTION_MEMORY_SIZE and the context's
            "Environment",
            "Layers",
            "FunctionName",
            "Events",
            "EventInvokeConfig",
            "DeadLetterQueue",
            "LoggingConfig",
            # At most that many invocations at once; one more is throttled, as Lambda does.
            "ReservedConcurrentExecutions",
        }
    ),
    API: frozenset({"DefinitionBody"}),  # its SQS integrations; the rest are named
    HTTP_API: frozenset({"DefinitionBody", "CorsConfiguration"}),
    # FifoThroughputLimit is checked as SQS checks it; SQS's quotas are not enforced.
    QUEUE: frozenset({"QueueName", "RedrivePolicy", *QUEUE_ATTRIBUTES}),
    MAPPING: frozenset(
        {
            "EventSourceArn",
            "FunctionName",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "Enabled",
            "ScalingConfig",  # MaximumConcurrency: that many pollers (runtime.batches_in_flight)
        }
    ),
    SCHEDULE: frozenset(
        {
            "ScheduleExpression",
            "State",
            "Name",
            "GroupName",
            # Firing on time is one of the times a flexible window allows.
            "FlexibleTimeWindow",
            "Target",
            "Target.Arn",
            "Target.Input",
            "Target.RetryPolicy",
            "Target.DeadLetterConfig",
        }
    ),
    "event SQS": frozenset(
        {
            "Queue",
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "FunctionResponseTypes",
            "Enabled",
            "ScalingConfig",  # MaximumConcurrency: that many pollers (runtime.batches_in_flight)
        }
    ),
    "event Api": frozenset({"Path", "Method", "RestApiId"}),
    "event HttpApi": frozenset({"Path", "Method", "ApiId", "PayloadFormatVersion"}),
    "event Schedule": frozenset({"Schedule", "Input", "Enabled", "State"}),
    "event ScheduleV2": frozenset(
        {
            "ScheduleExpression",
            "Input",
            "State",
            "FlexibleTimeWindow",
            "RetryPolicy",
            "DeadLetterConfig",
        }
    ),
}

_DESCRIBES = frozenset({"Description", "Tags", "PropagateTags"})
INERT: dict[str, frozenset[str]] = {
    FUNCTION: _DESCRIBES | {"VersionDescription", "KmsKeyArn", "SourceKMSKeyArn", "RolePath"},
    API: _DESCRIBES | {"Name", "StageName", "OpenApiVersion", "FailOnWarnings", "Mode"},
    HTTP_API: _DESCRIBES | {"Name", "StageName", "FailOnWarnings"},
    QUEUE: frozenset(
        {"Tags", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled"}
    ),
    MAPPING: frozenset({"Tags", "KmsKeyArn"}),
    SCHEDULE: frozenset({"Description", "KmsKeyArn", "Target.RoleArn"}),
    "event SQS": frozenset({"KmsKeyArn"}),
    "event Api": frozenset({"Stage"}),
    "event HttpApi": frozenset({"Stage"}),
    "event Schedule": frozenset({"Name", "RuleName", "Description"}),
    "event ScheduleV2": frozenset(
        {
            "Name",
            "Description",
            "GroupName",
            "KmsKeyArn",
            "OmitName",
            "RoleArn",
            "PermissionsBoundary",
        }
    ),
}

# Why, for the properties a developer is most likely to wonder about.
_REASONS = {
    "TenancyConfig": "Lambda's tenant isolation (an execution environment per tenant id)"
    " is not emulated: one worker serves every tenant",
    "CapacityProviderConfig": "functions run in local worker processes, not on a"
    " capacity provider's instances (no multi-concurrency per environment)",
    "ProvisionedPollerConfig": "the runtime's own pollers read the queue (two per trigger)",
    "ProvisionedConcurrencyConfig": "workers start on demand (and are prewarmed)",
    "Policies": "IAM is not enforced: every call is allowed locally",
    "Role": "IAM is not enforced: every call is allowed locally",
    "FilterCriteria": "every message is delivered to the function, filtered or not",
    "Architectures": "the code runs on this machine's architecture",
    "VpcConfig": "functions reach whatever this machine reaches",
    "Auth": "authorizers are not run: every request reaches the function",
    "Cors": "a REST API's CORS is not emulated",
    "ScheduleExpressionTimezone": "cron() is read in UTC",
    "Tracing": "X-Ray is not emulated",
    "AutoPublishAlias": "the runtime invokes the code as it is ($LATEST)",
    "DeploymentPreference": "the runtime invokes the code as it is ($LATEST)",
    "AccessLogSettings": "the runtime's request lines are the access log",
    "AccessLogSetting": "the runtime's request lines are the access log",
    "DefaultRouteSettings": "no throttling locally",
    "MethodSettings": "no throttling or caching locally",
}

Included = Callable[[dict[str, Any]], bool]


def _set(properties: dict[str, Any], nested: tuple[str, ...] = ()) -> Iterator[str]:
    for name, value in properties.items():
        yield name
        if name in nested and isinstance(value, dict):
            yield from (f"{name}.{inner}" for inner in value)


def properties_set(kind: str, properties: dict[str, Any]) -> list[str]:
    """The properties a resource (or event) sets, `Target.X` for a schedule's target."""
    return list(_set(properties, ("Target",) if kind == SCHEDULE else ()))


def unhonoured(kind: str, properties: dict[str, Any]) -> list[str]:
    """What this resource (or event) sets that the runtime neither honours nor can ignore."""
    known = HONOURED.get(kind, frozenset()) | INERT.get(kind, frozenset())
    return [name for name in properties_set(kind, properties) if name not in known]


def not_run_lines(
    resources: dict[str, dict[str, Any]],
    properties_of: dict[str, dict[str, Any]],
    included: Included,
) -> list[str]:
    """One line per (type, property) the runtime does not honour, naming its resources.

    `properties_of` has each resource's properties as set (Globals merged, those that
    resolve to AWS::NoValue left out); a resource missing from it is read as written."""
    users: dict[tuple[str, str], list[str]] = {}
    for logical_id, resource in resources.items():
        kind = str(resource.get("Type"))
        if not included(resource):
            continue
        if kind == CAPACITY_PROVIDER:
            users.setdefault((kind, "(the resource)"), []).append(logical_id)
            continue
        if kind not in HONOURED:
            continue
        properties = properties_of.get(logical_id, resource.get("Properties") or {})
        for name in unhonoured(kind, properties):
            users.setdefault((kind, name), []).append(logical_id)
        if kind != FUNCTION:
            continue
        events = properties.get("Events")
        for event_name, event in (events if isinstance(events, dict) else {}).items():
            event_kind = f"event {event.get('Type')}" if isinstance(event, dict) else ""
            if event_kind not in HONOURED:
                continue  # an event type that is not run is named whole
            for name in unhonoured(event_kind, event.get("Properties") or {}):
                users.setdefault((event_kind, name), []).append(f"{logical_id}.{event_name}")
    functions = [i for i, r in resources.items() if r.get("Type") == FUNCTION and included(r)]
    lines = []
    for (kind, name), names in users.items():
        if kind == CAPACITY_PROVIDER:
            reason = _REASONS["CapacityProviderConfig"]
            lines.append(f"{', '.join(names)} ({kind}): {reason}")
            continue
        reason = _REASONS.get(name.split(".")[-1], "not applied locally")
        who = "every function" if len(functions) > 1 and names == functions else ", ".join(names)
        lines.append(f"{name} of {who} ({kind}): {reason}")
    return lines
