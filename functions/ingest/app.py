"""API Gateway (HTTP API, payload 2.0) -> check -> events queue."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.core import aws_clients
from sluice.core.clock import SystemClock
from sluice.core.config import IngestSettings
from sluice.core.db import Database
from sluice.core.errors import EventBlocked, EventRejected, NotFound, SluiceError
from sluice.core.http_api import error_response, http_status, json_response, request_body
from sluice.core.observability import logger, metrics, trace_when_sampled
from sluice.intake.catalog import Catalog
from sluice.intake.event_ids import EventIds
from sluice.intake.ingest import Ingestor, Outcome
from sluice.intake.keys import api_key_from_headers
from sluice.intake.queue import EventQueue
from sluice.intake.segment import ROUTES

# Lambda (and the local runtime) import this file as `app`, from its folder on the path,
# with answers.py and tracking_api.py copied beside it (Makefile, build-IngestFunction); the
# tests, mypy and the benchmarks import it as functions.ingest.app. The sibling modules
# follow either way.
if __package__:
    from . import answers, tracking_api
else:
    import answers  # type: ignore[import-not-found, no-redef]
    import tracking_api  # type: ignore[import-not-found, no-redef]

app = APIGatewayHttpResolver()


@cache
def ingestor() -> Ingestor:
    """Built on the first invocation and kept by the warm container."""
    settings = IngestSettings.from_env()
    clock = SystemClock()
    database = Database(settings.database, settings.aws)
    return Ingestor(
        settings,
        Catalog(database, settings, clock),
        # EventQueue builds every parameter of its sends (docs/performance.md): no checks.
        EventQueue(
            aws_clients.client("sqs", settings.aws, check_parameters=False),
            settings.events_queue_url,
        ),
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
        return answers.dry_run_response(outcome)
    count_outcomes(accepted=1, invalid=int(outcome.status == "invalid"))
    log_queued([outcome])
    return answers.event_response(outcome)


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
        return answers.batch_response(batch, dry_run=True)
    count_outcomes(
        accepted=batch.queued,
        invalid=batch.count("invalid"),
        rejected=batch.count("rejected"),
        failed=batch.count("failed"),
    )
    log_queued(batch.outcomes)
    return answers.batch_response(batch)


@app.post("/v1/<call>")
def post_segment(call: str) -> Response:
    """Segment's Tracking API: what the Segment and RudderStack libraries send, unchanged."""
    if call not in ROUTES:
        raise NotFound(
            f"/v1/{call} is not a Segment route; send to /v1/batch or /v1/track, identify,"
            " page, screen, group, alias.",
            code="route_not_found",
        )
    headers = app.current_event.headers
    batch = ingestor().ingest_segment(
        tracking_api.write_key(headers),
        tracking_api.decoded_body(request_body(app.current_event), headers),
        ROUTES[call],
        route=f"/v1/{call}",
    )
    count_outcomes(
        accepted=batch.queued,
        invalid=batch.count("invalid"),
        rejected=batch.count("rejected"),
        failed=batch.count("failed"),
    )
    log_queued(batch.outcomes)
    tracking_api.log_rejected(batch)
    return tracking_api.success(batch)


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
    if app.current_event.raw_path.startswith("/v1/"):
        return tracking_api.error(error)
    if isinstance(error, EventBlocked) and error.errors:
        return error_response(error, extra={"errors": error.errors})
    return error_response(error)


@app.not_found
def route_not_found(_: Exception) -> Response:
    return json_response(
        404,
        {"error": "route_not_found", "message": "Send events to POST /api/logs/{app_id}[/batch]."},
    )


@logger.inject_lambda_context
@trace_when_sampled  # Powertools' capture_lambda_handler, skipped where X-Ray keeps nothing
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
