"""The runtime's own suite: its template reading, and a second, small template run end to end."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from local_runtime.runtime import Runtime, RuntimeConfig
from local_runtime.sqs import sqs_client
from tests.support import scratch_database

SAMPLE = Path(__file__).parent / "sample"


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, list[str]], bytes]:
    request = urllib.request.Request(  # noqa: S310 - the runtime on loopback
        url, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            status, raw_headers, data = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, raw_headers, data = error.code, error.headers, error.read()
    collected: dict[str, list[str]] = {}
    for name, value in raw_headers.items():
        collected.setdefault(name.lower(), []).append(value)
    return status, collected, data


def sample_settings(tmp_path: Path, **changes: Any) -> Path:
    """The sample's settings file, with top-level sections deep-merged from `changes`."""
    settings = json.loads((SAMPLE / "settings.json").read_text())
    for key, value in changes.items():
        settings[key] = _merge(settings.get(key, {}), value)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    return path


def _merge(base: Any, change: Any) -> Any:
    if isinstance(base, dict) and isinstance(change, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in change.items()}}
    return change


def sample_runtime(state_dir: Path, settings: Path, database_url: str, **config: Any) -> Runtime:
    """The sample on `database_url`, where local_queue keeps its queues (the runtime would
    start an embedded PostgreSQL, which cannot run from pytest's folders as root)."""
    return Runtime(
        RuntimeConfig(
            template=SAMPLE / "template.yaml",
            settings=settings,
            state_dir=state_dir,
            port=0,
            database_url=database_url,
            **config,
        )
    )


@contextmanager
def running(
    template_folder: Path, state_root: Path, database_url: str, **config: Any
) -> Iterator[Runtime]:
    """A template folder's template.yaml and settings.json, started on `database_url`
    (local_queue's), and stopped when the block ends."""
    settings = config.pop("settings", template_folder / "settings.json")
    runtime = Runtime(
        RuntimeConfig(
            template=template_folder / "template.yaml",
            settings=settings,
            state_dir=state_root / "state",
            port=0,
            database_url=database_url,
            **{"drain_seconds": 1, **config},
        )
    ).start()
    try:
        yield runtime
    finally:
        runtime.stop()


def received(runtime: Runtime, queue: str) -> list[dict]:
    """What one receive of a template's queue gets (attributes included), left on it."""
    client = sqs_client(runtime.sqs_url, "us-east-1")
    return client.receive_message(
        QueueUrl=runtime.queue_urls[queue],
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", [])


class CollectedLogs(logging.Handler):
    """The messages of a logger's records, kept for a test to read."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def collected_logs(name: str) -> Iterator[CollectedLogs]:
    """INFO and above of logger `name` (and the loggers under it) while the block runs."""
    collected = CollectedLogs()
    logger = logging.getLogger(name)
    logger.addHandler(collected)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield collected
    finally:
        logger.setLevel(level)
        logger.removeHandler(collected)


@pytest.fixture
def queue_database(postgres_server_url: str) -> Iterator[str]:
    """A database of the test's own for local_queue: its queues start empty."""
    with scratch_database(postgres_server_url, "queues") as url:
        yield url


@pytest.fixture(scope="module")
def module_queue_database(postgres_server_url: str) -> Iterator[str]:
    with scratch_database(postgres_server_url, "queues") as url:
        yield url


@pytest.fixture(scope="module")
def sample(
    tmp_path_factory: pytest.TempPathFactory, module_queue_database: str
) -> Iterator[Runtime]:
    """The sample template running, shared by a module's tests."""
    tmp = tmp_path_factory.mktemp("sample")
    runtime = sample_runtime(
        tmp / "state", sample_settings(tmp), module_queue_database, drain_seconds=1
    )
    runtime.start()
    yield runtime
    runtime.stop()
