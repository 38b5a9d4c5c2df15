"""Schedule and ScheduleV2 events: rate(), cron() and at() expressions, fired in-process.

EventBridge fires nothing locally (moto keeps rules but never runs them), so the
runtime does. Cron follows EventBridge's six fields (minutes hours day-of-month
month day-of-week year) in UTC, with `*`, `?`, lists, ranges, steps and names;
`L`, `W` and `#` are not supported.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

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
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()  # EventBridge: 1 = Sunday


class ScheduleError(ValueError):
    pass


def _field(text: str, low: int, high: int, names: list[str] | None = None) -> set[int] | None:
    """The values a cron field allows; None for `*` or `?` (anything)."""
    if text in ("*", "?"):
        return None
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            start, end = (_value(p, names, low) for p in part.split("-"))
        else:
            start = _value(part, names, low)
            end = high if step > 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleError(f"{text!r} is out of range {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, names: list[str] | None, low: int) -> int:
    if names and text.upper() in names:
        return names.index(text.upper()) + low
    if not text.isdigit():
        raise ScheduleError(f"unsupported cron value {text!r}")
    return int(text)


class Cron:
    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != 6:
            raise ScheduleError(f"cron({expression}) needs six fields")
        minute, hour, dom, month, dow, year = fields
        self.minutes = _field(minute, 0, 59)
        self.hours = _field(hour, 0, 23)
        self.days = _field(dom, 1, 31)
        self.months = _field(month, 1, 12, _MONTHS)
        self.weekdays = _field(dow, 1, 7, _DAYS)
        self.years = _field(year, 1970, 2199)

    def matches(self, moment: datetime) -> bool:
        weekday = (moment.isoweekday() % 7) + 1  # Sunday -> 1
        return all(
            allowed is None or value in allowed
            for allowed, value in (
                (self.minutes, moment.minute),
                (self.hours, moment.hour),
                (self.days, moment.day),
                (self.months, moment.month),
                (self.weekdays, weekday),
                (self.years, moment.year),
            )
        )

    def next_after(self, moment: datetime) -> datetime | None:
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(366 * 24 * 60):  # a year of minutes at most
            if self.matches(candidate):
                return candidate
            candidate += timedelta(minutes=1)
        return None


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
        return Cron(body).next_after(after)
    moment = datetime.fromisoformat(body).replace(tzinfo=UTC)
    return moment if moment > after else None


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
