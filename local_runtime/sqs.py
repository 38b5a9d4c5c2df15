"""SQS triggers run as Lambda's event source mapping runs them, over the SQS API.

Queues are made through a boto3 client pointed at the local endpoint, so the
endpoint can be anything that speaks the same API subset. The pollers' own three
calls (receive, delete, release) go to the local_queue the runtime started as plain
JSON over one kept-alive connection each (`toolkit.local_queue_client`): botocore's
serialising, hooks and parsing cost more CPU than local_queue's whole answer.
Another SQS endpoint (`--sqs-endpoint-url`) keeps boto3.
"""

from __future__ import annotations

import base64
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from local_runtime.template import Queue, QueueTrigger
from local_runtime.workers import Outcome
from toolkit.local_queue_client import LocalQueueClient

log = logging.getLogger("local_runtime")

MAX_RECEIVE = 10  # SQS's limit per ReceiveMessage


def sqs_client(endpoint_url: str, region: str, *, signed: bool = True):
    """A client for the local endpoint only: fixed credentials, never the developer's AWS ones.

    The pollers make two calls per batch, and each call's SigV4 signature and
    parameter check cost ~0.27 ms of its ~0.94 ms of the runtime's CPU.
    local_queue checks neither, so its client skips both (`signed=False`);
    another endpoint (moto reads the region from the signature) gets signed calls.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        read_timeout=30,
        parameter_validation=False,  # the runtime builds every request itself
    )
    if not signed:
        config = config.merge(Config(signature_version=UNSIGNED))
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto accepts anything
        config=config,
    )


def poller_client(client: Any) -> Any:
    """What a poller calls: a LocalQueueClient for the local_queue the runtime started
    (its boto3 client is the unsigned one, see `sqs_client`), else the client given."""
    meta = getattr(client, "meta", None)
    if meta is not None and meta.config.signature_version is UNSIGNED:
        return LocalQueueClient(meta.endpoint_url)
    return client


def create_queues(client, queues: dict[str, Queue]) -> dict[str, str]:
    """Creates each queue (dead-letter targets first); returns logical id -> URL."""
    urls = {}
    for queue in queues.values():
        try:
            url = client.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
        except client.exceptions.QueueNameExists:
            # Kept from the last start (local_queue is durable) with attributes the
            # template or settings have changed since: updated, as a deploy would.
            url = client.get_queue_url(QueueName=queue.name)["QueueUrl"]
            changeable = {k: v for k, v in queue.attributes.items() if k != "FifoQueue"}
            client.set_queue_attributes(QueueUrl=url, Attributes=changeable)
        urls[queue.logical_id] = url
    return urls


def lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda's SQS trigger passes it (lower-camel message attributes)."""
    attributes = {
        key: value
        for key, value in message.get("Attributes", {}).items()
        if key
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "AWSTraceHeader",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "DeadLetterQueueSourceArn",
        )
    }
    message_attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        converted: dict[str, Any] = {
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value["DataType"],
        }
        if "StringValue" in value:
            converted["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            binary = value["BinaryValue"]  # bytes from boto3, base64 from LocalQueueClient
            converted["binaryValue"] = (
                binary if isinstance(binary, str) else base64.b64encode(binary).decode()
            )
        message_attributes[name] = converted
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record.update(eventSource="aws:sqs", eventSourceARN=queue_arn, awsRegion=region)
    return record


def failed_ids(outcome: Outcome, batch_ids: set[str], report_item_failures: bool) -> set[str]:
    """The messages that stay queued after an invocation, by Lambda's rules."""
    if not outcome.ok:
        return set(batch_ids)  # an error or a timeout: the whole batch comes back
    if not report_item_failures:
        return set()
    result = outcome.result
    if result is None:
        return set()
    if not isinstance(result, dict):
        return set(batch_ids)
    items = result.get("batchItemFailures")
    if not items:
        return set()  # null or an empty list: everything succeeded
    failed = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch_ids:
            # Lambda treats a malformed response as a failure of the whole batch.
            return set(batch_ids)
        failed.add(identifier)
    return failed


def hold_fifo_groups(batch: list[dict[str, Any]], failed: set[str]) -> set[str]:
    """On a FIFO queue Lambda stops a message group at its first failure: the group's
    later messages in the batch stay queued too, so the group keeps its order."""
    stopped: set[str] = set()
    held = set(failed)
    for message in batch:
        group = message.get("Attributes", {}).get("MessageGroupId")
        if group in stopped:
            held.add(message["MessageId"])
        elif message["MessageId"] in failed:
            stopped.add(group)
    return held


class Backlog:
    """What a trigger's pollers last received: a full batch of messages that waited.

    Lambda scales an SQS trigger's batches in flight up while its queue has a backlog
    and down when it has none. Here the pollers past the standing ones (a 2-core laptop
    gets two) wait while the last batch any poller received was short, or full of
    messages sent less than BEHIND_SECONDS before: a backlog runs up to
    MaximumConcurrency batches at once, while single events at a few hundred a second,
    which fill a batch now and then within milliseconds, keep to two, whose commits cost
    PostgreSQL less per event than three emptier ones.
    """

    BEHIND_SECONDS = 1.0

    def __init__(self) -> None:
        self._behind = threading.Event()

    def received(self, batch: list[dict[str, Any]], batch_size: int) -> None:
        if len(batch) >= batch_size and self._waited(batch) > self.BEHIND_SECONDS:
            self._behind.set()
        else:
            self._behind.clear()

    @staticmethod
    def _waited(batch: list[dict[str, Any]]) -> float:
        """Seconds since the batch's oldest message was sent (0 if no message says)."""
        sent = [
            int(m["Attributes"]["SentTimestamp"])
            for m in batch
            if "SentTimestamp" in m.get("Attributes", {})
        ]
        return time.time() - min(sent) / 1000 if sent else 0.0

    def wait(self, timeout: float) -> bool:
        """Whether the queue has a backlog, waiting up to `timeout` seconds for one."""
        return self._behind.wait(timeout)


class Poller:
    """One SQS trigger: receives up to BatchSize within the window, invokes, deletes successes.

    Every poller tells the trigger's `backlog` what it received; one that `scales` polls
    only while the trigger's batches say the queue is behind (see Backlog).
    """

    def __init__(
        self,
        trigger: QueueTrigger,
        queue: Queue,
        queue_url: str,
        client,
        invoke: Callable[[str, Any], Outcome],
        region: str,
        backlog: Backlog | None = None,
        scales: bool = False,
    ) -> None:
        self.trigger = trigger
        self.queue = queue
        self.queue_url = queue_url
        self.client = poller_client(client)
        self.invoke = invoke
        self.region = region
        self.backlog = backlog or Backlog()
        self.scales = scales  # polls only while the trigger's batches say it is behind
        self._stop = threading.Event()
        self._drain_until: float | None = None
        self._thread: threading.Thread | None = None
        # Received and not deleted: made visible again at stop, so the save sees them.
        self.outstanding: dict[str, str] = {}  # message id -> receipt handle
        self.idle = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"poller-{self.trigger.function}", daemon=True
        )
        self._thread.start()

    def drain(self, deadline: float) -> None:
        """Keeps invoking until a receive comes back empty or the deadline passes, then stops."""
        self._drain_until = deadline

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _draining_done(self) -> bool:
        return self._drain_until is not None and time.monotonic() >= self._drain_until

    def _run(self) -> None:
        while not self._stop.is_set() and not self._draining_done():
            if self.scales and self._drain_until is None and not self.backlog.wait(1):
                continue  # a second's wait, so a stop is noticed
            try:
                batch = self._gather()
            except (BotoCoreError, ClientError) as exc:
                if self._stop.is_set():
                    return
                log.warning("poller %s: receive failed: %s", self.trigger.function, exc)
                self._stop.wait(1)
                continue
            self.backlog.received(batch, self.trigger.batch_size)
            if not batch:
                if self._drain_until is not None:
                    return  # drained: nothing visible is left
                continue
            try:
                self._process(batch)
            except (BotoCoreError, ClientError) as exc:
                # Not deleted: the messages come back after their visibility timeout.
                log.warning("poller %s: delete failed: %s", self.trigger.function, exc)

    def _gather(self) -> list[dict[str, Any]]:
        """Up to BatchSize messages: the first receive waits for any, then the window fills it."""
        batch: list[dict[str, Any]] = []
        window_end = None
        size = self.trigger.batch_size
        while len(batch) < size and not self._stop.is_set():
            if batch:
                remaining = window_end - time.monotonic()
                if remaining <= 0 or self.trigger.window_seconds == 0:
                    break
                wait = min(20, math.ceil(remaining))
            else:
                # Short long-polls while idle, so a stop or a drain is noticed quickly.
                wait = 0 if self._drain_until is not None else 1
            messages = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(MAX_RECEIVE, size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                if not batch:
                    return batch
                continue
            if not batch:
                window_end = time.monotonic() + self.trigger.window_seconds
            for message in messages:
                self.outstanding[message["MessageId"]] = message["ReceiptHandle"]
            batch.extend(messages)
        return batch

    def _process(self, batch: list[dict[str, Any]]) -> None:
        records = [lambda_record(m, self.queue.arn, self.region) for m in batch]
        outcome = self.invoke(self.trigger.function, {"Records": records})
        ids = {m["MessageId"] for m in batch}
        failed = failed_ids(outcome, ids, self.trigger.report_item_failures)
        if self.queue.fifo:
            failed = hold_fifo_groups(batch, failed)
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), MAX_RECEIVE):
            chunk = done[start : start + MAX_RECEIVE]
            self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        for message in done:
            self.outstanding.pop(message["MessageId"], None)
        log.info(
            "invoke   %s %s %d messages, %d failed %.0f ms%s",
            self.trigger.function,
            "ok" if outcome.ok else outcome.error["errorType"],
            len(batch),
            len(failed),
            outcome.duration_ms,
            " (cold)" if outcome.cold else "",
        )

    def release_outstanding(self) -> int:
        """Makes every message this poller holds visible again; returns how many."""
        handles = list(self.outstanding.values())
        for start in range(0, len(handles), MAX_RECEIVE):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + MAX_RECEIVE])
            ]
            try:
                self.client.change_message_visibility_batch(
                    QueueUrl=self.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError) as exc:
                log.warning("could not release messages: %s", exc)
        self.outstanding.clear()
        return len(handles)
