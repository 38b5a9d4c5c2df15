"""Asynchronous invocation as Lambda runs it: retries, then the failure destinations.

Schedules (EventBridge and EventBridge Scheduler) invoke their function
asynchronously. When the function fails, Lambda retries twice by default (one
minute, then two minutes later; `MaximumRetryAttempts` sets 0–2) and drops events
older than `MaximumEventAgeInSeconds`; then it sends the event to the function's
`EventInvokeConfig` OnFailure destination (an invocation record) and to its
`DeadLetterQueue` (the event itself, with RequestID, ErrorCode and ErrorMessage
attributes). Locally the destinations must be queues of the template; the delays
between attempts come from the settings file (`AsyncRetryDelaySeconds`), since a
developer rarely waits three minutes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from local_runtime.template import Function
from local_runtime.workers import Outcome

log = logging.getLogger("local_runtime")

LAMBDA_RETRY_DELAYS = (60.0, 120.0)


def invocation_record(
    function: Function, event: Any, outcome: Outcome, condition: str, attempts: int
) -> dict[str, Any]:
    """What Lambda sends an OnFailure destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": outcome.request_id,
            "functionArn": f"{function.arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST"},
    }
    if outcome.error is not None:
        record["responseContext"]["functionError"] = "Unhandled"
        record["responsePayload"] = outcome.error
    return record


class AsyncInvoker:
    """Runs asynchronous invocations in threads of their own, each with its retries."""

    def __init__(
        self,
        functions: dict[str, Function],
        invoke: Callable[[str, Any], Outcome],
        send: Callable[[str, str, dict[str, Any]], None],  # queue ARN, body, attributes
        retry_delays: Sequence[float] = LAMBDA_RETRY_DELAYS,
    ) -> None:
        self.functions = functions
        self.invoke = invoke
        self.send = send
        self.retry_delays = tuple(retry_delays)
        self._stop = threading.Event()
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def submit(self, function: str, event: Any, first: Outcome | None = None) -> None:
        """Invokes (unless `first` is that attempt's outcome), retrying in the background."""
        thread = threading.Thread(
            target=self._run, args=(function, event, first), name=f"async-{function}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def run(self, function: str, event: Any, first: Outcome | None = None) -> Outcome:
        """Every attempt and the failure delivery, in this thread; the last attempt's outcome."""
        config = self.functions[function].async_config
        received = time.monotonic()
        outcome = first if first is not None else self.invoke(function, event)
        attempts = 1
        while not outcome.ok and attempts <= config.max_retries:
            delay = self.retry_delays[min(attempts - 1, len(self.retry_delays) - 1)]
            if time.monotonic() + delay - received > config.max_event_age_seconds:
                self._deliver(function, event, outcome, "EventAgeExceeded", attempts)
                return outcome
            if self._stop.wait(delay):
                log.warning("%s: stopping, so its event is not retried", function)
                return outcome
            outcome = self.invoke(function, event)
            attempts += 1
        if not outcome.ok:
            self._deliver(function, event, outcome, "RetriesExhausted", attempts)
        return outcome

    def _run(self, function: str, event: Any, first: Outcome | None) -> None:
        try:
            self.run(function, event, first)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _deliver(
        self, function: str, event: Any, outcome: Outcome, condition: str, attempts: int
    ) -> None:
        target = self.functions[function]
        config = target.async_config
        error = outcome.error or {}
        if config.on_failure_arn:
            record = invocation_record(target, event, outcome, condition, attempts)
            self._send(function, config.on_failure_arn, json.dumps(record), {})
        if config.dead_letter_arn:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": outcome.request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str(error.get("errorMessage", condition))[:1000] or condition,
                },
            }
            self._send(function, config.dead_letter_arn, json.dumps(event), attributes)
        if not (config.on_failure_arn or config.dead_letter_arn):
            log.warning("%s: event dropped after %d attempts (%s)", function, attempts, condition)

    def _send(self, function: str, arn: str, body: str, attributes: dict[str, Any]) -> None:
        try:
            self.send(arn, body, attributes)
            log.info("async    %s failed event sent to %s", function, arn.rsplit(":", 1)[-1])
        except Exception as exc:  # a destination we cannot reach must not kill the thread
            log.error("%s: could not send the failed event to %s: %s", function, arn, exc)

    def stop(self, timeout: float = 1.0) -> None:
        """Pending retries are dropped; an attempt still running ends when its pool closes."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout / max(len(threads), 1))
