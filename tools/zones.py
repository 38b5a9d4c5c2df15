"""Checks that an environment's two zones offer what the template puts in them.

`make deploy` runs it before `sam deploy`: the zone IDs of samconfig.toml's
`parameter_overrides`, and in them every interface endpoint's service (SQS, Secrets
Manager, SES's `email`: the one most often missing) and the database's instance class.
A zone without one fails a deploy half-way, when CloudFormation reaches that
resource; no template rule can see it, so this asks EC2 and RDS first. What must be
where comes from the template as CloudFormation receives it for that environment: dev
puts each endpoint in the first zone only, prod in both.

RDS Proxy's own zones are not in any API: docs/operating-in-aws.md, "Before a first
deploy", says where AWS lists them.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import tomllib
from dataclasses import dataclass
from typing import Any

import boto3

from toolkit.cloudformation import REPO_ROOT, evaluated, load_template, translate
from tools import cli

SAMCONFIG = REPO_ROOT / "samconfig.toml"
ZONE_PARAMETERS = ("PrivateSubnetAZoneId", "PrivateSubnetBZoneId")


class ZonesNotChosen(cli.CommandError):
    exit_code = 2


@dataclass(frozen=True)
class Need:
    """A zone must offer `offering`: an endpoint service, or an RDS instance class."""

    zone_id: str
    offering: str
    kind: str  # "endpoint" or "database"
    resource: str  # the logical id that needs it


def parameter_overrides(environment: str) -> dict[str, str]:
    config = tomllib.loads(SAMCONFIG.read_text())
    text = config[environment]["deploy"]["parameters"].get("parameter_overrides", "")
    return dict(item.split("=", 1) for item in shlex.split(text))


def needs(resources: dict[str, dict[str, Any]], region: str) -> list[Need]:
    """What each zone must offer, read from one environment's evaluated resources."""
    zone_of = {
        name: resource["Properties"]["AvailabilityZoneId"]
        for name, resource in resources.items()
        if resource["Type"] == "AWS::EC2::Subnet"
    }

    def zones(subnet_ids: list[dict[str, str]]) -> list[str]:
        return [zone_of[subnet["Ref"]] for subnet in subnet_ids]

    found = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if (
            resource["Type"] == "AWS::EC2::VPCEndpoint"
            and properties["VpcEndpointType"] == "Interface"
        ):
            service = properties["ServiceName"]["Fn::Sub"].replace("${AWS::Region}", region)
            found += [Need(z, service, "endpoint", name) for z in zones(properties["SubnetIds"])]
    for name, resource in resources.items():
        if resource["Type"] == "AWS::RDS::DBInstance":
            properties = resource["Properties"]
            group = resources[properties["DBSubnetGroupName"]["Ref"]]["Properties"]
            offering = (
                f"{properties['DBInstanceClass']} ({properties['Engine']}"
                f" {properties['EngineVersion']})"
            )
            found += [Need(z, offering, "database", name) for z in zones(group["SubnetIds"])]
    return found


def _service_zones(ec2, service: str, ids: dict[str, str]) -> set[str]:
    from botocore.exceptions import ClientError

    try:
        details = ec2.describe_vpc_endpoint_services(ServiceNames=[service])["ServiceDetails"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "InvalidServiceName":
            return set()  # not offered in this region at all
        raise
    return {ids.get(name, name) for detail in details for name in detail["AvailabilityZones"]}


def _instance_zones(rds, resource: dict[str, Any], ids: dict[str, str]) -> set[str]:
    properties = resource["Properties"]
    found: set[str] = set()
    paginator = rds.get_paginator("describe_orderable_db_instance_options")
    for page in paginator.paginate(
        Engine=properties["Engine"],
        EngineVersion=str(properties["EngineVersion"]),
        DBInstanceClass=properties["DBInstanceClass"],
    ):
        for option in page["OrderableDBInstanceOptions"]:
            found |= {ids.get(zone["Name"], zone["Name"]) for zone in option["AvailabilityZones"]}
    return found


def lacking(needs_: list[Need], resources: dict[str, dict[str, Any]], ec2, rds) -> list[Need]:
    """The needs no zone of that ID meets, asking EC2 and RDS what each zone offers."""
    ids = {
        zone["ZoneName"]: zone["ZoneId"]
        for zone in ec2.describe_availability_zones()["AvailabilityZones"]
    }
    offered: dict[str, set[str]] = {}
    for need in needs_:
        if need.offering in offered:
            continue
        if need.kind == "endpoint":
            offered[need.offering] = _service_zones(ec2, need.offering, ids)
        else:
            offered[need.offering] = _instance_zones(rds, resources[need.resource], ids)
    return [need for need in needs_ if need.zone_id not in offered[need.offering]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make zones", description=__doc__.split("\n")[0])
    parser.add_argument("--env", choices=["dev", "prod"], required=True)
    args = parser.parse_args(argv)
    # The translator counts its own use in metrics nobody publishes here, and says so.
    logging.getLogger("samtranslator").setLevel(logging.ERROR)

    def command() -> int:
        parameters = {"Environment": args.env, **parameter_overrides(args.env)}
        unset = [name for name in ZONE_PARAMETERS if not parameters.get(name)]
        if unset:
            raise ZonesNotChosen(
                f"samconfig.toml's {args.env} parameter_overrides lack {', '.join(unset)}:"
                " choose two zone IDs (docs/operating-in-aws.md, 'Before a first deploy')"
            )
        region = boto3.session.Session().region_name
        if not region:
            raise cli.AwsNotConfigured("no AWS region: set AWS_REGION or your profile's region")
        os.environ.setdefault("AWS_DEFAULT_REGION", region)
        resources = evaluated(translate(load_template(), parameters), parameters)["Resources"]
        wanted = needs(resources, region)
        with cli.aws_errors(f"the zones of {region}"):
            gaps = lacking(wanted, resources, boto3.client("ec2"), boto3.client("rds"))
        if gaps:
            raise cli.ZonesLacking(
                "; ".join(f"{g.zone_id} does not offer {g.offering} ({g.resource})" for g in gaps)
                + ": choose other zones in samconfig.toml (docs/operating-in-aws.md,"
                " 'Before a first deploy')"
            )
        chosen = ", ".join(parameters[name] for name in ZONE_PARAMETERS)
        print(f"{chosen} offer all {len(wanted)} things the {args.env} stack puts in them")
        return 0

    return cli.run(parser.prog, command)


if __name__ == "__main__":
    sys.exit(main())
