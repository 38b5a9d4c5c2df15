"""Edited code is picked up: a warm worker is replaced when its function's files change."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.runtime import Runtime, RuntimeConfig
from tests.local_runtime.conftest import CollectedLogs, collected_logs, http
from tests.support import wait_for

RELOAD = Path(__file__).parent / "fidelity" / "reload"


@pytest.fixture
def logs() -> Iterator[CollectedLogs]:
    with collected_logs("local_runtime") as collected:
        yield collected


@pytest.fixture
def edited(tmp_path, logs) -> Iterator[tuple[Runtime, Path]]:
    """The reload/ template copied, so a test can edit its code; running."""
    folder = tmp_path / "reload"
    shutil.copytree(RELOAD, folder)
    runtime = Runtime(
        RuntimeConfig(
            template=folder / "template.yaml",
            settings=folder / "settings.json",
            state_dir=tmp_path / "state",
            port=0,
        )
    ).start()
    yield runtime, folder
    runtime.stop()


def _version(runtime: Runtime) -> str | None:
    status, _, body = http(
        "POST",
        f"{runtime.api_url}/_local/invoke/EditedFunction",
        b"{}",
        {"Content-Type": "application/json"},
    )
    assert status == 200
    return json.loads(body).get("result", {}).get("version")


def _edit(path: Path, text: str) -> None:
    path.write_text(text)
    # A later mtime even on a file system whose clock ticks coarsely
    later = time.time() + 2
    os.utime(path, (later, later))


def test_a_warm_function_runs_the_edited_module_after_a_change(edited, logs):
    runtime, folder = edited
    assert _version(runtime) == "first"  # imported now; the worker stays warm

    # When a module the handler imports changes
    _edit(folder / "code" / "version.py", 'VERSION = "second"\n')

    # Then a later invocation runs the new code, and the log says the workers were replaced
    wait_for(lambda: _version(runtime) == "second")
    assert any("reloading EditedFunction: code/version.py changed" in m for m in logs.messages), (
        logs.messages
    )


def test_a_new_file_in_the_code_folder_is_picked_up_too(edited):
    runtime, folder = edited
    assert _version(runtime) == "first"

    (folder / "code" / "other.py").write_text('VERSION = "third"\n')
    _edit(
        folder / "code" / "app.py",
        "import other\n\n\ndef handler(event, context):\n    return {'version': other.VERSION}\n",
    )

    wait_for(lambda: _version(runtime) == "third")


def test_a_requirements_file_added_while_running_is_installed_for_the_new_workers(edited, logs):
    runtime, folder = edited
    assert _version(runtime) == "first"

    # When the function gains a requirements file and code that needs it
    (folder / "code" / "requirements.txt").write_text("six==1.16.0\n")
    _edit(
        folder / "code" / "app.py",
        "import six\n\n\ndef handler(event, context):\n    return {'version': six.__version__}\n",
    )

    # Then the package is installed and the new workers import it
    wait_for(lambda: _version(runtime) == "1.16.0", timeout=60)
    assert any("deps  EditedFunction: requirements.txt → 1 package" in m for m in logs.messages), (
        logs.messages
    )
