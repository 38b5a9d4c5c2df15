"""The SQS trigger's rules and the schedule expressions, with a fake queue and fixed times."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from local_runtime.schedules import ScheduleError, next_fire
from local_runtime.sqs import Backlog, Poller, failed_ids
from local_runtime.template import Queue, QueueTrigger
from local_runtime.workers import Outcome


class FakeSqs:
    """Hands out prepared receives, one list per call; records what it was asked."""

    def __init__(self, *receives: list[str]) -> None:
        self.receives = [list(r) for r in receives]
        self.asked: list[dict] = []
        self.deleted: list[str] = []

    def receive_message(self, **kwargs):
        self.asked.append(kwargs)
        bodies = self.receives.pop(0) if self.receives else []
        return {"Messages": [_message(body) for body in bodies]}

    def delete_message_batch(self, QueueUrl, Entries):  # boto3's names
        self.deleted += [e["ReceiptHandle"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


def _message(body: str) -> dict:
    return {
        "MessageId": body,
        "ReceiptHandle": "handle-" + body,
        "Body": body,
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
    }


def _poller(client, *, batch_size=5, window=0.0, report=True, result=None, error=None, **scaling):
    invoked: list[dict] = []

    def invoke(function, event):
        invoked.append(event)
        return Outcome("id", 1.0, result=result, error=error)

    trigger = QueueTrigger("Fn", "Queue", "Q", batch_size, window, report, True)
    queue = Queue("Q", "q", "arn:aws:sqs:us-east-1:123456789012:q", {}, None, None)
    poller = Poller(trigger, queue, "url", client, invoke, "us-east-1", **scaling)
    return poller, invoked


def test_without_a_window_the_first_receive_is_the_batch():
    client = FakeSqs(["a", "b"], ["c"])
    poller, _ = _poller(client)

    assert [m["Body"] for m in poller._gather()] == ["a", "b"]


def test_a_window_gathers_up_to_the_batch_size_and_asks_only_for_what_fits():
    client = FakeSqs(["a"], ["b", "c"], [], ["d", "e"], ["f"])
    poller, _ = _poller(client, window=5)

    batch = poller._gather()

    assert [m["Body"] for m in batch] == ["a", "b", "c", "d", "e"]
    assert [ask["MaxNumberOfMessages"] for ask in client.asked] == [5, 4, 2, 2]


def test_a_window_ends_a_partial_batch():
    client = FakeSqs(["a"])
    poller, _ = _poller(client, window=0.01)

    assert [m["Body"] for m in poller._gather()] == ["a"]


class ScriptedBacklog(Backlog):
    """Answers its waits from a script (no backlog, then one); records what it was told."""

    def __init__(self, *answers: bool) -> None:
        super().__init__()
        self.answers = list(answers)
        self.told: list[tuple[int, int]] = []

    def wait(self, timeout: float) -> bool:
        return self.answers.pop(0)

    def received(self, batch: list[dict], batch_size: int) -> None:
        self.told.append((len(batch), batch_size))


class StoppingSqs(FakeSqs):
    """A FakeSqs that stops its poller once it has handed out every prepared receive."""

    poller: Poller

    def receive_message(self, **kwargs):
        answer = super().receive_message(**kwargs)
        if not self.receives:
            self.poller.stop()
        return answer


def test_a_scaling_poller_receives_only_once_its_trigger_has_a_backlog():
    client = StoppingSqs(["a", "b", "c", "d", "e"])
    backlog = ScriptedBacklog(False, False, True)
    poller, invoked = _poller(client, backlog=backlog, scales=True)
    client.poller = poller

    poller._run()

    assert backlog.answers == []  # asked three times: no backlog twice, then one
    assert len(client.asked) == 1 and len(invoked) == 1
    assert backlog.told == [(5, 5)]  # a full batch: the backlog goes on


def test_a_standing_poller_receives_without_waiting_and_reports_a_short_batch():
    client = StoppingSqs(["a", "b"])
    backlog = ScriptedBacklog()  # a wait would fail: nothing scripted
    poller, invoked = _poller(client, backlog=backlog)
    client.poller = poller

    poller._run()

    assert len(invoked) == 1 and backlog.told == [(2, 5)]


def _sent(seconds_ago: float, count: int) -> list[dict]:
    sent = str(int((time.time() - seconds_ago) * 1000))
    return [{"MessageId": str(i), "Attributes": {"SentTimestamp": sent}} for i in range(count)]


def test_a_backlog_is_a_full_last_batch_of_messages_that_waited():
    backlog = Backlog()
    assert backlog.wait(0) is False
    backlog.received(_sent(30, 10), 10)
    assert backlog.wait(0) is True
    backlog.received(_sent(30, 9), 10)  # short: the queue is empty
    assert backlog.wait(0) is False
    backlog.received(_sent(30, 10), 10)
    backlog.received(_sent(0.05, 10), 10)  # full, but sent just now: keeping pace
    assert backlog.wait(0) is False


def test_only_the_reported_failures_stay_queued():
    client = FakeSqs()
    poller, invoked = _poller(client, result={"batchItemFailures": [{"itemIdentifier": "b"}]})

    poller._process([_message(b) for b in "abc"])

    assert client.deleted == ["handle-a", "handle-c"]
    assert poller.outstanding == {}  # nothing was received through _gather here
    record = invoked[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:q"


@pytest.mark.parametrize(
    ("result", "error", "report", "failed"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, None, True, {"a"}),
        ({"batchItemFailures": []}, None, True, set()),
        (None, None, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, None, True, {"a", "b"}),
        ({"batchItemFailures": [{}]}, None, True, {"a", "b"}),
        ("not an object", None, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, None, False, set()),
        (None, {"errorType": "RuntimeError"}, True, {"a", "b"}),
        (None, {"errorType": "Sandbox.Timedout"}, False, {"a", "b"}),
    ],
    ids=[
        "reported",
        "empty-list",
        "null",
        "unknown-id",
        "no-id",
        "not-an-object",
        "not-reporting",
        "raised",
        "timed-out",
    ],
)
def test_lambdas_rules_for_what_stays_queued(result, error, report, failed):
    outcome = Outcome("id", 1.0, result=result, error=error)

    assert failed_ids(outcome, {"a", "b"}, report) == failed


START = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(5 minutes)", START, datetime(2026, 3, 2, 10, 5, 30, tzinfo=UTC)),
        (
            "rate(1 hour)",
            datetime(2026, 3, 2, 11, 0, 31, tzinfo=UTC),
            datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC),
        ),
        ("cron(0 3 * * ? *)", START, datetime(2026, 3, 3, 3, 0, tzinfo=UTC)),
        ("cron(0/15 * ? * MON-FRI *)", START, datetime(2026, 3, 2, 10, 15, tzinfo=UTC)),
        ("cron(0 12 ? * SAT *)", START, datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
        # EventBridge counts days of the week from 1 = Sunday: 7 is Saturday
        ("cron(0 12 ? * 7 *)", START, datetime(2026, 3, 7, 12, 0, tzinfo=UTC)),
        ("cron(0 12 ? * 2-6 *)", START, datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),
        ("cron(0 9 ? * 2#1 *)", START, datetime(2026, 4, 6, 9, 0, tzinfo=UTC)),  # 1st Monday
        ("cron(0 9 ? * 6L *)", START, datetime(2026, 3, 27, 9, 0, tzinfo=UTC)),  # last Friday
        ("cron(0 3 L * ? *)", START, datetime(2026, 3, 31, 3, 0, tzinfo=UTC)),
        ("cron(0 3 14W * ? *)", START, datetime(2026, 3, 13, 3, 0, tzinfo=UTC)),  # a Saturday
        ("cron(0 3 1 1 ? 2028)", START, datetime(2028, 1, 1, 3, 0, tzinfo=UTC)),
        ("at(2026-03-02T11:00:00)", START, datetime(2026, 3, 2, 11, 0, tzinfo=UTC)),
        ("at(2026-03-01T11:00:00)", START, None),
    ],
)
def test_schedule_expressions(expression, after, expected):
    assert next_fire(expression, after, START) == expected


@pytest.mark.parametrize(
    "expression",
    ["rate(0 minutes)", "cron(0 3 * *)", "cron(0 3 1 * 2 *)", "cron(0 3 32 * ? *)", "every day"],
)
def test_unsupported_schedule_expressions_are_refused(expression):
    with pytest.raises((ScheduleError, ValueError)):
        next_fire(expression, START, START)


@pytest.fixture(scope="module")
def local_queue_endpoint(postgres_server_url):
    from local_queue import QueueServer
    from tests.support import scratch_database

    with scratch_database(postgres_server_url, "triggers") as url, QueueServer(url) as server:
        yield server.endpoint_url


def test_pollers_speak_to_local_queue_without_botocore_and_keep_sqs_semantics(
    local_queue_endpoint,
):
    # Given the runtime's unsigned client of its local_queue, counting what botocore sends
    import uuid

    from local_runtime.sqs import sqs_client

    client = sqs_client(local_queue_endpoint, "us-east-1", signed=False)
    suffix = uuid.uuid4().hex[:8]
    dlq = client.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = client.create_queue(
        QueueName=f"q-{suffix}",
        Attributes={
            "VisibilityTimeout": "0",  # a failed message is visible again at once
            "RedrivePolicy": f'{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}',
        },
    )["QueueUrl"]
    for body in "abc":
        client.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        )
    sent_by_botocore: list[str] = []
    client.meta.events.register(
        "before-send.sqs.*", lambda request, **_: sent_by_botocore.append(request.url)
    )
    invoked: list[dict] = []

    def invoke(function, event):
        invoked.append(event)
        return Outcome("id", 1.0, result={"batchItemFailures": [{"itemIdentifier": failing}]})

    trigger = QueueTrigger("Fn", "Queue", "Q", 10, 0.0, True, True)
    queue = Queue(
        "Q", f"q-{suffix}", f"arn:aws:sqs:us-east-1:000000000000:q-{suffix}", {}, None, None
    )
    poller = Poller(trigger, queue, url, client, invoke, "us-east-1")

    # When a batch reports message "b" failed, twice
    batch = poller._gather()
    failing = next(m["MessageId"] for m in batch if m["Body"] == "b")
    poller._process(batch)
    again = poller._gather()
    poller._process(again)
    third = poller._gather()

    # Then "a" and "c" were deleted, "b" came back with its receive count and then went
    # to the dead-letter queue; and botocore sent nothing for the poller
    assert sorted(m["Body"] for m in batch) == ["a", "b", "c"]
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [("b", "2")]
    assert third == []
    assert sent_by_botocore == []
    record = invoked[0]["Records"][0]
    assert record["messageAttributes"]["raw"]["binaryValue"] == "AAE="  # base64, as Lambda's
    dead = client.receive_message(QueueUrl=dlq, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in dead] == ["b"]


def test_pollers_of_another_sqs_endpoint_keep_boto3():
    from local_runtime.sqs import sqs_client

    signed = sqs_client("http://127.0.0.1:9", "us-east-1", signed=True)
    trigger = QueueTrigger("Fn", "Queue", "Q", 10, 0.0, True, True)
    queue = Queue("Q", "q", "arn:aws:sqs:us-east-1:000000000000:q", {}, None, None)

    assert Poller(trigger, queue, "url", signed, lambda *_: None, "us-east-1").client is signed
