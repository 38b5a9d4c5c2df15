"""The local stack keeps its promises: helpers that die come back, and health says so."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.runtime import Runtime, RuntimeConfig
from tests.e2e.conftest import REPO_ROOT, settings_file
from tests.local_runtime.conftest import http
from tests.support import scratch_database, wait_for


@pytest.fixture(scope="module")
def stack(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Sluice's template as make dev runs it (its setup hook too), on a database of its own."""
    folder = tmp_path_factory.mktemp("local_stack")
    with scratch_database(postgres_server_url, "local_stack") as database_url:
        runtime = Runtime(
            RuntimeConfig(
                template=REPO_ROOT / "template.yaml",
                settings=settings_file(folder),
                state_dir=folder / "state",
                port=0,
                database_url=database_url,
                drain_seconds=1,
            )
        ).start()
        try:
            yield runtime
        finally:
            runtime.stop()


def _demo(runtime: Runtime) -> tuple[str, str]:
    saved = json.loads((runtime.state_dir / "demo-app.json").read_text())
    return saved["app_id"], saved["key"]


def _send(runtime: Runtime, app_id: str, key: str) -> int:
    status, _, _ = http(
        "POST",
        f"{runtime.api_url}/api/logs/{app_id}",
        json.dumps({"eventName": "user_login", "userId": 1}).encode(),
        {"X-Api-Key": key, "Content-Type": "application/json"},
    )
    return status


def _child(module: str) -> int:
    """The pid of this process's child running `python -m <module>`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"-m" in command and module.encode() in command:
            return int(entry.name)
    raise AssertionError(f"no child process runs {module}")


def _health(runtime: Runtime) -> tuple[int, dict]:
    status, _, body = http("GET", runtime.api_url + "/_local/health")
    return status, json.loads(body)


def test_health_names_each_helper(stack):
    status, body = _health(stack)

    assert (status, body) == (200, {"status": "ok", "helpers": {"moto": "ok", "local_queue": "ok"}})


def test_a_killed_local_queue_is_started_again_and_health_tells_the_truth_meanwhile(
    stack, caplog: pytest.LogCaptureFixture
):
    # Given a stack that takes events
    app_id, key = _demo(stack)
    assert _send(stack, app_id, key) == 202
    url = stack.sqs_endpoint_url

    # When local_queue is killed outright
    with caplog.at_level(logging.WARNING, logger="local_runtime"):
        os.kill(_child("local_queue"), signal.SIGKILL)
        # Then health says so while it is down (the restart takes a process start)
        status, body = _health(stack)
        assert status == 503, body
        assert body["status"] == "degraded"
        assert body["helpers"]["local_queue"] in {"restarting", "not answering"}

        # And it comes back at the same address: sends succeed and health is ok again
        wait_for(lambda: _send(stack, app_id, key) == 202, timeout=60)
        assert wait_for(lambda: _health(stack)[0] == 200, timeout=30)
    assert stack.sqs_endpoint_url == url
    log = caplog.text
    assert f"local_queue exited (status -9): starting it again at {url}" in log
    assert f"local_queue restarted at {url}" in log


def test_health_probes_the_helpers_instead_of_trusting_their_processes(stack):
    # A helper whose process lives but no longer answers is reported, not assumed
    helper = next(h for h in stack.helpers if h.name == "moto")
    probe = helper.probe

    def refused() -> None:
        raise ConnectionRefusedError("nothing listens")

    helper.probe = refused
    try:
        status, body = _health(stack)
    finally:
        helper.probe = probe

    assert status == 503
    assert body["helpers"]["moto"] == "not answering"
