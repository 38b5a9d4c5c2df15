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
import re
import threading
import uuid
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


class Scheduler:
    """Fires each schedule on time; a failure is retried as Lambda retries an async invocation."""

    def __init__(self, schedules: list[Schedule], invoker: AsyncInvoker, region: str) -> None:
        self.schedules = schedules
        self.invoker = invoker
        self.region = region
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
        outcome = self.invoker.invoke(schedule.function, event)
        if not outcome.ok:
            self.invoker.submit(schedule.function, event, first=outcome)
        log.info(
            "invoke   %s %s schedule %s %.0f ms",
            schedule.function,
            "ok" if outcome.ok else outcome.error["errorType"],
            schedule.event,
            outcome.duration_ms,
        )
        return outcome

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
