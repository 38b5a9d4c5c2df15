"""Schedule -> count the events stored since the last run into the rollups."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.core.config import AggregateSettings
from sluice.core.db import Database
from sluice.core.observability import logger, metrics, tracer
from sluice.rollups import aggregate


@cache
def settings() -> AggregateSettings:
    return AggregateSettings.from_env()


@cache
def database() -> Database:
    """One connection per warm container, reopened when it breaks."""
    return Database(settings().database, settings().aws)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    # Stop starting chunks while a chunk and the answer still fit before Lambda's
    # deadline; whatever is left, the next run takes up from the recorded position.
    seconds = context.get_remaining_time_in_millis() / 1000 - settings().stop_before_timeout
    result = aggregate.run(database(), settings().chunk_size, seconds=max(seconds, 1.0))
    metrics.add_metric(name="EventsAggregated", unit=MetricUnit.Count, value=result.counted)
    # How far the rollups trail the clock: what the stalled-aggregation alarm watches.
    # Nothing stored yet is nothing to trail.
    lag = (
        (datetime.now(UTC) - result.complete_through).total_seconds()
        if result.complete_through
        else 0.0
    )
    metrics.add_metric(name="AggregationLag", unit=MetricUnit.Seconds, value=round(lag, 1))
    logger.info(
        "aggregated",
        counted=result.counted,
        scanned=result.scanned,
        chunks=result.chunks,
        caught_up=result.caught_up,
        lag_seconds=round(lag, 1),
        complete_through=str(result.complete_through),
    )
    return {
        "counted": result.counted,
        "caught_up": result.caught_up,
        "complete_through": result.complete_through.isoformat()
        if result.complete_through
        else None,
    }
