"""Fixtures of the infra suite: the translated template and the tools that check it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.infra.stack import load_template, run_tool, tool, translate


@pytest.fixture(scope="session")
def sam_template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    """What CloudFormation receives for a dev stack (the parameters' defaults otherwise)."""
    return translate(sam_template, {"Environment": "dev"})


@pytest.fixture(scope="session")
def resources(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfn["Resources"]


@pytest.fixture(scope="session")
def checkov() -> str:
    return tool("checkov")


@pytest.fixture(scope="session")
def sam() -> str:
    return tool("sam")


@pytest.fixture(scope="session")
def sam_build(sam: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` into a temporary folder (the working tree's .aws-sam is left alone)."""
    build_dir = tmp_path_factory.mktemp("sam-build") / "build"
    result = run_tool(sam, "build", "--template", "template.yaml", "--build-dir", str(build_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    yield build_dir
    shutil.rmtree(build_dir, ignore_errors=True)
