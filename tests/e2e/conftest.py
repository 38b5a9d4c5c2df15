"""Sluice end to end: template.yaml on the local runtime, real HTTP, moto's SQS, PostgreSQL.

The runtime uses the session's test database (DATABASE_URL) and local-env.json,
with shorter retries than `make dev` so a poison message reaches the DLQ in seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from local_runtime.runtime import Runtime, RuntimeConfig

REPO_ROOT = Path(__file__).resolve().parents[2]

# On top of local-env.json: retries every 2 s, two receives before the DLQ,
# no batching window (each test waits for its own rows); a cheap scrypt and a looser
# mail limit so a whole flow fits in a minute (tests/e2e/test_accounts.py).
TEST_SETTINGS = {
    # The aggregate schedule fires every few seconds, so a test sees it fire by itself.
    # Ingest follows a change within IngestCacheSeconds; tests/e2e/test_manage.py waits for it.
    "Parameters": {
        "StoreBatchingWindowSeconds": 0,
        "AggregateSchedule": "rate(3 seconds)",
        "IngestCacheSeconds": 1,
    },
    # A retry every 2 s: the store's timeout is shortened to match, since AWS (and the
    # local runtime) refuse a trigger whose queue hides a message for less than it.
    "Resources": {
        "StoreFunction": {"Timeout": 2},
        "EventsQueue": {"VisibilityTimeout": 2, "RedrivePolicy": {"maxReceiveCount": 2}},
    },
    "Environment": {
        "AccountsFunction": {
            "PASSWORD_SCRYPT_N": "1024",
            "EMAIL_SENDS_PER_MINUTE": "5",
            "EMAIL_SENDS_PER_HOUR": "50",
            # Every request comes from 127.0.0.1: the suite's passwords share one source.
            "PASSWORDS_PER_SOURCE_PER_MINUTE": "1000",
            "PASSWORDS_PER_SOURCE_PER_HOUR": "10000",
        },
    },
}


def settings_file(folder: Path) -> Path:
    settings = json.loads((REPO_ROOT / "local-env.json").read_text())
    settings["Parameters"] = {**settings.get("Parameters", {}), **TEST_SETTINGS["Parameters"]}
    for name, override in TEST_SETTINGS["Resources"].items():
        settings["Resources"][name] = {**settings["Resources"].get(name, {}), **override}
    for name, variables in TEST_SETTINGS["Environment"].items():
        settings["Environment"][name] = {**settings["Environment"].get(name, {}), **variables}
    path = folder / "local-env.json"
    path.write_text(json.dumps(settings))
    return path


@contextmanager
def running_stack(database_url: str, folder: Path) -> Iterator[Runtime]:
    """The template as make dev runs it (its setup hook too), with TEST_SETTINGS, state in
    `folder`, on `database_url`."""
    runtime = Runtime(
        RuntimeConfig(
            template=REPO_ROOT / "template.yaml",
            settings=settings_file(folder),
            state_dir=folder / "state",
            port=0,
            database_url=database_url,
            drain_seconds=1,
            # One cache of the layer's requirements for the session's stacks (folder is
            # in pytest's temporary root): installed by the first, found by the others.
            deps_dir=folder.parent / "deps-cache",
        )
    ).start()
    try:
        yield runtime
    finally:
        runtime.stop()


@pytest.fixture(scope="module")
def sluice(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    with running_stack(database_url, tmp_path_factory.mktemp("sluice")) as runtime:
        yield runtime
