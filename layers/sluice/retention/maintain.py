"""Retention: what the scheduled maintain function does, without AWS.

Each run, in order:
1. makes the day partitions of events from today to DAYS_AHEAD days ahead (the
   deploy's migration made the first week too; the default partition takes anything
   else, so a run that never happens refuses no event);
2. forgets messageIds older than the dedup window, and the skipped copies' ids no
   lookup needs any more (past QUEUED_HORIZON, their original expired);
3. purges the account tables' records nothing uses any more (sluice.retention.account_purge):
   challenges (with their deliveries) and sessions ACCOUNT_RECORDS_KEPT after they
   ended, rate-limit rows with no send inside the longest limit's window; and the
   records of refused batch items REJECTIONS_KEPT after they were received. Before the
   events' expiry: it is small each hour, and a long archive must not starve it;
4. expires events past their app's retention, never before the rollups counted them:
   a day every app has expired is detached whole, each app's rows archived from it,
   and dropped; a day only some apps have expired is archived and deleted for those
   apps in bounded chunks;
5. removes deleted apps' events (in chunks) and their archive; an app whose archive S3
   did not wholly delete is kept for the next run (`archive_objects_left`).
Every delete goes in chunks of `chunk_size` rows, one transaction each. A run stops
starting work at its deadline; the next goes on where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial

from sluice.accounts.limits import LIMIT_WINDOW
from sluice.core.clock import Clock, SystemClock
from sluice.core.db import Connection, Database
from sluice.core.observability import logger
from sluice.intake.event_ids import QUEUED_HORIZON
from sluice.retention import account_purge
from sluice.retention import partitions as p
from sluice.retention.archive import ArchiveBucket, object_key
from sluice.retention.rejections import purge_rejections

# Challenges and sessions are kept this long after they expired or ended: long enough
# to look into abuse or a support question a few days on ("I never got my code": the
# challenge, its delivery's state and SES's reason; a burst of registrations for other
# people's addresses), short enough not to hoard the address of someone who never
# finished registering. Nothing needs them sooner: a code dies in 10 minutes, a token
# in 30, a session in 12 hours, and an email request redriven from its DLQ later finds
# no challenge and is skipped, as it would be for an expired one.
ACCOUNT_RECORDS_KEPT = timedelta(days=7)
# Records of refused batch items are kept this long, whatever the app's retention: they
# say why something is missing, which an owner asks within days, and a fixed span needs
# no join with apps (a deleted app's records go the same way).
REJECTIONS_KEPT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class MaintainPolicy:
    days_ahead: int = 7
    dedup_window: timedelta = timedelta(hours=72)
    # Rows per delete statement: bounds each transaction's locks and WAL burst.
    chunk_size: int = 10_000
    # Used for the whole-day cut when no app exists (every app has a retention).
    default_retention_days: int = 30
    account_records_kept: timedelta = ACCOUNT_RECORDS_KEPT
    rejections_kept: timedelta = REJECTIONS_KEPT


@dataclass(slots=True)
class MaintainResult:
    partitions_made: int = 0
    dedup_forgotten: int = 0
    duplicates_forgotten: int = 0
    challenges_purged: int = 0  # with their email_deliveries rows
    sessions_purged: int = 0
    send_limits_purged: int = 0
    rejections_purged: int = 0
    days_dropped: list[date] = field(default_factory=list)
    archived_events: int = 0
    archived_objects: int = 0
    deleted_events: int = 0
    deleted_apps_done: int = 0
    archive_objects_deleted: int = 0
    # Deleted apps' archived objects S3 refused to delete: the apps stay for the next run.
    archive_objects_left: int = 0
    finished: bool = True


def run(
    database: Database,
    bucket: ArchiveBucket,
    now: datetime,
    policy: MaintainPolicy = MaintainPolicy(),
    seconds: float = 600.0,
    clock: Clock | None = None,
) -> MaintainResult:
    """One run; `clock` measures the `seconds` it may take (tests pass their own)."""
    clock = clock or SystemClock()
    deadline = clock.monotonic() + seconds
    result = MaintainResult()

    def out_of_time() -> bool:
        if clock.monotonic() >= deadline:
            result.finished = False
        return not result.finished

    today = now.date()
    made = database.run(
        lambda c: p.make_partitions(c, today, today + timedelta(days=policy.days_ahead))
    )
    if made is None:
        # A long reader held the default partition; a week is made ahead, so the next
        # runs have days to succeed, and the default partition takes events meanwhile.
        logger.warning("partitions not made: the default partition stayed locked")
    result.partitions_made = made or 0

    def in_chunks(delete_chunk: Callable[..., int]) -> int:
        """Deletes chunk after chunk (one transaction each) until one falls short or time is up."""
        deleted = 0
        while not out_of_time():
            chunk = database.run(lambda c: delete_chunk(c, limit=policy.chunk_size))
            deleted += chunk
            if chunk < policy.chunk_size:
                break
        return deleted

    result.dedup_forgotten = in_chunks(partial(p.purge_dedup, before=now - policy.dedup_window))
    result.duplicates_forgotten = in_chunks(
        partial(p.purge_duplicates, queued_before=now - QUEUED_HORIZON, now=now)
    )
    gone_before = now - policy.account_records_kept
    result.challenges_purged = in_chunks(
        partial(account_purge.purge_challenges, expired_before=gone_before, now=now)
    )
    result.sessions_purged = in_chunks(
        partial(account_purge.purge_sessions, over_before=gone_before)
    )
    result.send_limits_purged = in_chunks(
        partial(account_purge.purge_send_limits, last_sent_before=now - LIMIT_WINDOW)
    )
    result.rejections_purged = in_chunks(
        partial(purge_rejections, received_before=now - policy.rejections_kept)
    )
    _expire(database, bucket, now, policy, result, out_of_time)
    _remove_deleted_apps(database, bucket, now, policy, result, out_of_time)
    return result


def _expire(
    database: Database,
    bucket: ArchiveBucket,
    now: datetime,
    policy: MaintainPolicy,
    result: MaintainResult,
    out_of_time: Callable[[], bool],
) -> None:
    def plan(conn: Connection):
        return (
            p.app_retentions(conn),
            p.counted_through(conn),
            p.partition_days(conn),
            p.default_partition_days(conn),
        )

    retentions, counted, days, default_days = database.run(plan)
    if counted is None:
        return  # the rollups have counted nothing yet: nothing may go
    today = now.date()

    def expired(day: date, retention: int) -> bool:
        # The whole day is past the retention, and every event of it was counted.
        end = p.day_bounds(day)[1]
        return day < today - timedelta(days=retention) and end <= counted

    longest = max(retentions.values(), default=policy.default_retention_days)
    attached = [day for day, is_attached in days if is_attached]
    # Detached days first: a run that stopped between detach and drop goes on.
    whole_days = [day for day, is_attached in days if not is_attached]
    whole_days += [day for day in attached if expired(day, longest)]
    for day in whole_days:
        if out_of_time():
            return
        _expire_whole_day(database, bucket, day, list(retentions), result)
    partial_days = sorted(set(attached) - set(whole_days) | set(default_days))
    for day in partial_days:
        for app_id, retention in retentions.items():
            if not expired(day, retention):
                continue
            if out_of_time():
                return
            if database.run(partial(p.has_events, app_id=app_id, day=day)):
                _expire_slice(database, bucket, app_id, day, policy, result, out_of_time)


def _write_archive(
    bucket: ArchiveBucket, conn: Connection, *, key: str, app_id: str, day: date
) -> int:
    """A detached day's events of one app, streamed into one archive object."""
    return bucket.write(key, p.archive_lines(conn, app_id, day, detached=True))


