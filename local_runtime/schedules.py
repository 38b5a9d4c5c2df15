"""Schedule and ScheduleV2 events: rate(), cron() and at() expressions, fired in-process.

EventBridge fires nothing locally (moto keeps rules but never runs them), so the
runtime does. cron() is croniter's: EventBridge's six fields (minutes hours
day-of-month month day-of-week year, in UTC, with `?`, `L`, `W` and `#`) become
croniter's seven (a seconds field of 0 before the year), and day-of-week numbers
move from EventBridge's 1 = Sunday to cron's 0 = Sunday. rate() and at() are a
number and a unit, and an ISO date: there is nothing for a library to do.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from croniter import croniter
from croniter.croniter import CroniterError

from local_runtime.async_invoke import AsyncInvoker
from local_runtime.template import ACCOUNT_ID, Schedule
from local_runtime.workers import Outcome

log = logging.getLogger("local_runtime")

# Seconds are a local extension (EventBridge's shortest rate is a minute): settings
# files use them to make a schedule fire within a test's patience.
_UNITS = {
    "second": 1,
    "seconds": 1,
    "minute": 60,
    "minutes": 60,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}


class ScheduleError(ValueError):
    pass


def _weekdays(field: str) -> str:
    """EventBridge's day-of-week field in cron's numbering (6L, last Friday, is cron's L5)."""
    field = re.sub(r"(?<![#/\d])([1-7])(?!\d)", lambda m: str(int(m.group(1)) - 1), field)
    return re.sub(r"^(\d)L$", r"L\1", field)


def cron(expression: str) -> str:
    """EventBridge's cron fields as croniter's seven."""
    fields = expression.split()
    if len(fields) != 6:
        raise ScheduleError(f"cron({expression}) needs six fields")
    minute, hour, day, month, weekday, year = fields
    if day != "?" and weekday != "?":
        raise ScheduleError(f"cron({expression}): day-of-month or day-of-week must be ?")
    return " ".join((minute, hour, day, month, _weekdays(weekday), "0", year)).replace("?", "*")


def next_fire(expression: str, after: datetime, started: datetime) -> datetime | None:
    """When the schedule fires next after `after` (rates count from `started`)."""
    match = re.fullmatch(r"(rate|cron|at)\((.*)\)", expression.strip())
    if not match:
        raise ScheduleError(f"unsupported schedule expression {expression!r}")
    kind, body = match.groups()
    if kind == "rate":
        amount, unit = body.split()
        if unit not in _UNITS or int(amount) < 1:
            raise ScheduleError(f"unsupported rate {body!r}")
        period = timedelta(seconds=int(amount) * _UNITS[unit])
        periods = int((after - started) / period) + 1
        return started + periods * period
    if kind == "cron":
        try:
            moment: datetime = croniter(cron(body), after).get_next(datetime)
        except (CroniterError, ValueError) as exc:
            raise ScheduleError(f"cron({body}): {exc}") from None
        return moment
    at = datetime.fromisoformat(body).replace(tzinfo=UTC)
    return at if at > after else None


def scheduled_event(schedule: Schedule, region: str, now: datetime | None = None) -> Any:
    """The template's Input, or the event EventBridge sends for a scheduled rule."""
    if schedule.input is not None:
        return json.loads(schedule.input)
    moment = now or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events" if ":events:" in schedule.rule_arn else "aws.scheduler",
        "account": ACCOUNT_ID,
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [schedule.rule_arn],
        "detail": {},
    }


