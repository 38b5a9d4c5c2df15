"""The two SQS endpoints the scenarios run against: moto (in-process) and local_queue.

local_queue gets a database of its own on the session's PostgreSQL and one server
for the session; every test makes queues with names of its own, so tests never see
each other's messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import boto3
import pytest
from botocore.config import Config

from local_queue import QueueServer
from tests.support import scratch_database


@pytest.fixture(scope="session")
def queue_database_url(postgres_server_url: str) -> Iterator[str]:
    with scratch_database(postgres_server_url, "local_queue_test") as url:
        yield url


@pytest.fixture(scope="session")
def queue_server(queue_database_url: str) -> Iterator[QueueServer]:
    server = QueueServer(queue_database_url).start()
    yield server
    server.stop()


def local_client(endpoint_url: str):
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local server checks no signature
        config=Config(retries={"mode": "standard", "max_attempts": 2}, max_pool_connections=20),
    )


@pytest.fixture(params=["moto", "local_queue"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def sqs(backend: str, request) -> Iterator:
    """A boto3 SQS client for the backend under test (shadows the suite-wide moto one)."""
    if backend == "moto":
        from moto import mock_aws

        with mock_aws():
            yield boto3.client("sqs", region_name="us-east-1")
    else:
        server = request.getfixturevalue("queue_server")
        yield local_client(server.endpoint_url)


@pytest.fixture
def make_queue(sqs) -> Callable[..., str]:
    """Creates a queue with a name no other test uses; returns its URL."""

    def make(prefix: str = "q", **attributes: object) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        return sqs.create_queue(
            QueueName=name, Attributes={k: str(v) for k, v in attributes.items()}
        )["QueueUrl"]

    return make
