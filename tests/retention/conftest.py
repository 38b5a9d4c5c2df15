"""Retention: the session's database with no day partitions, moto's S3 for the archive."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import psycopg2
import pytest
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.retention.archive import ArchiveBucket

from tests.aggregate.conftest import reset

BUCKET = "sluice-archive-test"


def drop_day_partitions(conn) -> None:
    """As after the migration on a server whose clock is far from the tests' days."""
    with conn.cursor() as cur:
        cur.execute("SELECT relname FROM pg_class WHERE relname ~ '^events_p[0-9]{8}$'")
        for (name,) in cur.fetchall():
            cur.execute(f'DROP TABLE "{name}"')  # a name the pattern above allowed


@pytest.fixture
def db(db) -> Iterator[psycopg2.extensions.connection]:
    """The emptied test database (tests/conftest.py), with no day partitions or rollups either."""
    drop_day_partitions(db)
    reset(db)
    yield db
    drop_day_partitions(db)


@pytest.fixture
def maintainer(database_url: str) -> Iterator[Database]:
    """The maintain function's connection: its own role, as in AWS."""
    database = Database(DatabaseSettings(url=database_url, user="sluice_maintain"))
    yield database
    database.close()


@pytest.fixture
def storer(database_url: str) -> Iterator[Database]:
    database = Database(DatabaseSettings(url=database_url, user="sluice_store"))
    yield database
    database.close()


@pytest.fixture
def bucket(aws) -> ArchiveBucket:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return ArchiveBucket(s3, BUCKET)
