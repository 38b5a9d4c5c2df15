"""Handler tests: the real handlers, the test database, moto's SQS and a manual clock."""

from __future__ import annotations

import boto3
import pytest
from sluice.accounts.accounts import Accounts
from sluice.accounts.email_queue import EmailQueue
from sluice.core.config import AccountsSettings, DatabaseSettings, EmailSettings, IngestSettings
from sluice.core.db import Database
from sluice.email.mailer import Mailer
from sluice.intake.catalog import Catalog
from sluice.intake.event_ids import EventIds
from sluice.intake.ingest import Ingestor
from sluice.intake.queue import EventQueue

import functions.accounts.app as accounts_app
import functions.email.app as email_app
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
            EventIds(database).new,
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


# --- accounts and email -----------------------------------------------------------

SENDER = "no-reply@sluice.test"
# Cheap scrypt for tests (the hash records its parameters; production's are the default).
TEST_SCRYPT_N = "1024"


@pytest.fixture
def email_queue(sqs) -> str:
    return sqs.create_queue(QueueName="email", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]


@pytest.fixture
def accounts_settings(database_url, email_queue):
    return AccountsSettings.from_env(
        {
            "EMAIL_QUEUE_URL": email_queue,
            "DATABASE_URL": database_url,
            "DB_USER": "sluice_accounts",  # its own role, as the template sets it
            "PASSWORD_SCRYPT_N": TEST_SCRYPT_N,
        }
    )


@pytest.fixture
def accounts(accounts_settings, sqs, clock, monkeypatch) -> Accounts:
    """The accounts handler's service, on the test database, moto's SQS and the manual clock."""
    service = Accounts(
        accounts_settings,
        Database(accounts_settings.database),
        EmailQueue(sqs, accounts_settings.email_queue_url),
        clock,
    )
    monkeypatch.setattr(accounts_app, "accounts", lambda: service)
    yield service
    service.database.close()


@pytest.fixture
def ses(aws):
    """moto's SES (API v2) with the sender's identity verified, as SES requires."""
    client = boto3.client("sesv2")
    client.create_email_identity(EmailIdentity=SENDER)
    return client


@pytest.fixture
def make_mailer(database_url, ses, clock, monkeypatch):
    """Installs a Mailer into the email handler; `ses_client` wraps or replaces moto's."""

    def install(ses_client=None, sender: str = SENDER, **settings) -> Mailer:
        email_settings = EmailSettings(
            database=DatabaseSettings(url=database_url, user="sluice_email"),
            sender=sender,
            **settings,
        )
        mailer = Mailer(email_settings, Database(email_settings.database), ses_client or ses, clock)
        monkeypatch.setattr(email_app, "mailer", lambda: mailer)
        return mailer

    return install


@pytest.fixture
def mailer(make_mailer) -> Mailer:
    return make_mailer()


# --- management -------------------------------------------------------------------


@pytest.fixture
def manager(database_url, clock, monkeypatch):
    """The manage handler's service, on the test database and the manual clock."""
    from sluice.manage.manage import Manager

    import functions.manage.app as manage_app

    service = Manager(Database(DatabaseSettings(url=database_url)), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    yield service
    service.database.close()