class HandOffFailed(Exception):
    """EventBridge Scheduler could not hand the event to its target (not a function error)."""

    def __init__(self, code: str, message: str, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.outcome = Outcome(
            request_id=str(uuid.uuid4()),
            duration_ms=0.0,
            error={"errorType": code, "errorMessage": message},
        )


def scheduler_backoff(retry: int) -> float:
    """Scheduler's wait before a retry: exponential, with jitter (AWS does not publish its
    exact curve; 185 retries spread over 24 hours average about 8 minutes apart)."""
    return min(2.0**retry, 900.0) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrets


class Scheduler:
    """Fires each schedule on time, as EventBridge Scheduler does.

    Scheduler invokes Lambda asynchronously: once Lambda has the event, a function error
    is Lambda's to retry (AsyncInvoker: two retries, then the function's OnFailure
    destination and DeadLetterQueue). The schedule's own RetryPolicy and DeadLetterConfig
    apply to the hand-off itself: retryable failures (throttling, Lambda's 5xx) are
    retried with backoff until MaximumRetryAttempts or MaximumEventAgeInSeconds, others
    (no such function, no permission) go to the schedule's DLQ at once. Locally the one
    hand-off that fails is to a function the template lacks (ResourceNotFoundException).
    """

    def __init__(
        self,
        schedules: list[Schedule],
        invoker: AsyncInvoker,
        region: str,
        retry_delays: Sequence[float] | None = None,
    ) -> None:
        self.schedules = schedules
        self.invoker = invoker
        self.region = region
        # The settings file's SchedulerRetryDelaySeconds (the last one repeats) replaces
        # Scheduler's backoff, which can take hours, for a developer's patience.
        self.retry_delays = tuple(retry_delays) if retry_delays else None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        for schedule in schedules:  # fail at start on an expression we cannot run
            next_fire(schedule.expression, datetime.now(UTC), datetime.now(UTC))

    def find(self, function: str, event: str) -> Schedule | None:
        return next(
            (s for s in self.schedules if s.function == function and s.event == event), None
        )

    def fire(self, schedule: Schedule) -> Outcome:
        """The first attempt's outcome; retries and failure destinations follow later."""
        event = scheduled_event(schedule, self.region)
        scheduled = datetime.now(UTC)
        try:
            outcome = self._hand_off(schedule, event)
        except HandOffFailed as failure:
            outcome = failure.outcome
            if failure.retryable:
                threading.Thread(
                    target=self.retry,
                    args=(
                        schedule,
                        event,
                        scheduled,
                        failure,
                        lambda: self._hand_off(schedule, event),
                    ),
                    daemon=True,
                ).start()
            else:
                self.dead_letter(schedule, event, scheduled, failure, None, 0)
        log.info(
            "invoke   %s %s schedule %s %.0f ms",
            schedule.function,
            "ok" if outcome.ok else outcome.error["errorType"],
            schedule.event,
            outcome.duration_ms,
        )
        return outcome

    def _hand_off(self, schedule: Schedule, event: Any) -> Outcome:
        """Lambda's asynchronous Invoke: accepted, the function's own retries take over."""
        if schedule.target_missing:
            arn = schedule.delivery.target_arn if schedule.delivery else schedule.function
            raise HandOffFailed("ResourceNotFoundException", f"Function not found: {arn}", False)
        outcome = self.invoker.invoke(schedule.function, event)
        if not outcome.ok:
            self.invoker.submit(schedule.function, event, first=outcome)
        return outcome

    def retry(
        self,
        schedule: Schedule,
        event: Any,
        scheduled: datetime,
        failure: HandOffFailed,
        hand_off: Callable[[], Outcome],
    ) -> None:
        """Retries a retryable hand-off failure as the schedule's RetryPolicy allows."""
        delivery = schedule.delivery
        max_retries = delivery.max_retries if delivery else 185
        max_age = delivery.max_event_age_seconds if delivery else 86400.0
        started = time.monotonic()
        retries = 0
        condition: str | None
        while True:
            if retries >= max_retries:
                condition = "MaximumRetryAttempts"
                break
            delay = self._delay(retries)
            if time.monotonic() - started + delay > max_age:
                condition = "MaximumEventAgeInSeconds"
                break
            if self._stop.wait(delay):
                return
            retries += 1
            try:
                hand_off()
                return
            except HandOffFailed as again:
                failure = again
                if not again.retryable:
                    condition = None
                    break
        self.dead_letter(schedule, event, scheduled, failure, condition, retries)

    def _delay(self, retry: int) -> float:
        if self.retry_delays:
            return self.retry_delays[min(retry, len(self.retry_delays) - 1)]
        return scheduler_backoff(retry)

    def dead_letter(
        self,
        schedule: Schedule,
        event: Any,
        scheduled: datetime,
        failure: HandOffFailed,
        condition: str | None,
        retries: int,
    ) -> None:
        """The event to the schedule's DLQ, with Scheduler's attributes; without one, dropped."""
        delivery = schedule.delivery
        if delivery is None or not delivery.dead_letter_arn:
            log.warning(
                "schedule %s: %s; the event is dropped (no DeadLetterConfig)",
                schedule.event,
                failure,
            )
            return
        values = {
            "ERROR_CODE": failure.code,
            "ERROR_MESSAGE": failure.message,
            "EXECUTION_ID": str(uuid.uuid4()),
            "IS_PAYLOAD_TRUNCATED": "false",
            "RETRY_ATTEMPTS": str(retries),
            "SCHEDULED_TIME": scheduled.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "SCHEDULE_ARN": schedule.rule_arn,
            "TARGET_ARN": delivery.target_arn,
        }
        if condition is not None:
            values["EXHAUSTED_RETRY_CONDITION"] = condition
        attributes = {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}
        try:
            self.invoker.send(delivery.dead_letter_arn, json.dumps(event), attributes)
            log.info("schedule %s: %s; the event went to its DLQ", schedule.event, failure.code)
        except Exception as exc:  # a DLQ we cannot reach must not stop the schedule
            log.error("schedule %s: could not send to its DLQ: %s", schedule.event, exc)

    def start(self) -> None:
        for schedule in self.schedules:
            if schedule.enabled:
                thread = threading.Thread(target=self._run, args=(schedule,), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _run(self, schedule: Schedule) -> None:
        started = datetime.now(UTC)
        while not self._stop.is_set():
            now = datetime.now(UTC)
            at = next_fire(schedule.expression, now, started)
            if at is None:
                return
            if self._stop.wait((at - now).total_seconds()):
                return
            self.fire(schedule)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
