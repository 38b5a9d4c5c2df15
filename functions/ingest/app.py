"""API Gateway (HTTP API, payload 2.0) -> check -> events queue."""

from __future__ import annotations

from functools import cache

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.catalog import Catalog
from sluice.clock import SystemClock
from sluice.config import IngestSettings
from sluice.db import Database
from sluice.errors import EventBlocked, EventRejected, SluiceError
from sluice.event_ids import EventIds
from sluice.http_api import error_response, http_status, json_response, request_body
from sluice.ingest import BatchOutcome, Ingestor, Outcome
from sluice.keys import api_key_from_headers
from sluice.observability import logger, metrics, tracer
from sluice.queue import EventQueue

app = APIGatewayHttpResolver()


@cache
def ingestor() -> Ingestor:
    """Built on the first invocation and kept by the warm container."""
    settings = IngestSettings.from_env()
    clock = SystemClock()
    database = Database(settings.database)
    return Ingestor(
        settings,
        Catalog(database, settings, clock),
        EventQueue(boto3.client("sqs"), settings.events_queue_url),
        clock,
        EventIds(database).new,
    )


def _dry_run() -> bool:
    """`?dry_run=true`: the verdict a real send would get, with nothing queued or stored."""
    value = _dry_run_text()
    if value not in ("true", "1", "false", "0"):
        raise EventRejected(
            "dry_run must be true, false, 1 or 0; leave it out for a real send.",
            code="invalid_request",
        )
    return value in ("true", "1")


def _dry_run_text() -> str:
    # Absent is a real send. Present, it must say which: `?dry_run=` and a bare
    # `?dry_run` could mean either, and guessing "no" once sent events for real.
    value = app.current_event.get_query_string_value("dry_run")
    return "false" if value is None else value.lower()


@app.post("/api/logs/<app_id>")
def post_event(app_id: str) -> Response:
    dry_run = _dry_run()
    outcome = ingestor().ingest_one(
        app_id,
        api_key_from_headers(app.current_event.headers),
        request_body(app.current_event),
        dry_run=dry_run,
    )
    if dry_run:
        if outcome.status == "invalid":
            message = "Dry run: a real send would store this event as invalid (its rule fails)."
            return json_response(
                422, {**invalid_body(outcome), "message": message, "dry_run": True}
            )
        message = "Dry run: a real send would queue this event; nothing was queued."
        return json_response(200, {**accepted_body(outcome), "message": message, "dry_run": True})
    invalid = int(outcome.status == "invalid")
    count_outcomes(accepted=1, invalid=invalid)
    log_queued([outcome])
    if invalid:
        return json_response(422, invalid_body(outcome))
    return json_response(202, accepted_body(outcome))


@app.post("/api/logs/<app_id>/batch")
def post_batch(app_id: str) -> Response:
    dry_run = _dry_run()
    batch = ingestor().ingest_batch(
        app_id,
        api_key_from_headers(app.current_event.headers),
        request_body(app.current_event),
        dry_run=dry_run,
    )
    if dry_run:
        return batch_response(batch, dry_run=True)
    count_outcomes(
        accepted=batch.queued,
        invalid=batch.count("invalid"),
        rejected=batch.count("rejected"),
        failed=batch.count("failed"),
    )
    log_queued(batch.outcomes)
    return batch_response(batch)


def count_outcomes(accepted: int = 0, invalid: int = 0, rejected: int = 0, failed: int = 0) -> None:
    """Accepted and failed on every request, zeros too; invalid and rejected when they occur.

    A zero keeps IngestQueueFailuresAlarm and the accepted line fed, while each more
    metric costs ~4 us of ingest's CPU and ~50 bytes of EMF per request: the dashboard
    reads an absent invalid or rejected count as none. Accepted counts every queued
    event, invalid ones too (they are stored, as invalid).
    """
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=accepted)
    metrics.add_metric(name="EventsFailed", unit=MetricUnit.Count, value=failed)
    if invalid:
        metrics.add_metric(name="EventsInvalid", unit=MetricUnit.Count, value=invalid)
    if rejected:
        metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=rejected)


def log_queued(outcomes: list[Outcome]) -> None:
    """One line per request: API Gateway's request id and the ids of the events queued.

    The store logs the same ids per batch, so one search for an event id (or for the
    request id the client saw in `apigw-requestid`) follows it from request to row.
    """
    logger.info(
        "events queued",
        api_request_id=app.current_event.request_context.request_id,
        event_ids=[str(o.event_id) for o in outcomes if o.event_id and o.status != "failed"],
        not_queued=sum(1 for o in outcomes if o.status in ("rejected", "failed")),
    )


@app.exception_handler(SluiceError)
def sluice_error(error: SluiceError) -> Response:
    if _dry_run_text() not in ("true", "1"):
        # A request refused whole counts as one event: its body may not even be parseable.
        if http_status(error) >= 500:
            count_outcomes(failed=1)
        else:
            count_outcomes(rejected=1)
    if isinstance(error, EventBlocked) and error.errors:
        return error_response(error, extra={"errors": error.errors})
    return error_response(error)


@app.not_found
def route_not_found(_: Exception) -> Response:
    return json_response(
        404,
        {"error": "route_not_found", "message": "Send events to POST /api/logs/{app_id}[/batch]."},
    )


def accepted_body(outcome: Outcome) -> dict:
    event_id = str(outcome.event_id) if outcome.event_id else None  # None: a dry run
    return {
        "event_id": event_id,
        "task_id": event_id,  # the seed's name for it; kept for its clients
        "event_name": outcome.event_name,
        "status": "valid",
        "message": "Event queued for processing",
    }


def invalid_body(outcome: Outcome) -> dict:
    return {
        "error": "validation_failed",
        "message": "The event breaks its app's rule for this event name; it was stored as invalid.",
        "event_id": str(outcome.event_id) if outcome.event_id else None,
        "event_name": outcome.event_name,
        "status": "invalid",
        "errors": outcome.errors,
        "errors_omitted": outcome.errors_omitted,
        **_uncounted(outcome),
    }


def _uncounted(outcome: Outcome) -> dict:
    # An event with very many values is checked up to its first error only.
    return {} if outcome.errors_counted else {"errors_counted": False}


def batch_response(batch: BatchOutcome, *, dry_run: bool = False) -> Response:
    results = []
    for outcome in batch.outcomes:
        result: dict = {
            "index": outcome.index,
            "event_id": str(outcome.event_id) if outcome.event_id else None,
            "status": outcome.status,
        }
        if outcome.errors or outcome.errors_omitted:
            result["errors"] = outcome.errors
            result["errors_omitted"] = outcome.errors_omitted
            result.update(_uncounted(outcome))
        if outcome.error is not None:
            result["error"] = outcome.error.code
            result["message"] = outcome.error.message
        if outcome.status == "failed":
            result["retryable"] = True
        results.append(result)
    body = {
        "accepted": batch.count("valid"),
        "invalid": batch.count("invalid"),
        "rejected": batch.count("rejected"),
        "failed": batch.count("failed"),
        "results": results,
    }
    if dry_run:
        # The same counts and per-item results; 200 because nothing was accepted for real.
        return json_response(200, {**body, "dry_run": True})
    if batch.queued:
        return json_response(202, body)
    if batch.count("failed"):
        body.update(error="queue_unavailable", message="No event could be queued. Retry the batch.")
        return json_response(503, body)
    body.update(
        error="invalid_batch", message="Every event in the batch was rejected; see results."
    )
    return json_response(400, body)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
