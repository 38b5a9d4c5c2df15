"""The template as CloudFormation will see it, and the commands that check it.

Helpers for the infra suite; conftest.py turns them into fixtures.

Assertions run on the template translated by aws-sam-translator (what `sam deploy`
submits), so they see the roles, event source mappings and API that the
AWS::Serverless resources expand into, never the YAML text.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from toolkit.cloudformation import load_template, translate

__all__ = ["load_template", "translate"]

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


def tools_bin() -> Path:
    """Where `make tools` put sam and checkov (SLUICE_TOOLS_BIN overrides)."""
    return Path(os.environ.get("SLUICE_TOOLS_BIN") or REPO_ROOT / ".venv-tools" / "bin")


def tool(name: str) -> str:
    path = tools_bin() / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make tools` (make test does)")
    return str(path)


def run_tool(*args: str, cwd: Path = REPO_ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    # Tests point boto3 at moto; the commands must not inherit that.
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS"):
        env.pop(name, None)
    return subprocess.run(  # noqa: S603 - fixed commands from the tools virtualenv
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def of_type(resources: dict[str, dict[str, Any]], type_: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == type_}


def referenced(value: Any) -> str:
    """The logical id behind a Ref or a GetAtt."""
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return target[0] if isinstance(target, list) else target.split(".")[0]
    raise AssertionError(f"not a reference to a resource: {value!r}")


def rule_holds(cfn: dict[str, Any], name: str, parameters: dict[str, Any]) -> bool:
    """Whether the template's rule `name` lets a deploy with these parameters through.

    CloudFormation compares parameter values as the strings the deployer typed; the
    parameters' defaults fill in the rest. Only the functions Sluice's rules use are
    known: anything else fails the test rather than guessing.
    """
    values = {
        key: str(spec["Default"])
        for key, spec in cfn.get("Parameters", {}).items()
        if "Default" in spec
    }
    values.update({key: str(value) for key, value in parameters.items()})

    def evaluate(node: Any) -> Any:
        if not isinstance(node, dict):
            return [evaluate(n) for n in node] if isinstance(node, list) else node
        ((function, argument),) = node.items()
        if function == "Ref":
            return values[argument]
        if function == "Fn::Equals":
            left, right = (evaluate(a) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not evaluate(argument[0])
        if function == "Fn::And":
            return all(evaluate(a) for a in argument)
        if function == "Fn::Contains":
            choices, value = (evaluate(a) for a in argument)
            return str(value) in [str(c) for c in choices]
        raise AssertionError(f"rule function {function} is not evaluated here")

    rule = cfn["Rules"][name]
    if "RuleCondition" in rule and not evaluate(rule["RuleCondition"]):
        return True
    return all(evaluate(a["Assert"]) for a in rule["Assertions"])


def resolve(node: Any, values: dict[str, str]) -> Any:
    """A template value with its Ref, Fn::Sub, Fn::Join, Fn::Select and Fn::Split worked out.

    `values` holds the parameters and pseudo parameters it names (AWS::StackId...), so a
    test can see the name CloudFormation would give. Any other function fails the test.
    """
    if isinstance(node, list):
        return [resolve(n, values) for n in node]
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()
    if function == "Ref":
        return values[argument]
    if function == "Fn::Join":
        separator, parts = argument
        return separator.join(resolve(parts, values))
    if function == "Fn::Select":
        index, items = argument
        return resolve(items, values)[int(index)]
    if function == "Fn::Split":
        separator, text = argument
        return resolve(text, values).split(separator)
    if function == "Fn::Sub":
        text, names = (argument, {}) if isinstance(argument, str) else argument
        known = {**values, **{k: resolve(v, values) for k, v in names.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: known[m.group(1)], text)
    raise AssertionError(f"{function} is not resolved here")
