"""The idle cost table (docs/operating-in-aws.md, "Cost") is what `python -m tools.costs
--markdown` prints, and its line items are the translated template's resources.

The counts are taken here again, from the template CloudFormation receives for each
environment, by other code than the tool's: a resource the tool forgets to count, or a
docs table nobody regenerated after a change to the template, fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.stack import REPO_ROOT, load_template, of_type, referenced, translate
from tests.observability import alarm_metrics, alarms, dashboard_body, widget_metrics
from toolkit.cloudformation import evaluated
from tools import costs

ENVIRONMENTS = ("dev", "prod")


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def environment(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def stack_resources(environment) -> dict[str, dict[str, Any]]:
    """The resources CloudFormation creates for this environment, conditions applied."""
    parameters = {"Environment": environment}
    return evaluated(translate(load_template(), parameters), parameters)["Resources"]


@pytest.fixture(scope="module")
def counted(environment) -> costs.Counts:
    return costs.count(costs.stack(environment))


def test_interface_endpoints_and_the_zones_they_span(stack_resources, counted, environment):
    interface = [
        e["Properties"]
        for e in of_type(stack_resources, "AWS::EC2::VPCEndpoint").values()
        if e["Properties"]["VpcEndpointType"] == "Interface"
    ]
    assert counted.interface_endpoints == len(interface) >= 3  # SQS, Secrets Manager, SES
    assert counted.endpoint_zones == sum(len(e["SubnetIds"]) for e in interface)
    assert counted.endpoint_zones == len(interface) * (2 if environment == "prod" else 1)


def test_no_nat_gateway(stack_resources, counted):
    assert counted.nat_gateways == len(of_type(stack_resources, "AWS::EC2::NatGateway")) == 0


def test_the_database_instance_storage_and_proxy(stack_resources, counted, environment):
    [database] = of_type(stack_resources, "AWS::RDS::DBInstance").values()
    properties = database["Properties"]
    assert counted.instance_class == properties["DBInstanceClass"] == "db.t4g.micro"
    assert counted.instances == (2 if properties["MultiAZ"] else 1)
    assert counted.instances == (2 if environment == "prod" else 1)
    assert counted.storage_gib == int(properties["AllocatedStorage"])
    assert counted.storage_type == properties["StorageType"]
    assert counted.proxies == len(of_type(stack_resources, "AWS::RDS::DBProxy")) == 1


def test_secrets_include_the_one_rds_manages(stack_resources, counted):
    [database] = of_type(stack_resources, "AWS::RDS::DBInstance").values()
    managed = 1 if database["Properties"].get("ManageMasterUserPassword") else 0
    secrets = of_type(stack_resources, "AWS::SecretsManager::Secret")
    assert counted.secrets == len(secrets) + managed


def test_alarms_and_the_metrics_they_read(stack_resources, counted):
    found = alarms(stack_resources)
    assert counted.alarms == len(found)
    assert counted.alarm_metrics == sum(len(alarm_metrics(alarm)) for alarm in found.values())
    assert counted.alarm_metrics > counted.alarms  # the email alarm's math reads two


def test_the_dashboards_metrics(stack_resources, counted):
    body, _ = dashboard_body(stack_resources)
    lines = sum(len(widget_metrics(widget)) for widget in body["widgets"])
    assert counted.dashboards == 1
    assert counted.dashboard_metrics == lines


def test_the_metrics_an_idle_stack_prints_come_from_its_schedules(stack_resources, counted):
    scheduled = {
        name
        for name, resource in of_type(stack_resources, "AWS::Lambda::Function").items()
        if any(
            rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [name, "Arn"]}
            for rule in of_type(stack_resources, "AWS::Events::Rule").values()
        )
    }
    assert set(costs.SCHEDULED_METRICS) == scheduled
    assert counted.idle_metrics == sum(len(m) for m in costs.SCHEDULED_METRICS.values())


def test_every_sqs_trigger_polls_while_idle(stack_resources, counted):
    queues = of_type(stack_resources, "AWS::SQS::Queue")
    triggers = [
        mapping
        for mapping in of_type(stack_resources, "AWS::Lambda::EventSourceMapping").values()
        if referenced(mapping["Properties"]["EventSourceArn"]) in queues
    ]
    assert counted.sqs_triggers == len(triggers) == 2  # the events and email queues


def test_the_prices_say_where_and_when_they_were_read():
    prices = costs.load_prices()
    assert prices["region"] == "us-east-1"
    assert prices["as_of"]


def test_the_totals_add_up():
    for environment in ENVIRONMENTS:
        items = costs.line_items(costs.count(costs.stack(environment)), costs.load_prices())
        total = costs.total(items)
        assert total == pytest.approx(sum(item.monthly for item in items), abs=0.005)
    # The figures issue 24 recomputed by hand: three endpoints, one AZ in dev and two in prod.
    dev = costs.total(costs.line_items(costs.count(costs.stack("dev")), costs.load_prices()))
    prod = costs.total(costs.line_items(costs.count(costs.stack("prod")), costs.load_prices()))
    assert 60 < dev < 75
    assert 95 < prod < 110


def test_the_operating_docs_show_the_table_tools_costs_prints():
    docs = (REPO_ROOT / "docs" / "operating-in-aws.md").read_text()
    generated = costs.markdown()
    assert generated in docs, (
        "docs/operating-in-aws.md's cost table is stale: run"
        " `.venv/bin/python -m tools.costs --markdown` and paste it over the old one"
    )
    assert docs.count(costs.BEGIN) == docs.count(costs.END) == 1
