"""Handler tests: the real handlers, the test database, moto's SQS and a manual clock."""

from __future__ import annotations

import pytest
from sluice.catalog import Catalog
from sluice.config import DatabaseSettings, IngestSettings
from sluice.db import Database
from sluice.ingest import Ingestor
from sluice.queue import EventQueue

import functions.ingest.app as ingest_app
import functions.store.app as store_app
from tests.support import RefusingSqs


class LambdaContext:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "request-id"


@pytest.fixture
def context():
    return LambdaContext()


@pytest.fixture
def ingest_settings(database_url, queues):
    return IngestSettings.from_env(
        {"EVENTS_QUEUE_URL": queues["events"], "DATABASE_URL": database_url}
    )


@pytest.fixture
def events_sqs(sqs):
    """moto's SQS behind a wrapper that can refuse entries or go down."""
    return RefusingSqs(sqs)


@pytest.fixture
def make_ingestor(ingest_settings, events_sqs, clock, monkeypatch):
    """Installs an Ingestor into the ingest handler; database_url overrides the settings'."""

    def install(database_url: str | None = None) -> Ingestor:
        settings = ingest_settings
        database = Database(DatabaseSettings(url=database_url or settings.database.url))
        ingestor = Ingestor(
            settings,
            Catalog(database, settings, clock),
            EventQueue(events_sqs, settings.events_queue_url),
            clock,
        )
        monkeypatch.setattr(ingest_app, "ingestor", lambda: ingestor)
        return ingestor

    return install


@pytest.fixture
def ingestor(make_ingestor):
    return make_ingestor()


@pytest.fixture
def store_database(database_url, monkeypatch):
    """The store handler's connection, pointed at the test database."""
    database = Database(DatabaseSettings(url=database_url))
    monkeypatch.setattr(store_app, "database", lambda: database)
    yield database
    database.close()
