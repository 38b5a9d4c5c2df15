"""Events queue -> PostgreSQL, reporting only the messages that failed."""

from __future__ import annotations

import time
from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from sluice.core.config import StoreSettings
from sluice.core.db import Database
from sluice.core.errors import DatabaseUnavailable
from sluice.core.observability import logger, metrics, tracer
from sluice.store.store_batch import QueueRecord, event_ids, store_records


@cache
def database() -> Database:
    """One connection per warm container, reopened when it breaks."""
    settings = StoreSettings.from_env()
    return Database(settings.database, settings.aws)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    records = [QueueRecord(r["messageId"], r["body"]) for r in event["Records"]]
    started = time.perf_counter()
    # Every metric on every batch, zeros included: an alarm then sees 0, not missing data.
    metrics.add_metric(name="BatchSize", unit=MetricUnit.Count, value=len(records))
    try:
        result = store_records(database(), records)
    except DatabaseUnavailable:
        # Every message goes back and is retried whole; rows already stored are skipped
        # then. Lambda counts no error, so DatabaseUnavailable is what an alarm watches.
        metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=0)
        metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=len(records))
        logger.error(
            "database unavailable; whole batch returned",
            messages=len(records),
            stored_event_ids=[],
            returned_event_ids=event_ids(records),
        )
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in records]}
    metrics.add_metric(name="DatabaseUnavailable", unit=MetricUnit.Count, value=0)
    metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=result.stored)
    metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=len(result.failed))
    metrics.add_metric(
        name="BatchDuration",
        unit=MetricUnit.Milliseconds,
        value=round((time.perf_counter() - started) * 1000, 1),
    )
    # One line per batch, not per event: a search for an event id finds it here.
    logger.info(
        "batch stored",
        messages=len(records),
        rows_added=result.stored,
        stored_event_ids=result.stored_ids,
        duplicate_event_ids=result.duplicate_ids,
        returned_event_ids=result.returned_ids,
        returned_message_ids=result.failed,
        rejections_added=result.rejections,
    )
    return {"batchItemFailures": [{"itemIdentifier": m} for m in result.failed]}
