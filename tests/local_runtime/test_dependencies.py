"""A function's dependencies as `sam build` resolves them (the fidelity/deps/ template).

These tests install a few old packages from the package index into the runtime's
cache (six, jmespath, boto3 1.26): the first run needs the index, later ones only
uv's cache.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local_runtime import deps
from local_runtime.runtime import Runtime, RuntimeConfig
from local_runtime.template import LocalValues, load
from tests.local_runtime.conftest import CollectedLogs, collected_logs, http
from tests.support import wait_for

DEPS = Path(__file__).parent / "fidelity" / "deps"
REPO_ROOT = Path(__file__).resolve().parents[2]

LOCAL = LocalValues(
    region="us-east-1",
    api_url="http://127.0.0.1:3000",
    aws_endpoint_url="http://127.0.0.1:5000",
    state_dir="/state",
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logs() -> Iterator[CollectedLogs]:
    """The runtime's lines and the handlers' (local_runtime.handler propagates to it)."""
    with collected_logs("local_runtime") as collected:
        yield collected


def deps_runtime(state_dir: Path, database_url: str) -> Runtime:
    return Runtime(
        RuntimeConfig(
            template=DEPS / "template.yaml",
            settings=DEPS / "settings.json",
            state_dir=state_dir,
            port=0,
            database_url=database_url,  # local_queue's
            drain_seconds=1,
        )
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory, logs, module_queue_database) -> Iterator[Runtime]:
    runtime = deps_runtime(tmp_path_factory.mktemp("deps") / "state", module_queue_database)
    runtime.start()
    yield runtime
    runtime.stop()


def invoke(runtime: Runtime, function: str, event: dict | None = None) -> dict:
    status, _, body = http(
        "POST",
        f"{runtime.api_url}/_local/invoke/{function}",
        json.dumps(event or {}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200
    return json.loads(body)


# ------------------------------------------------------------------ item 5


def test_a_functions_own_pin_wins_over_what_the_runtime_brings(stack):
    # six 1.17 comes with the runtime's boto3 (python-dateutil needs it); the function pins 1.16
    answer = invoke(stack, "PinnedFunction")

    assert answer["result"] == {"six": "1.16.0", "pytest": False}


def test_a_layer_built_by_sam_brings_its_requirements_and_its_code(stack):
    answer = invoke(stack, "LayeredFunction")

    assert answer["result"] == {"jmespath": "1.0.1", "greeting": "from the layer"}


def test_a_function_without_requirements_sees_the_runtimes_boto3_and_nothing_of_sluices(stack):
    modules = ["boto3", "botocore", "pytest", "moto", "psycopg2", "sluice", "local_runtime"]

    answer = invoke(stack, "PlainFunction", {"modules": modules})

    assert answer["result"]["boto3"] == boto3.__version__
    assert answer["result"]["found"] == {
        "boto3": True,
        "botocore": True,
        "pytest": False,
        "moto": False,
        "psycopg2": False,
        "sluice": False,
        "local_runtime": False,
    }


def test_the_resolution_is_shown_at_start(stack, logs):
    text = "\n".join(logs.messages)

    assert "deps  PinnedFunction: requirements.txt → 1 package (installed)" in text
    assert "deps  LayeredFunction: SharedLayer requirements.txt → 1 package (installed)" in text
    assert "deps  PlainFunction: no requirements.txt: the runtime's boto3 only" in text


def test_a_restart_finds_the_installed_packages_in_the_cache(tmp_path, logs, queue_database):
    state = tmp_path / "state"
    deps_runtime(state, queue_database).start().stop()
    installed = sorted(p.name for p in (state / "deps" / "PinnedFunction").iterdir())
    logs.messages.clear()

    # When the runtime starts again on the same state folder
    runtime = deps_runtime(state, queue_database).start()
    try:
        # Then nothing is installed again, and the start line says so
        assert sorted(p.name for p in (state / "deps" / "PinnedFunction").iterdir()) == installed
        text = "\n".join(logs.messages)
        assert "deps  PinnedFunction: requirements.txt → 1 package (cached)" in text
        assert "(installed)" not in text
        assert invoke(runtime, "PinnedFunction")["result"]["six"] == "1.16.0"
    finally:
        runtime.stop()


def test_sluices_functions_get_the_layers_lock_as_its_makefile_build_installs_it():
    template = load(REPO_ROOT / "template.yaml", REPO_ROOT / "local-env.json")

    found = deps.requirements_of(template, "IngestFunction")

    # BuildMethod makefile: the settings file names what build-SluiceLayer installs
    assert [(r.owner, r.file) for r in found] == [("SluiceLayer", REPO_ROOT / "requirements.lock")]


# ------------------------------------------------------------------ item 4


def test_an_old_bundled_botocore_is_named_at_start_with_what_to_do(stack, logs):
    text = "\n".join(logs.messages)

    assert (
        "OldBotoFunction: its botocore 1.29.165 (boto3 1.26.137, from requirements.txt)"
        " ignores AWS_ENDPOINT_URL" in text
    )
    assert "pin boto3>=1.28.0 (botocore>=1.31.0)" in text


def test_a_worker_cannot_reach_a_real_aws_endpoint(stack, logs):
    # Given a function whose old botocore sends to sqs.us-east-1.amazonaws.com
    answer = invoke(stack, "OldBotoFunction")

    # Then the call fails at once instead of reaching AWS, and the log says why
    assert "error" in answer
    assert "sqs.us-east-1.amazonaws.com" in json.dumps(answer["error"])
    wait_for(
        lambda: any(
            "refused a connection to sqs.us-east-1.amazonaws.com" in m for m in logs.messages
        )
    )


def test_an_explicit_aws_endpoint_is_refused_whatever_the_botocore(stack, logs):
    answer = invoke(stack, "PlainFunction", {"endpoint_url": "https://sts.amazonaws.com"})

    assert "sts.amazonaws.com" in json.dumps(answer["error"])
    wait_for(lambda: any("refused a connection to sts.amazonaws.com" in m for m in logs.messages))


def test_a_botocore_bundled_in_the_code_folder_is_named_too(tmp_path):
    # Given a function whose CodeUri holds boto3 and botocore, as `sam build` leaves them
    code = tmp_path / "bundled"
    for package, version in (("boto3", "1.26.137"), ("botocore", "1.29.165")):
        (code / package).mkdir(parents=True)
        (code / package / "__init__.py").write_text(f"__version__ = '{version}'\n")
    (code / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  BundledFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: bundled/, Handler: app.handler, Runtime: python3.11}\n"
    )
    template = load(tmp_path / "template.yaml")
    function = template.topology(LOCAL).functions["BundledFunction"]

    resolution = deps.resolve(template, function, tmp_path / "deps")

    assert resolution.summary == "no requirements.txt: the runtime's boto3 only"
    assert resolution.warning is not None
    assert resolution.warning.startswith(
        "BundledFunction: its botocore 1.29.165 (boto3 1.26.137, bundled in its CodeUri)"
    )


def test_a_current_botocore_is_not_named(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return None\n")
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  PlainFunction:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: code/, Handler: app.handler, Runtime: python3.11}\n"
    )
    template = load(tmp_path / "template.yaml")
    function = template.topology(LOCAL).functions["PlainFunction"]

    # the runtime's own boto3, which reads AWS_ENDPOINT_URL*
    assert deps.resolve(template, function, tmp_path / "deps").warning is None


def test_a_requirements_file_that_cannot_be_installed_stops_with_a_sentence(tmp_path):
    # (a line no installer can read: nothing is looked up in the index)
    file = tmp_path / "requirements.txt"
    file.write_text("this is not a requirement\n")

    with pytest.raises(deps.DependencyError, match=r"^BrokenFunction: installing requirements"):
        deps.install(deps.Requirements("BrokenFunction", file), tmp_path / "deps")
    # and nothing is left that a later start would take for a finished install
    assert list((tmp_path / "deps" / "BrokenFunction").iterdir()) == []
