"""One id from request to row: ingest's and store's log lines, and the metrics they print."""

from __future__ import annotations

import io
import json

import orjson
import pytest
from sluice.core.observability import logger

import functions.ingest.app as ingest_app
from tests.handlers.test_store import failed_ids, store
from tests.support import LOGIN_RULE, drain, drain_events, http_event, make_app


class Printed:
    """What the handlers print: Powertools' log lines and its EMF metrics, both JSON."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        # The logger's handler keeps the stdout it found at import; metrics print().
        self.logs = io.StringIO()

    def lines(self) -> list[dict]:
        """Every JSON line printed since the last call."""
        text = self.logs.getvalue() + self.capsys.readouterr().out
        self.logs.seek(0)
        self.logs.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def printed(capsys):
    watcher = Printed(capsys)
    handler = logger.registered_handler
    previous, level = handler.setStream(watcher.logs), logger.log_level
    logger.setLevel("INFO")  # the suite runs at WARNING; these lines are INFO, as in Lambda
    try:
        yield watcher
    finally:
        handler.setStream(previous)
        logger.setLevel(level)


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"user_login": LOGIN_RULE})


def logged(lines: list[dict], message: str) -> list[dict]:
    return [line for line in lines if line.get("message") == message]


def emitted(lines: list[dict]) -> dict[str, float]:
    """Metric name -> value, from the EMF documents among `lines`."""
    values: dict[str, float] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]  # a list when added more than once
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_one_event_id_is_in_ingests_line_and_in_stores_line(
    ingestor, store_database, app_and_key, context, sqs, queues, printed
):
    app_id, key = app_and_key
    # Given an event sent through the API
    request = http_event(f"/api/logs/{app_id}", {"eventName": "signup"}, headers={"x-api-key": key})
    printed.lines()
    response = ingest_app.handler(request, context)
    event_id = orjson.loads(response["body"])["event_id"]
    ingest_lines = printed.lines()

    # When the store takes its message
    store(context, drain(sqs, queues["events"]))
    store_lines = printed.lines()

    # Then ingest's line names the API request and the event; the store's the same event
    [queued] = logged(ingest_lines, "events queued")
    assert queued["api_request_id"] == request["requestContext"]["requestId"]
    assert queued["event_ids"] == [event_id]
    [stored] = logged(store_lines, "batch stored")
    assert stored["stored_event_ids"] == [event_id]
    assert stored["returned_event_ids"] == []
    # and the metrics each printed count it
    assert emitted(ingest_lines)["EventsAccepted"] == 1
    assert emitted(store_lines)["EventsStored"] == 1


def test_a_retry_skipped_for_its_message_id_is_logged_as_a_duplicate_not_as_stored(
    ingestor, store_database, app_and_key, context, sqs, queues, printed
):
    # Given an event sent twice with one messageId, the first copy stored
    app_id, key = app_and_key
    sent = []
    for _ in range(2):
        request = http_event(
            f"/api/logs/{app_id}", {"eventName": "a", "messageId": "m"}, headers={"x-api-key": key}
        )
        sent.append(orjson.loads(ingest_app.handler(request, context)["body"])["event_id"])
    first, second = sorted(drain(sqs, queues["events"]), key=lambda body: sent[1] in body)
    store(context, [first])
    printed.lines()
    # When the store takes the retry
    store(context, [second])
    # Then its line says the retry was a duplicate, and stored nothing
    [line] = logged(printed.lines(), "batch stored")
    assert (line["stored_event_ids"], line["duplicate_event_ids"]) == ([], [sent[1]])
    assert line["rows_added"] == 0


def test_a_batchs_line_lists_what_was_queued_and_stores_what_it_handed_back(
    ingestor, store_database, app_and_key, context, sqs, queues, printed
):
    app_id, key = app_and_key
    events = [{"eventName": "a"}, {"eventName": "user_login", "userId": "x"}, {"no": "name"}]
    request = http_event(f"/api/logs/{app_id}/batch", events, headers={"x-api-key": key})
    printed.lines()
    results = orjson.loads(ingest_app.handler(request, context)["body"])["results"]
    ingest_lines = printed.lines()
    queued_ids = [r["event_id"] for r in results if r["status"] in ("valid", "invalid")]

    [queued] = logged(ingest_lines, "events queued")
    assert queued["event_ids"] == queued_ids and len(queued_ids) == 2
    assert queued["not_queued"] == 1
    assert emitted(ingest_lines) == {
        "EventsAccepted": 2,
        "EventsInvalid": 1,
        "EventsRejected": 1,
        "EventsFailed": 0,
    }

    # One event the database refuses: its id is handed back, the other's stored.
    [body] = drain_events(sqs, queues["events"])
    message = json.loads(body)
    message["events"][1]["status"] = "pending"  # breaks the status check
    response, _ = store(context, [json.dumps(message)])
    store_lines = printed.lines()

    assert len(failed_ids(response)) == 1
    [stored] = logged(store_lines, "batch stored")
    assert stored["stored_event_ids"] == [queued_ids[0]]
    assert stored["returned_event_ids"] == [queued_ids[1]]
    assert emitted(store_lines)["MessagesFailed"] == 1


def test_a_database_outage_is_a_metric_and_a_line_with_every_event_id(
    ingestor, app_and_key, context, sqs, queues, printed, monkeypatch
):
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database

    import functions.store.app as store_app

    app_id, key = app_and_key
    request = http_event(f"/api/logs/{app_id}", {"eventName": "a"}, headers={"x-api-key": key})
    event_id = orjson.loads(ingest_app.handler(request, context)["body"])["event_id"]
    # A database nobody listens on: what an outage looks like to the store.
    down = Database(DatabaseSettings(url="postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"))
    monkeypatch.setattr(store_app, "database", lambda: down)
    printed.lines()

    response, ids = store(context, drain(sqs, queues["events"]))
    lines = printed.lines()

    # Lambda sees no error (the batch is handed back), so the metric must say it.
    assert failed_ids(response) == ids
    assert emitted(lines)["DatabaseUnavailable"] == 1
    assert emitted(lines)["MessagesFailed"] == len(ids)
    [line] = logged(lines, "database unavailable; whole batch returned")
    assert line["returned_event_ids"] == [event_id]


@pytest.mark.parametrize("value", ["true", "1"])
def test_a_dry_run_counts_nothing(ingestor, app_and_key, context, printed, value):
    app_id, key = app_and_key
    request = http_event(f"/api/logs/{app_id}", {"eventName": "a"}, headers={"x-api-key": key})
    request["queryStringParameters"] = {"dry_run": value}
    printed.lines()
    ingest_app.handler(request, context)
    assert emitted(printed.lines()) == {}


def test_a_request_refused_whole_counts_as_one_rejected(ingestor, app_and_key, context, printed):
    app_id, _ = app_and_key
    request = http_event(f"/api/logs/{app_id}", {"eventName": "a"}, headers={"x-api-key": "bad"})
    printed.lines()
    assert ingest_app.handler(request, context)["statusCode"] == 401
    assert emitted(printed.lines())["EventsRejected"] == 1
