"""Every property of the types the runtime reads is honoured or named at start.

The properties come from the specifications, not from a list kept here:
aws-sam-translator's property definitions for SAM's resources and event sources,
cfn-lint's CloudFormation resource schemas for the raw resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from samtranslator.model.eventsources import pull, push, scheduler
from samtranslator.model.sam_resources import SamApi, SamFunction, SamHttpApi

from local_runtime import properties
from local_runtime.properties import HONOURED, INERT, not_run_lines
from local_runtime.template import LocalValues, load

FOLDER = Path(__file__).parent / "fidelity" / "properties"
LOCAL = LocalValues(region="us-east-1", api_url="http://127.0.0.1:3000", aws_endpoint_url="x")

_SAM = {
    properties.FUNCTION: SamFunction,
    properties.API: SamApi,
    properties.HTTP_API: SamHttpApi,
    "event SQS": pull.SQS,
    "event Api": push.Api,
    "event HttpApi": push.HttpApi,
    "event Schedule": push.Schedule,
    "event ScheduleV2": scheduler.SchedulerEventSource,
}
_CLOUDFORMATION = (properties.QUEUE, properties.MAPPING, properties.SCHEDULE)


def specified() -> dict[str, set[str]]:
    """Each type's properties as the specifications list them (Target.X for a schedule's)."""
    found = {
        kind: {name for name in source.property_types if not name.startswith("__")}
        for kind, source in _SAM.items()
    }
    for kind in _CLOUDFORMATION:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema
        read_only = {path.rsplit("/", 1)[-1] for path in schema.get("readOnlyProperties", [])}
        found[kind] = set(schema["properties"]) - read_only
        if kind == properties.SCHEDULE:
            target = schema["definitions"]["Target"]["properties"]
            found[kind] |= {f"Target.{name}" for name in target}
    return found


SPECIFIED = specified()
CASES = sorted((kind, name) for kind, names in SPECIFIED.items() for name in names)


def _template_setting(kind: str, name: str) -> dict[str, dict[str, Any]]:
    """One resource that sets only this property (an event's, on a function)."""
    if kind.startswith("event "):
        event = {"Type": kind.removeprefix("event "), "Properties": {name: "x"}}
        return {"F": {"Type": properties.FUNCTION, "Properties": {"Events": {"E": event}}}}
    if name.startswith("Target."):
        return {"R": {"Type": kind, "Properties": {"Target": {name.split(".", 1)[1]: "x"}}}}
    return {"R": {"Type": kind, "Properties": {name: "x"}}}


@pytest.mark.parametrize("kind, name", CASES, ids=[f"{k}.{n}" for k, n in CASES])
def test_every_specified_property_is_honoured_or_named_at_start(kind, name):
    resources = _template_setting(kind, name)
    lines = not_run_lines(resources, {}, lambda resource: True)

    named = [line for line in lines if line.startswith(f"{name} of ")]
    if name in HONOURED[kind] | INERT.get(kind, frozenset()):
        assert named == []
    else:
        assert len(named) == 1, lines


def test_the_runtimes_lists_name_only_properties_the_specifications_have():
    for kind, names in HONOURED.items():
        assert names <= SPECIFIED[kind], kind
        assert INERT.get(kind, frozenset()) <= SPECIFIED[kind], kind
        assert not names & INERT.get(kind, frozenset()), kind


def test_tenancy_capacity_providers_provisioned_pollers_and_time_zones_are_named():
    topology = load(FOLDER / "template.yaml", FOLDER / "settings.json").topology(LOCAL)
    report = "\n".join(topology.not_run)

    assert "TenancyConfig of TenantFunction (AWS::Serverless::Function): Lambda's tenant" in (
        report
    )
    assert "CapacityProviderConfig of ManagedFunction (AWS::Serverless::Function)" in report
    assert "Instances (AWS::Serverless::CapacityProvider): functions run in local" in report
    assert "ProvisionedPollerConfig of JobsMapping (AWS::Lambda::EventSourceMapping)" in report
    assert "ScheduleExpressionTimezone of Nightly (AWS::Scheduler::Schedule)" in report
    assert "Target.SqsParameters of Nightly (AWS::Scheduler::Schedule)" in report
    # set to AWS::NoValue, or describing only: nothing to say
    assert "ReservedConcurrentExecutions" not in report and "Description" not in report
