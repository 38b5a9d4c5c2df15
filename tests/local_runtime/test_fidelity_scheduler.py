"""EventBridge Scheduler's RetryPolicy and DeadLetterConfig (fidelity/scheduler/).

Scheduler invokes Lambda asynchronously, so two layers of failure handling exist in
AWS: Lambda's for a function error, Scheduler's for a hand-off that fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local_runtime.async_invoke import AsyncInvoker
from local_runtime.runtime import Runtime
from local_runtime.schedules import HandOffFailed, Scheduler
from local_runtime.template import LocalValues, Schedule, SchedulerDelivery, load
from local_runtime.workers import Outcome
from tests.local_runtime.conftest import http, lines, received, running
from tests.support import wait_for

FOLDER = Path(__file__).parent / "fidelity" / "scheduler"
DLQ = "arn:aws:sqs:us-east-1:123456789012:schedule-dlq"


@pytest.fixture(scope="module")
def scheduler_stack(tmp_path_factory, module_queue_database) -> Iterator[Runtime]:
    state_root = tmp_path_factory.mktemp("scheduler")
    with running(FOLDER, state_root, module_queue_database) as runtime:
        yield runtime


def _fire(runtime: Runtime, function: str, schedule: str) -> dict:
    status, _, body = http("POST", f"{runtime.api_url}/_local/schedules/{function}/{schedule}")
    assert status == 200
    return json.loads(body)


def test_a_function_error_is_lambdas_to_retry_never_the_schedules(scheduler_stack):
    # Given a schedule with MaximumRetryAttempts 0 and a DLQ, whose function always fails
    fired = _fire(scheduler_stack, "FailingFunction", "FailingSchedule")
    assert fired["error"]["errorType"] == "RuntimeError"

    # Then Lambda retries it twice and the function's DLQ gets the event ...
    dead = wait_for(lambda: received(scheduler_stack, "FunctionDeadLetters"))
    assert json.loads(dead[0]["Body"]) == {"from": "failing schedule"}
    attempts = lines(scheduler_stack.state_dir / "scheduler-FailingFunction.jsonl")
    assert len(attempts) == 3
    # ... and the schedule's DLQ gets nothing: Lambda had accepted the event.
    assert received(scheduler_stack, "ScheduleDeadLetters") == []


def test_a_target_that_does_not_exist_goes_to_the_schedules_dlq_with_its_attributes(
    scheduler_stack,
):
    fired = _fire(scheduler_stack, "deleted-function", "OrphanSchedule")
    assert fired["error"]["errorType"] == "ResourceNotFoundException"

    dead = wait_for(lambda: received(scheduler_stack, "ScheduleDeadLetters"))
    assert json.loads(dead[0]["Body"]) == {"from": "orphan schedule"}
    attributes = {k: v["StringValue"] for k, v in dead[0]["MessageAttributes"].items()}
    # Not retryable: no retries whatever the RetryPolicy, so no exhausted condition
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
    assert attributes["TARGET_ARN"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:deleted-function"
    )
    assert attributes["SCHEDULE_ARN"] == (
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/OrphanSchedule"
    )
    assert {"ERROR_MESSAGE", "EXECUTION_ID", "IS_PAYLOAD_TRUNCATED", "SCHEDULED_TIME"} <= set(
        attributes
    )


def test_a_schedule_whose_target_is_missing_is_named_at_start(scheduler_stack):
    report = "\n".join(scheduler_stack.not_run)

    assert "OrphanSchedule (AWS::Scheduler::Schedule): its target deleted-function" in report
    assert "goes to its DeadLetterConfig" in report


# The retry loop itself, with hand-offs that fail as a throttled Lambda does.


class _Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, arn: str, body: str, attributes: dict[str, Any]) -> None:
        self.messages.append((arn, body, attributes))


def _scheduler(sent: _Sent, delays: list[float]) -> Scheduler:
    invoker = AsyncInvoker({}, lambda name, event: Outcome("r", 0.0), sent)
    return Scheduler([], invoker, "us-east-1", delays)


def _schedule(**retry: Any) -> Schedule:
    delivery = SchedulerDelivery(
        target_arn="arn:aws:lambda:us-east-1:123456789012:function:busy",
        dead_letter_arn=DLQ,
        **retry,
    )
    return Schedule("busy", "Every", "rate(1 hour)", "{}", True, "arn:sched", delivery)


def _throttled() -> HandOffFailed:
    return HandOffFailed("TooManyRequestsException", "Rate exceeded", retryable=True)


def test_a_retryable_hand_off_is_retried_up_to_maximum_retry_attempts_then_dead_lettered():
    sent, tries = _Sent(), []

    def hand_off() -> Outcome:
        tries.append(1)
        raise _throttled()

    _scheduler(sent, [0.01]).retry(
        _schedule(max_retries=2), {}, datetime.now(UTC), _throttled(), hand_off
    )

    assert len(tries) == 2
    [(arn, body, attributes)] = sent.messages
    assert (arn, body) == (DLQ, "{}")
    assert attributes["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"]["StringValue"] == "2"
    assert attributes["ERROR_CODE"]["StringValue"] == "TooManyRequestsException"


def test_retries_stop_when_the_next_would_outlive_maximum_event_age():
    sent, tries = _Sent(), []

    def hand_off() -> Outcome:
        tries.append(1)
        raise _throttled()

    _scheduler(sent, [0.05, 10.0]).retry(
        _schedule(max_retries=185, max_event_age_seconds=1.0),
        {},
        datetime.now(UTC),
        _throttled(),
        hand_off,
    )

    assert len(tries) == 1  # the second wait (10 s) would pass the event's age
    [(_, _, attributes)] = sent.messages
    assert attributes["EXHAUSTED_RETRY_CONDITION"]["StringValue"] == "MaximumEventAgeInSeconds"
    assert attributes["RETRY_ATTEMPTS"]["StringValue"] == "1"


def test_a_hand_off_that_succeeds_on_retry_sends_nothing_to_the_dlq():
    sent, tries = _Sent(), []

    def hand_off() -> Outcome:
        tries.append(1)
        if len(tries) < 3:
            raise _throttled()
        return Outcome("ok", 1.0)

    _scheduler(sent, [0.01]).retry(_schedule(), {}, datetime.now(UTC), _throttled(), hand_off)

    assert len(tries) == 3 and sent.messages == []


def test_a_schedule_dlq_that_is_not_a_queue_of_the_template_is_named(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "template.yaml").write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Job:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: code/, Handler: app.handler, Runtime: python3.11}\n"
        "  Nightly:\n"
        "    Type: AWS::Scheduler::Schedule\n"
        "    Properties:\n"
        "      ScheduleExpression: rate(1 day)\n"
        "      FlexibleTimeWindow: {Mode: 'OFF'}\n"
        "      Target:\n"
        "        Arn: !GetAtt Job.Arn\n"
        "        RoleArn: arn:aws:iam::123456789012:role/scheduler\n"
        "        DeadLetterConfig: {Arn: 'arn:aws:sqs:us-east-1:123456789012:elsewhere'}\n"
    )
    local = LocalValues(region="us-east-1", api_url="http://127.0.0.1:3000", aws_endpoint_url="x")

    topology = load(tmp_path / "template.yaml").topology(local)

    assert topology.not_run == [
        "Nightly: its DeadLetterConfig arn:aws:sqs:us-east-1:123456789012:elsewhere is not a"
        " queue of the template; locally a failed hand-off is logged and dropped"
    ]
