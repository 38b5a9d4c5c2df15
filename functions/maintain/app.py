"""Schedule -> keep events (partitions ahead, the dedup window, retention and its archive)
and purge the account tables' records nothing uses any more."""

from __future__ import annotations

from datetime import timedelta
from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.core import aws_clients
from sluice.core.clock import SystemClock
from sluice.core.config import MaintainSettings
from sluice.core.db import Database
from sluice.core.observability import logger, metrics, tracer
from sluice.retention import maintain
from sluice.retention.archive import ArchiveBucket, ArchiveNotDeleted


@cache
def settings() -> MaintainSettings:
    return MaintainSettings.from_env()


@cache
def database() -> Database:
    """One connection per warm container, reopened when it breaks."""
    return Database(settings().database, settings().aws)


@cache
def bucket() -> ArchiveBucket:
    return ArchiveBucket(aws_clients.client("s3", settings().aws), settings().archive_bucket)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    config = settings()
    policy = maintain.MaintainPolicy(
        days_ahead=config.days_ahead,
        dedup_window=timedelta(hours=config.dedup_window_hours),
        chunk_size=config.chunk_size,
    )
    # Whatever is left when the time is up, the next run takes up.
    seconds = context.get_remaining_time_in_millis() / 1000 - config.stop_before_timeout
    result = maintain.run(
        database(), bucket(), SystemClock().now(), policy, seconds=max(seconds, 1.0)
    )
    metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=result.archived_events)
    metrics.add_metric(name="EventsExpired", unit=MetricUnit.Count, value=result.deleted_events)
    logger.info(
        "maintained",
        partitions_made=result.partitions_made,
        dedup_forgotten=result.dedup_forgotten,
        duplicates_forgotten=result.duplicates_forgotten,
        challenges_purged=result.challenges_purged,
        sessions_purged=result.sessions_purged,
        send_limits_purged=result.send_limits_purged,
        rejections_purged=result.rejections_purged,
        days_dropped=[str(day) for day in result.days_dropped],
        archived_events=result.archived_events,
        archived_objects=result.archived_objects,
        archive_objects_deleted=result.archive_objects_deleted,
        archive_objects_left=result.archive_objects_left,
        deleted_events=result.deleted_events,
        finished=result.finished,
    )
    if result.archive_objects_left:
        # The rest of the run is done and counted; failing makes MaintainErrorsAlarm fire
        # (a refusal that lasts, such as a bucket policy, fails every run until fixed).
        raise ArchiveNotDeleted(result.archive_objects_left)
    return {
        "partitions_made": result.partitions_made,
        "days_dropped": [str(day) for day in result.days_dropped],
        "archived_events": result.archived_events,
        "deleted_events": result.deleted_events,
        "challenges_purged": result.challenges_purged,
        "sessions_purged": result.sessions_purged,
        "send_limits_purged": result.send_limits_purged,
        "finished": result.finished,
    }
