"""template.yaml as CloudFormation receives it: translated by aws-sam-translator (what
`sam deploy` submits), and with one environment's conditions applied.

The infra tests assert on the translation; `python -m tools.costs` counts what an
environment pays for in it. Both read the template with the translator's own loader.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"

# Policy templates and the VPC/X-Ray roles SAM attaches name AWS managed policies;
# the translator only needs their ARNs, which are public and stable.
MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for name, path in {
        "AWSLambdaBasicExecutionRole": "service-role/",
        "AWSLambdaVPCAccessExecutionRole": "service-role/",
        "AWSXrayWriteOnlyAccess": "",
        "AWSXRayDaemonWriteAccess": "",
    }.items()
}


class _PolicyLoader:
    def load(self) -> dict[str, str]:
        return MANAGED_POLICIES


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml_parse(path.read_text())


def _with_s3_code(template: dict[str, Any]) -> dict[str, Any]:
    """Local CodeUri/ContentUri as `sam package` would rewrite them (the translator wants S3)."""
    packaged = copy.deepcopy(template)
    for name, resource in packaged["Resources"].items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://sluice-artifacts/{name}.zip"
    return packaged


def translate(template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template `sam deploy` would submit with these parameters."""
    return transform(_with_s3_code(template), parameters, _PolicyLoader())


_NO_VALUE = object()


def evaluated(cfn: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """`cfn` as one deploy with these parameters (the defaults otherwise) makes it.

    Resources whose condition is false are gone, each `Fn::If` is its chosen branch
    (`AWS::NoValue` drops the property) and each `Ref` to a parameter is its value, as
    the string CloudFormation compares; resource references and `Fn::Sub` stay as they are.
    """
    values = {
        name: str(spec["Default"])
        for name, spec in cfn.get("Parameters", {}).items()
        if "Default" in spec
    }
    values.update({name: str(value) for name, value in parameters.items()})
    definitions = cfn.get("Conditions", {})
    conditions: dict[str, bool] = {}

    def condition(name: str) -> bool:
        if name not in conditions:
            conditions[name] = bool(resolve(definitions[name]))
        return conditions[name]

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in map(resolve, node) if item is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Ref" and argument == "AWS::NoValue":
                return _NO_VALUE
            if function == "Ref" and argument in values:
                return values[argument]
            if function == "Fn::If":
                name, chosen, other = argument
                return resolve(chosen if condition(name) else other)
            if function == "Condition" and isinstance(argument, str):
                return condition(argument)
            if function == "Fn::Equals":
                left, right = (resolve(a) for a in argument)
                return str(left) == str(right)
            if function == "Fn::Not":
                return not resolve(argument[0])
            if function == "Fn::And":
                return all(resolve(a) for a in argument)
            if function == "Fn::Or":
                return any(resolve(a) for a in argument)
        resolved = {key: resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

    resources = {
        name: resolve(resource)
        for name, resource in cfn["Resources"].items()
        if "Condition" not in resource or condition(resource["Condition"])
    }
    return {**cfn, "Resources": resources}
