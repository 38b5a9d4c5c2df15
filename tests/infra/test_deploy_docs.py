"""docs/operating-in-aws.md's deploy sections against the template they describe, and
`make deploy`'s refusal of an environment that does not exist.

What the docs list (functions, interface endpoints, routes, alarms) and the services the
zone check asks for are read from the translated template, so a resource added there
and not here fails a test instead of leaving the docs a deploy behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra.stack import REPO_ROOT, of_type
from tests.observability import alarms

DOCS = REPO_ROOT / "docs" / "operating-in-aws.md"

NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen".split()  # noqa: E501

# How the docs name each interface endpoint's service; a new endpoint needs a name here.
SERVICE_NAMES = {"sqs": "SQS", "secretsmanager": "Secrets Manager", "email": "SES"}


@pytest.fixture(scope="module")
def operating_docs() -> str:
    return DOCS.read_text()


def section(text: str, heading: str) -> str:
    """From `heading` (a whole heading line) to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(f"\n{heading}\n")
    ends = [
        match.start()
        for match in re.finditer(rf"\n(#{{1,{level}}}) ", text)
        if match.start() > start
    ]
    return text[start : min(ends, default=len(text))]


def table_row(text: str, piece: str) -> str:
    """The row of the "What is created" table whose first cell is `piece`."""
    [row] = [line for line in text.splitlines() if line.startswith(f"| {piece} |")]
    return row


def interface_services(resources: dict[str, dict[str, Any]]) -> set[str]:
    """The services of the interface endpoints: `sqs` for com.amazonaws.<region>.sqs."""
    return {
        endpoint["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
        for endpoint in of_type(resources, "AWS::EC2::VPCEndpoint").values()
        if endpoint["Properties"]["VpcEndpointType"] == "Interface"
    }


def created(operating_docs: str) -> str:
    return section(operating_docs, "### What is created")


# --- the zone check (item 4) --------------------------------------------------------


def test_the_zone_check_asks_for_every_interface_endpoints_service(resources, operating_docs):
    """A zone without one of the endpoints' services fails the deploy half-way."""
    checklist = section(operating_docs, "### Before a first deploy")
    services = interface_services(resources)
    assert services >= {"sqs", "secretsmanager", "email"}
    for service in services:
        assert f"com.amazonaws.$AWS_REGION.{service}" in checklist, service


def test_the_zone_parameters_name_every_service_a_zone_must_offer(cfn, resources):
    for parameter in ("PrivateSubnetAZoneId", "PrivateSubnetBZoneId"):
        description = cfn["Parameters"][parameter]["Description"]
        for service in interface_services(resources):
            assert re.search(rf"\.{service}\b", description), (parameter, service)


# --- what is created ----------------------------------------------------------------


def test_what_is_created_names_every_function(resources, operating_docs):
    functions = of_type(resources, "AWS::Lambda::Function")
    row = table_row(created(operating_docs), "Lambda")
    assert f"{NUMBER_WORDS[len(functions)]} functions" in row
    for name in functions:
        assert f"`{name.removesuffix('Function').lower()}`" in row, name


def test_what_is_created_names_every_interface_endpoint(resources, operating_docs):
    services = interface_services(resources)
    row = table_row(created(operating_docs), "network")
    assert f"{NUMBER_WORDS[len(services)]} interface endpoints" in row
    for service in services:
        assert SERVICE_NAMES[service] in row, service


def documented_paths(row: str) -> list[str]:
    return re.findall(r"`(?:[A-Z]+ )?(/[^`]*)`", row)


def covers(documented: str, path: str) -> bool:
    """`/api/apps/*` covers every path under /api/apps; other paths are literal."""
    if documented.endswith("/*"):
        return path.startswith(documented[:-1]) or path == documented[:-2]
    return documented == path


def test_the_http_api_row_covers_every_route(resources, operating_docs):
    [api] = of_type(resources, "AWS::ApiGatewayV2::Api").values()
    routes = set(api["Properties"]["Body"]["paths"])
    documented = documented_paths(table_row(created(operating_docs), "HTTP API"))
    for path in routes:
        assert any(covers(d, path) for d in documented), f"the HTTP API row misses {path}"
    for d in documented:
        assert any(covers(d, path) for path in routes), f"the HTTP API row names {d}: no route"


def test_what_is_created_counts_the_alarms(resources, operating_docs):
    row = table_row(created(operating_docs), "dashboard and alarms")
    assert f"{NUMBER_WORDS[len(alarms(resources))]} alarms" in row


def test_the_docs_no_longer_say_apps_cannot_be_made_on_aws(operating_docs):
    assert "Not there yet" not in operating_docs
    assert "cannot be\ncreated on a deployed stack" not in operating_docs


# --- make deploy's environment check ------------------------------------------------


def test_make_deploy_refuses_an_unknown_environment_before_installing_anything(tmp_path):
    """`make deploy ENV=staging` (a typo: dev and prod exist) stops before `make tools`."""
    # Given the Makefile and its inputs in a scratch folder, and a Python that only
    # records that make started an install with it
    for name in ("Makefile", "requirements-tools.lock", "requirements-dev.lock", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    installs = tmp_path / "installs"
    python = tmp_path / "python3"
    python.write_text(f'#!/bin/sh\necho "$@" >> {installs}\nexit 1\n')
    python.chmod(0o755)
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "ENV"}
    }

    # When a deploy names an environment samconfig.toml does not have
    result = subprocess.run(  # noqa: S603 - make, with fixed arguments
        [shutil.which("make") or "make", "deploy", "ENV=staging", f"PYTHON={python}"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it fails, says why, and never started the tools' install
    assert result.returncode != 0
    assert "ENV must be dev or prod" in result.stderr
    assert not installs.exists(), installs.read_text()
    assert not (tmp_path / ".venv-tools").exists()
    assert not Path(tmp_path / ".venv").exists()


def test_the_deploy_section_names_every_output(cfn, operating_docs):
    deploying = section(operating_docs, "## Deploying to AWS").split("### ", 1)[0]
    for output in cfn["Outputs"]:
        assert f"`{output}`" in deploying, output
