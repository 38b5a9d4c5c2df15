"""`make test` fails on what the linters and the type checker find (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


# .pre-commit-config.yaml runs these two as well (tests/unit/test_repository.py).
RUFF_CHECKS = {
    # RUF100 too: a noqa that silences nothing (or an unselected rule) is noise
    "ruff-check": ["ruff", "check", "--extend-select", "RUF100", "."],
    "ruff-format": ["ruff", "format", "--check", "."],
}


@pytest.mark.parametrize(
    "command",
    [
        *RUFF_CHECKS.values(),
        ["mypy"],  # layers/ and functions/ ([tool.mypy] files)
    ],
    ids=[*RUFF_CHECKS, "mypy"],
)
def test_the_code_passes(command):
    done = subprocess.run(  # noqa: S603 - tools of this virtualenv
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
