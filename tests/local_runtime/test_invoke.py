"""`python -m local_runtime invoke` (make invoke) runs each sample in events/ as make dev does."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from local_runtime.runtime import Runtime
from tests.e2e.conftest import REPO_ROOT, settings_file
from tests.local_runtime.conftest import running
from tests.local_runtime.test_fidelity import FIDELITY
from tests.support import EVENTS, ResponseCatcher, add_sample_app, sample, scratch_database

FUNCTION_FOR = {
    "ingest-event.json": "IngestFunction",
    "ingest-batch.json": "IngestFunction",
    "store-batch.json": "StoreFunction",
    "accounts-register.json": "AccountsFunction",
    "email-batch.json": "EmailFunction",
    "aggregate-schedule.json": "AggregateFunction",
    "manage-list-apps.json": "ManageFunction",
    "migrate-create.json": "MigrateFunction",
    "maintain-schedule.json": "MaintainFunction",
}


def invoke(
    function: str, event: dict, *options: str, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "local_runtime", "invoke", function, "--event", "-", *options],
        input=json.dumps(event),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
        check=False,
    )


def test_every_sample_event_has_a_function():
    assert sorted(FUNCTION_FOR) == sorted(p.name for p in EVENTS.glob("*.json"))


@pytest.fixture(scope="module")
def dev(postgres_server_url, tmp_path_factory) -> Iterator[tuple[Runtime, Path]]:
    """Sluice's template running as make dev runs it, on a database of its own."""
    folder = tmp_path_factory.mktemp("invoke")
    settings = settings_file(folder)
    with (
        scratch_database(postgres_server_url, "invoke") as database_url,
        running(REPO_ROOT, folder, database_url, settings=settings) as runtime,
    ):
        with psycopg2.connect(database_url) as conn:
            add_sample_app(conn)
        yield runtime, settings


@pytest.mark.parametrize("name", sorted(FUNCTION_FOR))
def test_each_sample_event_runs_against_the_running_stack(dev, name):
    runtime, settings = dev
    event = sample(name)
    catcher = ResponseCatcher() if name == "migrate-create.json" else None
    if catcher:
        event["ResponseURL"] = catcher.url
    try:
        done = invoke(
            FUNCTION_FOR[name],
            event,
            "--settings",
            str(settings),
            "--state-dir",
            str(runtime.state_dir),
        )
    finally:
        if catcher:
            catcher.close()

    assert done.returncode == 0, done.stderr
    assert "using make dev's stack" in done.stderr
    # sam local invoke's frame around the handler's logs, then the response on stdout
    start = re.search(r"^START RequestId: (\S+) Version: \$LATEST$", done.stderr, re.M)
    assert start, done.stderr
    assert f"END RequestId: {start.group(1)}" in done.stderr
    assert f"REPORT RequestId: {start.group(1)}\tDuration: " in done.stderr
    response = json.loads(done.stdout)
    assert not (isinstance(response, dict) and "errorType" in response), done.stderr
    if name == "ingest-event.json":
        # the event went to the running stack's queue, and its store function stored it
        assert response["statusCode"] == 202
    elif name == "store-batch.json":
        assert len(response["batchItemFailures"]) == 1  # the sample's poison message
    elif name == "email-batch.json":
        assert response == {"batchItemFailures": []}
    elif name == "migrate-create.json":
        assert catcher is not None and catcher.bodies[-1]["Status"] == "SUCCESS"
    elif isinstance(response, dict) and "statusCode" in response:
        assert response["statusCode"] < 500, response


def test_without_a_running_stack_it_starts_what_the_function_needs(dev_state):
    done = invoke(
        "InlineFunction",
        {"name": "solo"},
        "--template",
        str(FIDELITY / "template.yaml"),
        "--settings",
        str(FIDELITY / "settings.json"),
        "--state-dir",
        str(dev_state),
    )

    assert done.returncode == 0, done.stderr
    assert "make dev is not running" in done.stderr
    assert json.loads(done.stdout) == {"inline": True, "name": "solo"}
    assert re.search(r"^\[INFO\]\t\S+Z\t\S+\tinline handler got solo$", done.stderr, re.M)


def test_an_env_vars_file_sets_the_functions_variables(tmp_path, dev_state):
    variables = tmp_path / "env.json"
    variables.write_text(json.dumps({"CatchAllFunction": {"OUTPUT_DIR": "from-env-vars"}}))
    event = {"rawPath": "/x"}
    done = invoke(
        "CatchAllFunction",
        event,
        "--template",
        str(FIDELITY / "template.yaml"),
        "--settings",
        str(FIDELITY / "settings.json"),
        "--state-dir",
        str(dev_state),
        "--env-vars",
        str(variables),
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"]) == {"path": "/x", "output": "from-env-vars"}


def test_an_unknown_function_is_named_with_the_ones_there_are(tmp_path):
    done = invoke(
        "Nope",
        {},
        "--template",
        str(FIDELITY / "template.yaml"),
        "--state-dir",
        str(tmp_path / "state"),
    )

    assert done.returncode == 2
    assert "Nope is not a function of" in done.stderr and "InlineFunction" in done.stderr
