"""Events queue -> PostgreSQL, reporting only the messages that failed."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from sluice.config import StoreSettings
from sluice.db import Database
from sluice.errors import DatabaseUnavailable
from sluice.observability import logger, metrics, tracer
from sluice.store_batch import QueueRecord, store_records


@cache
def database() -> Database:
    """One connection per warm container, reopened when it breaks."""
    return Database(StoreSettings.from_env().database)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: object) -> dict:
    records = [QueueRecord(r["messageId"], r["body"]) for r in event["Records"]]
    try:
        result = store_records(database(), records)
    except DatabaseUnavailable:
        # Every message goes back and is retried whole; rows already stored are skipped then.
        logger.error("database unavailable; whole batch returned", messages=len(records))
        return {"batchItemFailures": [{"itemIdentifier": r.message_id} for r in records]}
    metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=result.stored)
    metrics.add_metric(name="MessagesFailed", unit=MetricUnit.Count, value=len(result.failed))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in result.failed]}
