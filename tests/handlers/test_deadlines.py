"""The handlers against AWS endpoints that hang: each gives up in time and says so.

Each function is built by its own composition root from the environment, as in
Lambda, with AWS_ENDPOINT_URL_<SERVICE> pointing one service at a real socket that
takes connections and never answers. The timeouts are set small through the same
settings the template sets; `answered_within` stands for the Lambda timeout.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sluice.core.db import INSTANT_FAILURE_SECONDS
from sluice.queued_events import QueuedEvent, pack, serialize_event

import functions.accounts.app as accounts_app
import functions.email.app as email_app
import functions.ingest.app as ingest_app
import functions.store.app as store_app
from tests.handlers.conftest import SENDER, TEST_SCRYPT_N
from tests.support import HangingEndpoint, answered_within, drain, http_event, make_app, sqs_event

# What stands for the Lambda timeout: 10 s, ingest's and accounts'. The settings below
# make the worst case about a second.
LAMBDA_TIMEOUT = 10
SHORT_DEADLINES = {
    "AWS_CONNECT_TIMEOUT_SECONDS": "0.2",
    "AWS_READ_TIMEOUT_SECONDS": "0.3",
    "AWS_MAX_ATTEMPTS": "1",
}


def _events_message() -> str:
    """A queued message holding one valid event, as ingest sends it."""
    now = datetime.now(UTC)
    event = QueuedEvent(
        event_id=uuid.uuid4(),
        app_id="app_x",
        event_name="x",
        payload='{"eventName": "x"}',
        status="valid",
        validation_errors=None,
        message_id=None,
        client_timestamp=None,
        sent_at=None,
        occurred_at=now,
        received_at=now,
    )
    [(body, _)] = pack([serialize_event(event)])
    return body.decode()


@pytest.fixture
def hanging():
    endpoint = HangingEndpoint(accept=True)
    yield endpoint
    endpoint.close()


@pytest.fixture
def environment(monkeypatch):
    """Sets a function's environment; its composition roots start afresh and end so."""
    roots = (ingest_app.ingestor, store_app.database, accounts_app.accounts, email_app.mailer)
    for root in roots:
        root.cache_clear()  # type: ignore[attr-defined]

    def set_env(**variables: str) -> None:
        for name, value in {**SHORT_DEADLINES, **variables}.items():
            monkeypatch.setenv(name, value)

    yield set_env
    for root in roots:
        root.cache_clear()


def test_ingest_answers_503_when_sqs_never_answers(db, database_url, hanging, environment, context):
    # Given ingest whose events queue is at an endpoint that never answers
    app_id, key = make_app(db)
    environment(
        EVENTS_QUEUE_URL=f"{hanging.url}/123456789012/events",
        DATABASE_URL=database_url,
        DB_USER="sluice_ingest",
        AWS_ENDPOINT_URL_SQS=hanging.url,
    )
    event = http_event(f"/api/logs/{app_id}", {"eventName": "x"}, headers={"x-api-key": key})

    # When an event is sent
    response = answered_within(LAMBDA_TIMEOUT, lambda: ingest_app.handler(event, context))

    # Then ingest answers its own 503 (no Retry-After: the client's SDK backs off), in time
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "queue_unavailable"
    assert hanging.connections == 1


def test_ingest_tries_an_unreachable_queue_once_per_request_not_once_per_call(
    db, database_url, hanging, environment, context
):
    # Given a batch that takes three SendMessageBatch calls (ten 60 KiB messages)
    app_id, key = make_app(db)
    environment(
        EVENTS_QUEUE_URL=f"{hanging.url}/123456789012/events",
        DATABASE_URL=database_url,
        DB_USER="sluice_ingest",
        AWS_ENDPOINT_URL_SQS=hanging.url,
    )
    events = [{"eventName": "x", "properties": {"pad": "p" * 20_000}} for _ in range(30)]
    event = http_event(f"/api/logs/{app_id}/batch", events, headers={"x-api-key": key})

    response = answered_within(LAMBDA_TIMEOUT, lambda: ingest_app.handler(event, context))

    # Then the first call that timed out ends the sending: every event failed, one wait
    body = json.loads(response["body"])
    assert (response["statusCode"], body["failed"]) == (503, 30)
    assert hanging.connections == 1


def test_accounts_answers_503_when_the_email_queue_never_answers(
    db, database_url, hanging, environment, context
):
    environment(
        EMAIL_QUEUE_URL=f"{hanging.url}/123456789012/email",
        DATABASE_URL=database_url,
        DB_USER="sluice_accounts",
        PASSWORD_SCRYPT_N=TEST_SCRYPT_N,
        AWS_ENDPOINT_URL_SQS=hanging.url,
    )
    event = http_event(
        "/api/accounts/register",
        {"email": "new@example.com", "password": "tidal-Orbit-93-quince"},
    )

    response = answered_within(LAMBDA_TIMEOUT, lambda: accounts_app.handler(event, context))

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"] == "queue_unavailable"
    assert hanging.connections == 1
    # The challenge was taken back: a retry is not refused as a second mail in a minute.
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM email_challenges")
        assert cur.fetchone() == (0,)


def test_email_returns_its_message_to_the_queue_when_ses_never_answers(
    db, sqs, email_queue, database_url, hanging, environment, context, monkeypatch
):
    # Given a registration's email request on the queue (the accounts flow, moto's SQS)
    environment(
        EMAIL_QUEUE_URL=email_queue,
        DATABASE_URL=database_url,
        DB_USER="sluice_accounts",
        PASSWORD_SCRYPT_N=TEST_SCRYPT_N,
    )
    register = http_event(
        "/api/accounts/register",
        {"email": "new@example.com", "password": "tidal-Orbit-93-quince"},
    )
    assert accounts_app.handler(register, context)["statusCode"] == 202
    event = sqs_event(drain(sqs, email_queue))
    # and the email function with SES at an endpoint that never answers
    environment(DB_USER="sluice_email", EMAIL_SENDER_ADDRESS=SENDER)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", hanging.url)

    result = answered_within(30, lambda: email_app.handler(event, context))

    # Then the message fails alone and comes back later: never lost
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert hanging.connections == 1


def test_store_returns_the_batch_when_secrets_manager_never_answers_and_waits_once(
    hanging, environment, context
):
    # Given store in AWS's shape (the proxy and its secret), Secrets Manager hanging
    environment(
        # Long enough to count as a wait, not a refusal (a refusal is not held).
        AWS_READ_TIMEOUT_SECONDS=str(INSTANT_FAILURE_SECONDS + 0.2),
        DB_SECRET_ARN="arn:aws:secretsmanager:us-east-1:123456789012:secret:store-AbCdEf",  # noqa: S106
        DB_HOST="127.0.0.1",
        DB_USER="sluice_store",
        AWS_ENDPOINT_URL_SECRETS_MANAGER=hanging.url,
    )
    event = sqs_event([_events_message(), _events_message()])
    every_message = [{"itemIdentifier": r["messageId"]} for r in event["Records"]]

    first = answered_within(30, lambda: store_app.handler(event, context))
    second = answered_within(30, lambda: store_app.handler(event, context))

    # Then every message goes back to the queue, and the second batch is not made to
    # wait for the same dead end: the database is held unavailable for a while.
    assert first == {"batchItemFailures": every_message}
    assert second == {"batchItemFailures": every_message}
    assert hanging.connections == 1