def _expire_whole_day(
    database: Database,
    bucket: ArchiveBucket,
    day: date,
    app_ids: list[str],
    result: MaintainResult,
) -> None:
    if database.run(lambda c: p.detach_partition(c, day)) is None:
        # A long reader held events; stores waited at most the lock timeout. Next run.
        logger.warning("partition not detached: events stayed locked", day=str(day))
        return
    with_rows = database.run(lambda c: p.apps_in_detached(c, day, app_ids))
    for app_id in with_rows:
        parts, whole = database.run(partial(p.archived_parts, app_id=app_id, day=day))
        if whole:
            continue  # archived by a run that stopped before the drop
        key = object_key(app_id, day, parts)
        count = database.run(partial(_write_archive, bucket, key=key, app_id=app_id, day=day))
        database.run(
            partial(p.record_archive, app_id=app_id, day=day, key=key, events=count, whole_day=True)
        )
        result.archived_events += count
        result.archived_objects += 1
    database.run(lambda c: p.drop_detached_partition(c, day))
    result.days_dropped.append(day)
    logger.info("day expired", day=str(day), apps=len(with_rows))


def _expire_slice(
    database: Database,
    bucket: ArchiveBucket,
    app_id: str,
    day: date,
    policy: MaintainPolicy,
    result: MaintainResult,
    out_of_time: Callable[[], bool],
) -> None:
    """Archives what one app has of a day, then deletes exactly that, in chunks."""
    parts, _ = database.run(lambda c: p.archived_parts(c, app_id, day))
    # The part's number is the count of parts recorded: a run that died after the
    # upload and before the record writes the same key again, a superset of it.
    key = object_key(app_id, day, parts)

    def archive(conn: Connection) -> tuple[str, int]:
        snapshot = p.begin_snapshot(conn)
        return snapshot, bucket.write(key, p.archive_lines(conn, app_id, day, detached=False))

    snapshot, count = database.run(archive)
    database.run(lambda c: p.record_archive(c, app_id, day, key, count, whole_day=False))
    result.archived_events += count
    result.archived_objects += 1
    while not out_of_time():
        deleted = database.run(
            lambda c: p.delete_archived_chunk(c, app_id, day, snapshot, policy.chunk_size)
        )
        result.deleted_events += deleted
        if deleted < policy.chunk_size:
            break


def _remove_deleted_apps(
    database: Database,
    bucket: ArchiveBucket,
    now: datetime,
    policy: MaintainPolicy,
    result: MaintainResult,
    out_of_time: Callable[[], bool],
) -> None:
    for app_id, deleted_at in database.run(p.deleted_apps):
        while not out_of_time():
            removed = database.run(
                partial(p.delete_app_events_chunk, app_id=app_id, limit=policy.chunk_size)
            )
            result.deleted_events += removed
            if removed == 0:
                break
        if out_of_time():
            return
        deletion = bucket.delete_app(app_id)
        result.archive_objects_deleted += deletion.deleted
        if deletion.refused:
            # Forgetting the app would leave these objects forever: keep it, so the next
            # run tries them again (the function then fails, for MaintainErrorsAlarm).
            result.archive_objects_left += deletion.left
            logger.warning(
                "archive objects not deleted",
                app_id=app_id,
                objects=deletion.left,
                codes=sorted(deletion.refused),
            )
            continue
        # Events still queued when the app was deleted can be stored until the queue's
        # horizon: keep watching for them until then.
        if now - deleted_at > QUEUED_HORIZON:
            database.run(partial(p.forget_deleted_app, app_id=app_id))
            result.deleted_apps_done += 1
