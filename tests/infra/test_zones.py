"""`make deploy`'s zone check (tools.zones): every interface endpoint's service, SES's
`email` included, and the instance class, in the zones the template puts them in.

EC2 and RDS are fakes that answer as the two APIs do for a region whose zones offer
what each test says: moto offers no SES endpoint service and no orderable options
for RDS for PostgreSQL, so it cannot say which zone lacks them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.infra.stack import REPO_ROOT, load_template, translate
from toolkit.cloudformation import evaluated
from tools import zones

REGION = "us-east-1"
ZONES = {"us-east-1a": "use1-az1", "us-east-1b": "use1-az2", "us-east-1c": "use1-az3"}
ALL_SERVICES = ("sqs", "secretsmanager", "email")


class FakeEc2:
    """EC2 of a region where `offered` says which zone names offer each endpoint service."""

    def __init__(self, offered: dict[str, list[str]]):
        self.offered = offered

    def describe_availability_zones(self) -> dict[str, Any]:
        return {"AvailabilityZones": [{"ZoneName": n, "ZoneId": i} for n, i in ZONES.items()]}

    def describe_vpc_endpoint_services(self, ServiceNames: list[str]) -> dict[str, Any]:
        [name] = ServiceNames
        service = name.rsplit(".", 1)[1]
        if service not in self.offered:
            error = {"Code": "InvalidServiceName", "Message": f"The service name '{name}'"}
            raise ClientError({"Error": error}, "DescribeVpcEndpointServices")
        return {
            "ServiceDetails": [{"ServiceName": name, "AvailabilityZones": self.offered[service]}]
        }


class FakeRds:
    """RDS where the instance class is orderable in `zone_names`."""

    def __init__(self, zone_names: list[str]):
        self.zone_names = zone_names
        self.asked: list[dict[str, str]] = []

    def get_paginator(self, operation: str):
        assert operation == "describe_orderable_db_instance_options"
        return self

    def paginate(self, **query: str):
        self.asked.append(query)
        zones_ = [{"Name": name} for name in self.zone_names]
        yield {"OrderableDBInstanceOptions": [{"AvailabilityZones": zones_}]}


def stack(environment: str) -> dict[str, dict[str, Any]]:
    parameters = {
        "Environment": environment,
        "PrivateSubnetAZoneId": "use1-az1",
        "PrivateSubnetBZoneId": "use1-az2",
    }
    return evaluated(translate(load_template(), parameters), parameters)["Resources"]


def gaps(environment: str, offered: dict[str, list[str]], orderable: list[str]) -> set:
    resources = stack(environment)
    found = zones.lacking(
        zones.needs(resources, REGION), resources, FakeEc2(offered), FakeRds(orderable)
    )
    # An endpoint's service by its last part (`email`), an instance class as it is.
    return {
        (
            need.zone_id,
            need.offering.rsplit(".", 1)[1] if need.kind == "endpoint" else need.offering,
        )
        for need in found
    }


EVERYWHERE = {service: list(ZONES) for service in ALL_SERVICES}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_zones_that_offer_everything_pass(environment):
    assert gaps(environment, EVERYWHERE, list(ZONES)) == set()


def test_a_first_zone_without_ses_fails_the_check():
    offered = {**EVERYWHERE, "email": ["us-east-1b", "us-east-1c"]}

    assert gaps("dev", offered, list(ZONES)) == {("use1-az1", "email")}


def test_dev_puts_the_endpoints_in_the_first_zone_only_and_prod_in_both():
    offered = {**EVERYWHERE, "email": ["us-east-1a"]}

    assert gaps("dev", offered, list(ZONES)) == set()
    assert gaps("prod", offered, list(ZONES)) == {("use1-az2", "email")}


def test_a_region_without_the_ses_endpoint_fails_in_every_zone_it_is_needed():
    offered = {service: list(ZONES) for service in ("sqs", "secretsmanager")}

    assert gaps("prod", offered, list(ZONES)) == {("use1-az1", "email"), ("use1-az2", "email")}


def test_the_instance_class_must_be_orderable_in_both_zones_of_the_subnet_group():
    [(zone, offering)] = gaps("dev", EVERYWHERE, ["us-east-1a", "us-east-1c"])

    assert zone == "use1-az2"
    assert offering == "db.t4g.micro (postgres 17)"


def test_every_interface_endpoint_of_the_template_is_checked():
    resources = stack("prod")
    services = {
        need.offering.rsplit(".", 1)[1]
        for need in zones.needs(resources, REGION)
        if need.kind == "endpoint"
    }
    assert services == set(ALL_SERVICES)


def test_make_deploy_checks_the_zones_before_sam_deploys():
    # Not inside a make of its own: under `make test`, make's variables would pass down.
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "ENV"}
    }
    dry_run = subprocess.run(  # noqa: S603 - make, with fixed arguments
        [shutil.which("make") or "/usr/bin/make", "-n", "deploy", "ENV=dev"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = dry_run.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if re.search(r"-m tools\.zones --env dev", line))
    deploy = next(i for i, line in enumerate(lines) if "sam deploy --config-env dev" in line)
    assert check < deploy


def test_without_zones_in_samconfig_the_check_says_what_to_set(capsys):
    # samconfig.toml ships without zones: the deployer picks them (docs, step 1).
    assert zones.main(["--env", "dev"]) == 2

    message = capsys.readouterr().err
    assert "PrivateSubnetAZoneId, PrivateSubnetBZoneId" in message
