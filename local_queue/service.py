"""The SQS operations: request dicts in, response dicts out, SQS's rules in between.

Queues are cached in memory (this process is their only writer); messages live
only in PostgreSQL. Long polls wait on a per-queue counter that every commit adding
visible messages bumps, and wake early when the next invisible message is due.

FIFO queues (`.fifo` names) keep each message group in order and hand out one batch
of a group at a time; their sends are deduplicated for SQS's 5 minutes and commit
one request at a time under the queue's row lock (sequence numbers follow commits).
A standard queue keeps a MessageGroupId too (SQS's fair queues) and delivers it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from local_queue import errors, queue_database
from local_queue.messages import (
    attributes_md5,
    body_md5,
    check_attributes,
    check_characters,
    select_attributes,
    stored_attributes,
)

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
SENDER_ID = "AIDALOCALQUEUE0000000"
MAX_BATCH_ENTRIES = 10
# SQS's limit for a message and for a whole SendMessageBatch since August 2025 (it was 256 KiB).
MAX_PAYLOAD_BYTES = 1_048_576
MAX_VISIBILITY_TIMEOUT = 43_200
MAX_WAIT_SECONDS = 20
DEDUPLICATION_WINDOW_MS = 300_000  # SQS's deduplication interval: 5 minutes

# Settable attributes and their defaults (SQS's), as strings as the API carries them.
DEFAULTS = {
    "DelaySeconds": "0",
    "MaximumMessageSize": str(MAX_PAYLOAD_BYTES),
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
}
RANGES = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, MAX_PAYLOAD_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, MAX_WAIT_SECONDS),
    "VisibilityTimeout": (0, MAX_VISIBILITY_TIMEOUT),
}
# A FIFO queue's own settings, SQS's defaults and the values SQS accepts.
FIFO_DEFAULTS = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "false",
    "DeduplicationScope": "queue",
    "FifoThroughputLimit": "perQueue",
}
FIFO_VALUES = {
    "ContentBasedDeduplication": ("true", "false"),
    "DeduplicationScope": ("messageGroup", "queue"),
    # SQS's throughput quota: nothing to enforce locally, but the value is checked.
    "FifoThroughputLimit": ("perQueue", "perMessageGroupId"),
}
# Accepted and echoed back, with no effect here.
PASSIVE = (
    "Policy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
COMPUTED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "QueueArn",
)
SYSTEM_ATTRIBUTES = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "DeadLetterQueueSourceArn",
    "MessageGroupId",
    "MessageDeduplicationId",
    "SequenceNumber",
)
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_FIFO_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,75}\.fifo$")
# MessageGroupId and MessageDeduplicationId: 1 to 128 ASCII letters, digits, punctuation.
_MESSAGE_TOKEN = re.compile(r"^[!-~]{1,128}$")
_ENTRY_ID = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


@dataclass
class Queue:
    id: int
    name: str
    attributes: dict[str, str]
    created_at: int
    modified_at: int

    def number(self, name: str) -> int:
        return int(self.attributes.get(name, DEFAULTS[name]))

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"

    def fifo_setting(self, name: str) -> str:
        return self.attributes.get(name, FIFO_DEFAULTS[name])

    @property
    def redrive(self) -> tuple[str, int] | None:
        """(dead-letter queue name, maxReceiveCount), if set."""
        policy = self.attributes.get("RedrivePolicy")
        if not policy:
            return None
        parsed = json.loads(policy)
        return parsed["deadLetterTargetArn"].rsplit(":", 1)[-1], int(parsed["maxReceiveCount"])


@dataclass
class MoveTask:
    handle: str
    source_arn: str
    destination_arn: str | None
    started: int
    moved: int
    status: str = "COMPLETED"


# Runs a blocking call (database work) in the server's threads, for the loop to await.
Run = Callable[..., Awaitable[Any]]


class _Arrivals:
    """Per-queue counters of commits that made messages visible, for long polls to await.

    Long polls wait on the server's event loop, not in a thread each: a poll that found
    nothing awaits an asyncio event of its own. Commits happen in other threads (the
    send writer, the database pool's), which bump the queue's counter and, only if a
    poll of that queue is waiting, wake it through the loop. A commit wakes only the
    long polls of the queues it touched, and of a standard queue only the one that
    waited longest: the others would find nothing left (the store's two pollers woke
    together on every send, and one of them always came back empty). A poll that takes
    a full batch passes the wake-up on (`bump` again), so a commit of many messages
    still reaches as many polls as it needs. A FIFO queue's polls all wake: a freed
    group is for whichever asks first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[int, int] = {}
        self._waiting: dict[int, int] = {}  # queue id -> long polls awaiting it
        self._waiters: dict[int, deque[asyncio.Event]] = {}  # touched on the loop only
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stopping = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def seen(self, queue_id: int) -> int:
        return self._counters.get(queue_id, 0)

    def waiting(self) -> int:
        """Long polls awaiting messages now."""
        with self._lock:
            return sum(self._waiting.values())

    def bump(self, queue_ids: set[int], *, everyone: bool = False) -> None:
        """Any thread: the queues gained visible messages; wakes one poll of each, or all."""
        if not queue_ids:
            return
        with self._lock:
            for queue_id in queue_ids:
                self._counters[queue_id] = self._counters.get(queue_id, 0) + 1
            awaited = [q for q in queue_ids if self._waiting.get(q)]
        if awaited and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake, awaited, everyone)

    def _wake(self, queue_ids: list[int], everyone: bool) -> None:
        for queue_id in queue_ids:
            waiters = self._waiters.get(queue_id)
            while waiters:
                waiters.popleft().set()
                if not everyone:
                    break

    async def wait(self, queue_id: int, seen: int, timeout: float) -> None:
        """On the loop: returns once woken after the queue's counter moved past `seen`,
        or after `timeout`."""
        with self._lock:
            if self.stopping or self._counters.get(queue_id, 0) != seen:
                return
            self._waiting[queue_id] = self._waiting.get(queue_id, 0) + 1
        event = asyncio.Event()
        waiters = self._waiters.setdefault(queue_id, deque())
        waiters.append(event)
        try:
            async with asyncio.timeout(timeout):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            if not event.is_set():
                waiters.remove(event)
            with self._lock:
                self._waiting[queue_id] -= 1

    def stop(self) -> None:
        """Any thread: every long poll returns now."""
        with self._lock:
            self.stopping = True
            queue_ids = list(self._waiting)
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wake, queue_ids, True)
            except RuntimeError:
                pass  # the loop has stopped: nothing waits on it


def _int_param(request: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = request.get(name)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise errors.invalid_value(name, value, f"must be between {low} and {high}, if provided.")
    return value


def _required(request: dict[str, Any], name: str) -> Any:
    value = request.get(name)
    if value is None:
        raise errors.missing_parameter(name)
    return value


def _encode_handle(queue_id: int, seq: int, receipt: str) -> str:
    raw = f"{queue_id}:{seq}:{receipt}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_handle(queue: Queue, handle: Any) -> tuple[int, str]:
    if not isinstance(handle, str) or not handle:
        raise errors.missing_parameter("ReceiptHandle")
    try:
        raw = base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)).decode()
        queue_id, seq, receipt = raw.split(":")
        if int(queue_id) != queue.id:
            raise ValueError(queue_id)
        return int(seq), receipt
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.receipt_handle_invalid(handle) from None


def _message_token(entry: dict[str, Any], name: str) -> str | None:
    """MessageGroupId or MessageDeduplicationId, checked as SQS checks them."""
    value = entry.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not _MESSAGE_TOKEN.match(value):
        raise errors.invalid_value(
            name,
            value,
            f"{name} can only include alphanumeric and punctuation characters. 1 to 128 in length.",
        )
    return value


def _not_for_this_queue_type(name: str, value: Any) -> errors.SqsError:
    return errors.invalid_value(
        name, value, "The request include parameter that is not valid for this queue type."
    )


def _sequence_number(seq: int) -> str:
    """SQS's sequence numbers are 20-digit strings; these grow with every FIFO send."""
    return f"{seq:020d}"


def _check_batch(entries: Any, action: str) -> list[dict[str, Any]]:
    if not entries:
        raise errors.empty_batch(action)
    if len(entries) > MAX_BATCH_ENTRIES:
        raise errors.too_many_entries(len(entries))
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id")
        if not isinstance(entry_id, str) or not _ENTRY_ID.match(entry_id):
            raise errors.invalid_batch_entry_id()
        if entry_id in seen:
            raise errors.ids_not_distinct(entry_id)
        seen.add(entry_id)
    return entries


class SqsService:
    def __init__(
        self,
        database_url: str,
        *,
        account_id: str = ACCOUNT_ID,
        region: str = REGION,
        pool_size: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.account_id = account_id
        self.region = region
        self._clock = clock  # epoch seconds; a test's clock moves through the dedup window
        queue_database.ensure_schema(database_url)
        self._pool = queue_database.ConnectionPool(database_url, pool_size, durable=False)
        self._arrivals = _Arrivals()
        self._receives = 0  # counted on the loop
        self._writer = queue_database.SendWriter(database_url, self._arrivals.bump)
        self._queues_lock = threading.Lock()
        self._queues: dict[str, Queue] = {}
        self._move_tasks: list[MoveTask] = []
        with self._pool.connection() as conn:
            for queue_id, name, attributes, created, modified in queue_database.load_queues(conn):
                self._queues[name] = Queue(queue_id, name, attributes, created, modified)
        self._writer.start()
        self.operations: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
            name: getattr(self, name)
            for name in (
                "CreateQueue",
                "GetQueueUrl",
                "ListQueues",
                "GetQueueAttributes",
                "SetQueueAttributes",
                "DeleteQueue",
                "PurgeQueue",
                "DeleteMessage",
                "DeleteMessageBatch",
                "ChangeMessageVisibility",
                "ChangeMessageVisibilityBatch",
                "ListDeadLetterSourceQueues",
                "StartMessageMoveTask",
                "ListMessageMoveTasks",
            )
        }
        # Awaited on the server's loop: sends wait for their group commit, receives
        # for messages, and neither holds a thread meanwhile; `run` hands the database
        # work to the server's threads.
        self.async_operations: dict[
            str, Callable[[dict[str, Any], str, Run], Awaitable[dict[str, Any]]]
        ] = {
            "SendMessage": self.SendMessage,
            "SendMessageBatch": self.SendMessageBatch,
            "ReceiveMessage": self.ReceiveMessage,
        }

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop long polls and sends await on."""
        self._arrivals.bind(loop)

    def stats(self) -> dict[str, Any]:
        """Sends (requests), messages and the commits that stored them (group commit at
        work), receives' looks at the database, and the long polls waiting now."""
        return {
            "sends": self._writer.stats(),
            "receives": self._receives,  # ReceiveMessage's looks at the database
            "long_polls": self._arrivals.waiting(),
        }

    def stop_waiting(self) -> None:
        """Long polls answer now (empty): the server is stopping."""
        self._arrivals.stop()

    def close(self) -> None:
        self._arrivals.stop()
        self._writer.stop()
        self._pool.close()

    # ------------------------------------------------------------ helpers
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account_id}:{name}"

    def _url(self, base: str, name: str) -> str:
        return f"{base}/{self.account_id}/{name}"

    def _queue(self, request: dict[str, Any]) -> Queue:
        url = _required(request, "QueueUrl")
        name = str(url).rstrip("/").rsplit("/", 1)[-1]  # a URL, or the bare name as SQS accepts
        queue = self._queues.get(name)
        if queue is None:
            raise errors.queue_does_not_exist()
        return queue

    def _by_arn(self, arn: Any) -> Queue | None:
        if not isinstance(arn, str) or not arn.startswith("arn:"):
            return None
        return self._queues.get(arn.rsplit(":", 1)[-1])

    def _normalize(self, attributes: Any, *, fifo: bool, creating: bool = False) -> dict[str, str]:
        """Validated queue attributes as stored; RedrivePolicy "" or "{}" means none.

        `fifo` is the queue's type: FIFO settings are unknown attributes of a standard
        queue, as in SQS. FifoQueue itself is only given to CreateQueue (`creating`).
        """
        if not isinstance(attributes, dict):
            raise errors.invalid_parameter("Attributes must be a map.")
        result: dict[str, str] = {}
        for name, value in attributes.items():
            if name == "FifoQueue" and creating:
                if fifo:
                    result[name] = "true"
                continue  # "false" asks for the standard queue a name without .fifo makes
            if name in FIFO_VALUES and fifo:
                text = str(value)
                if name == "ContentBasedDeduplication":
                    text = text.lower()  # a boolean: "True" reads as "true"
                if text not in FIFO_VALUES[name]:
                    raise errors.invalid_attribute_value(name)
                result[name] = text
            elif name in RANGES:
                low, high = RANGES[name]
                try:
                    number = int(value)
                except (TypeError, ValueError):
                    raise errors.invalid_attribute_value(name) from None
                if not low <= number <= high:
                    raise errors.invalid_attribute_value(name)
                result[name] = str(number)
            elif name == "RedrivePolicy":
                result[name] = self._redrive_policy(value, fifo)
            elif name in PASSIVE:
                result[name] = str(value)
            else:
                raise errors.invalid_attribute_name(name)
        return result

    @staticmethod
    def _check_throughput(attributes: dict[str, str]) -> None:
        """SQS allows FifoThroughputLimit perMessageGroupId only with messageGroup scope."""
        if (
            attributes.get("FifoThroughputLimit") == "perMessageGroupId"
            and attributes.get("DeduplicationScope", "queue") != "messageGroup"
        ):
            raise errors.invalid_attribute_value(
                "FifoThroughputLimit",
                "perMessageGroupId is allowed only when DeduplicationScope is messageGroup.",
            )

    def _redrive_policy(self, value: Any, fifo: bool) -> str:
        if value in ("", None):
            return ""
        try:
            policy = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            raise errors.invalid_value("RedrivePolicy", value, "Invalid JSON.") from None
        if policy == {}:
            return ""
        if not isinstance(policy, dict):
            raise errors.invalid_value(
                "RedrivePolicy", value, "Redrive policy is not a JSON object."
            )
        target = policy.get("deadLetterTargetArn")
        try:
            count = int(policy.get("maxReceiveCount"))
        except (TypeError, ValueError):
            count = 0
        if not 1 <= count <= 1000:
            raise errors.invalid_value(
                "RedrivePolicy",
                value,
                "Invalid value for maxReceiveCount: must be between 1 and 1000.",
            )
        dead_letter_queue = self._by_arn(target)
        if dead_letter_queue is None:
            raise errors.invalid_value("RedrivePolicy", value, "Dead letter target does not exist.")
        if dead_letter_queue.fifo != fifo:
            kind = "a FIFO" if fifo else "a standard"
            raise errors.invalid_value(
                "RedrivePolicy",
                value,
                f"The dead-letter queue of {kind} queue must also be {kind} queue.",
            )
        return json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": count}, separators=(",", ":")
        )

    # ------------------------------------------------------------ queues
    def CreateQueue(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        name = _required(request, "QueueName")
        requested = request.get("Attributes") or {}
        fifo = isinstance(requested, dict) and str(requested.get("FifoQueue")).lower() == "true"
        if fifo and not (isinstance(name, str) and _FIFO_QUEUE_NAME.match(name)):
            raise errors.invalid_parameter(
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, "
                "or underscores, must end with .fifo suffix and be 1 to 80 in length."
            )
        if not fifo and not (isinstance(name, str) and _QUEUE_NAME.match(name)):
            raise errors.invalid_parameter(
                "Can only include alphanumeric characters, hyphens, or underscores. "
                "1 to 80 in length"
            )
        attributes = {
            k: v for k, v in self._normalize(requested, fifo=fifo, creating=True).items() if v
        }
        self._check_throughput(attributes)
        with self._queues_lock:
            existing = self._queues.get(name)
            if existing is not None:
                defaults = {**DEFAULTS, **FIFO_DEFAULTS} if existing.fifo else DEFAULTS
                for key, value in attributes.items():
                    if existing.attributes.get(key, defaults.get(key)) != value:
                        raise errors.queue_name_exists(name)
                return {"QueueUrl": self._url(base, name)}
            now = int(self._clock())
            with self._pool.connection() as conn:
                queue_id = queue_database.insert_queue(conn, name, attributes, now)
            if queue_id is None:  # another server made it: this process's cache is stale
                raise errors.queue_name_exists(name)
            self._queues[name] = Queue(queue_id, name, attributes, now, now)
        return {"QueueUrl": self._url(base, name)}

    def GetQueueUrl(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        name = _required(request, "QueueName")
        if name not in self._queues:
            raise errors.queue_does_not_exist()
        return {"QueueUrl": self._url(base, name)}

    def ListQueues(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        prefix = request.get("QueueNamePrefix") or ""
        names = sorted(name for name in self._queues if name.startswith(prefix))
        limit = request.get("MaxResults")
        start = int(request.get("NextToken") or 0)
        if limit:
            page = names[start : start + int(limit)]
            result: dict[str, Any] = {"QueueUrls": [self._url(base, n) for n in page]}
            if start + int(limit) < len(names):
                result["NextToken"] = str(start + int(limit))
            return result
        return {"QueueUrls": [self._url(base, n) for n in names[:1000]]} if names else {}

    def GetQueueAttributes(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        names = request.get("AttributeNames") or []
        known = (
            set(DEFAULTS)
            | set(PASSIVE)
            | set(COMPUTED)
            | set(FIFO_DEFAULTS)
            | {"RedrivePolicy", "All"}
        )
        for name in names:
            if name not in known:
                raise errors.invalid_attribute_name(name)
        wanted = set(known) if "All" in names else set(names)
        attributes: dict[str, str] = {}
        for name in DEFAULTS:
            if name in wanted:
                attributes[name] = queue.attributes.get(name, DEFAULTS[name])
        for name in (*PASSIVE, "RedrivePolicy"):
            if name in wanted and queue.attributes.get(name):
                attributes[name] = queue.attributes[name]
        if queue.fifo:
            for name in FIFO_DEFAULTS:
                if name in wanted:
                    attributes[name] = queue.fifo_setting(name)
        if "QueueArn" in wanted:
            attributes["QueueArn"] = self.arn(queue.name)
        if "CreatedTimestamp" in wanted:
            attributes["CreatedTimestamp"] = str(queue.created_at)
        if "LastModifiedTimestamp" in wanted:
            attributes["LastModifiedTimestamp"] = str(queue.modified_at)
        if wanted & {
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        }:
            with self._pool.connection() as conn:
                visible, in_flight, delayed = queue_database.counts(conn, queue.id, self._now_ms())
            for name, value in (
                ("ApproximateNumberOfMessages", visible),
                ("ApproximateNumberOfMessagesNotVisible", in_flight),
                ("ApproximateNumberOfMessagesDelayed", delayed),
            ):
                if name in wanted:
                    attributes[name] = str(value)
        return {"Attributes": attributes} if attributes else {}

    def SetQueueAttributes(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        changes = self._normalize(_required(request, "Attributes"), fifo=queue.fifo)
        with self._queues_lock:
            attributes = {**queue.attributes, **changes}
            attributes = {k: v for k, v in attributes.items() if v}
            self._check_throughput(attributes)
            now = int(self._clock())
            with self._pool.connection() as conn:
                queue_database.update_queue(conn, queue.id, attributes, now)
            queue.attributes = attributes
            queue.modified_at = now
        return {}

    def DeleteQueue(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        with self._queues_lock:
            with self._pool.connection() as conn:
                queue_database.delete_queue(conn, queue.id)
            self._queues.pop(queue.name, None)
        return {}

    def PurgeQueue(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        with self._pool.connection() as conn:
            queue_database.purge(conn, queue.id)
        return {}

    def ListDeadLetterSourceQueues(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        dlq = self._queue(request)
        sources = sorted(
            q.name for q in list(self._queues.values()) if q.redrive and q.redrive[0] == dlq.name
        )
        return {"queueUrls": [self._url(base, name) for name in sources]}

    # ------------------------------------------------------------ sending
    def _message(self, queue: Queue, entry: dict[str, Any], now: int) -> queue_database.NewMessage:
        body = entry.get("MessageBody")
        if not isinstance(body, str) or not body:
            raise errors.missing_parameter("MessageBody")
        check_characters(body)
        attributes = entry.get("MessageAttributes") or {}
        size = len(body.encode("utf-8", "surrogatepass")) + check_attributes(attributes)
        limit = queue.number("MaximumMessageSize")
        if size > limit:
            raise errors.invalid_parameter(
                "One or more parameters are invalid. "
                f"Reason: Message must be shorter than {limit} bytes."
            )
        group_id = _message_token(entry, "MessageGroupId")
        dedup_id = _message_token(entry, "MessageDeduplicationId")
        if queue.fifo:
            if group_id is None:
                raise errors.missing_parameter("MessageGroupId")
            if dedup_id is None:
                if queue.fifo_setting("ContentBasedDeduplication") != "true":
                    raise errors.invalid_parameter(
                        "The queue should either have ContentBasedDeduplication enabled or "
                        "MessageDeduplicationId provided explicitly"
                    )
                # SQS hashes the body only, not the message attributes.
                dedup_id = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
            if entry.get("DelaySeconds"):
                raise _not_for_this_queue_type("DelaySeconds", entry["DelaySeconds"])
        elif dedup_id is not None:
            # A standard queue keeps a MessageGroupId (fair queues) but never deduplicates.
            raise _not_for_this_queue_type("MessageDeduplicationId", dedup_id)
        delay = _int_param(entry, "DelaySeconds", queue.number("DelaySeconds"), 0, 900)
        return queue_database.NewMessage(
            queue_id=queue.id,
            message_id=str(uuid.uuid4()),
            body=body,
            body_md5=body_md5(body),
            attributes=stored_attributes(attributes) if attributes else None,
            sent_at=now,
            visible_at=now + delay * 1000,
            group_id=group_id,
            dedup_id=dedup_id,
        )

    def _sent(
        self, message: queue_database.NewMessage, fifo: queue_database.FifoSent | None = None
    ) -> dict[str, Any]:
        result = {
            "MessageId": fifo.message_id if fifo else message.message_id,
            "MD5OfMessageBody": message.body_md5,
        }
        if message.attributes:
            result["MD5OfMessageAttributes"] = attributes_md5(message.attributes)
        if fifo:
            result["SequenceNumber"] = _sequence_number(fifo.seq)
        return result

    def _write_fifo(
        self, queue: Queue, messages: list[queue_database.NewMessage], now: int
    ) -> list[queue_database.FifoSent]:
        """A FIFO queue's send, deduplicated and numbered: committed alone, under the
        queue's row lock, so sequence numbers follow commits."""
        per_group = queue.fifo_setting("DeduplicationScope") == "messageGroup"
        scoped = [(m, (m.group_id or "") if per_group else "") for m in messages]
        with self._pool.connection() as conn:
            sent = queue_database.send_fifo(conn, scoped, now, now + DEDUPLICATION_WINDOW_MS)
        self._arrivals.bump({queue.id}, everyone=True)
        return sent

    async def _write(
        self, queue: Queue, messages: list[queue_database.NewMessage], now: int, run: Run
    ) -> list[queue_database.FifoSent] | list[None]:
        """Returns once the messages are committed (a standard queue's in the next group
        commit, with whatever else is waiting)."""
        if not queue.fifo:
            await self._writer.submit(messages)
            return [None] * len(messages)
        return await run(self._write_fifo, queue, messages, now)

    async def SendMessage(self, request: dict[str, Any], base: str, run: Run) -> dict[str, Any]:
        queue = self._queue(request)
        now = self._now_ms()
        message = self._message(queue, request, now)
        [fifo] = await self._write(queue, [message], now, run)
        return self._sent(message, fifo)

    async def SendMessageBatch(
        self, request: dict[str, Any], base: str, run: Run
    ) -> dict[str, Any]:
        queue = self._queue(request)
        entries = _check_batch(request.get("Entries"), "SendMessage")
        total = sum(
            len(str(e.get("MessageBody") or "").encode("utf-8", "surrogatepass")) for e in entries
        )
        if total > MAX_PAYLOAD_BYTES:
            raise errors.batch_too_long(MAX_PAYLOAD_BYTES, total)
        now = self._now_ms()
        accepted: list[tuple[str, queue_database.NewMessage]] = []
        failed = []
        for entry in entries:
            try:
                accepted.append((entry["Id"], self._message(queue, entry, now)))
            except errors.SqsError as exc:
                failed.append(exc.entry(entry["Id"]))
        written = (
            await self._write(queue, [message for _, message in accepted], now, run)
            if accepted
            else []
        )
        return {
            "Successful": [
                {"Id": entry_id, **self._sent(m, fifo)}
                for (entry_id, m), fifo in zip(accepted, written, strict=True)
            ],
            "Failed": failed,
        }

    # ------------------------------------------------------------ receiving
    async def ReceiveMessage(self, request: dict[str, Any], base: str, run: Run) -> dict[str, Any]:
        queue = self._queue(request)
        count = _int_param(request, "MaxNumberOfMessages", 1, 1, MAX_BATCH_ENTRIES)
        visibility = _int_param(
            request,
            "VisibilityTimeout",
            queue.number("VisibilityTimeout"),
            0,
            MAX_VISIBILITY_TIMEOUT,
        )
        wait = _int_param(
            request,
            "WaitTimeSeconds",
            queue.number("ReceiveMessageWaitTimeSeconds"),
            0,
            MAX_WAIT_SECONDS,
        )
        system_names = set(request.get("AttributeNames") or []) | set(
            request.get("MessageSystemAttributeNames") or []
        )
        attribute_names = request.get("MessageAttributeNames") or []
        deadline = time.monotonic() + wait
        while True:
            seen = self._arrivals.seen(queue.id)
            self._receives += 1
            delivered, due = await run(self._receive_once, queue, count, visibility, wait > 0)
            if len(delivered) == count and not queue.fifo:
                self._arrivals.bump({queue.id})  # maybe more left: the next poll looks too
            remaining = deadline - time.monotonic()
            if delivered or remaining <= 0 or self._arrivals.stopping:
                break
            if due is not None:
                remaining = min(remaining, max(0.0, due / 1000 - self._clock()) + 0.002)
            # Awaited on the loop: a long poll holds no thread while it waits.
            await self._arrivals.wait(queue.id, seen, remaining)
        messages = [self._delivered(queue, m, system_names, attribute_names) for m in delivered]
        return {"Messages": messages} if messages else {}

    def _receive_once(
        self, queue: Queue, count: int, visibility: int, want_due: bool
    ) -> tuple[list[tuple[queue_database.Delivered, str]], int | None]:
        redrive = None
        if queue.redrive:
            dlq = self._queues.get(queue.redrive[0])
            if dlq is not None:
                redrive = queue_database.Redrive(
                    dlq.id, queue.redrive[1], self.arn(queue.name), dlq.fifo
                )
        now = self._now_ms()
        receipt = secrets.token_hex(8)
        due = None
        with self._pool.connection() as conn:
            delivered, touched = queue_database.receive(
                conn,
                queue.id,
                count,
                now=now,
                visible_at=now + visibility * 1000,
                receipt=receipt,
                redrive=redrive,
                fifo=queue.fifo,
            )
            if not delivered and want_due:
                due = queue_database.next_visible(conn, queue.id, now)
        self._arrivals.bump(touched, everyone=True)  # dead letters: rare, maybe a FIFO queue
        return [(m, _encode_handle(queue.id, m.seq, receipt)) for m in delivered], due

    def _delivered(
        self,
        queue: Queue,
        delivered: tuple[queue_database.Delivered, str],
        system_names: set[str],
        attribute_names: list[str],
    ) -> dict[str, Any]:
        message, handle = delivered
        result: dict[str, Any] = {
            "MessageId": message.message_id,
            "ReceiptHandle": handle,
            "MD5OfBody": message.body_md5,
            "Body": message.body,
        }
        wanted = set(SYSTEM_ATTRIBUTES) if "All" in system_names else system_names
        if wanted:
            attributes = {
                "SenderId": SENDER_ID,
                "SentTimestamp": str(message.sent_at),
                "ApproximateReceiveCount": str(message.receive_count),
                "ApproximateFirstReceiveTimestamp": str(message.first_received_at),
            }
            if message.source_arn:
                attributes["DeadLetterQueueSourceArn"] = message.source_arn
            if message.group_id is not None:
                attributes["MessageGroupId"] = message.group_id
            if queue.fifo:
                attributes["SequenceNumber"] = _sequence_number(message.seq)
                if message.dedup_id is not None:
                    attributes["MessageDeduplicationId"] = message.dedup_id
            picked = {k: v for k, v in attributes.items() if k in wanted}
            if picked:
                result["Attributes"] = picked
        chosen = select_attributes(message.attributes or {}, attribute_names)
        if chosen:
            result["MessageAttributes"] = chosen
            result["MD5OfMessageAttributes"] = attributes_md5(chosen)
        return result

    # ------------------------------------------------------------ after receiving
    def DeleteMessage(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        handle = _decode_handle(queue, request.get("ReceiptHandle"))
        with self._pool.connection() as conn:
            queue_database.delete(conn, queue.id, [handle])
        self._freed(queue)
        return {}

    def _freed(self, queue: Queue) -> None:
        """A delete on a FIFO queue may free a group whose next messages wait visible:
        long polls of the queue look again."""
        if queue.fifo:
            self._arrivals.bump({queue.id}, everyone=True)

    def DeleteMessageBatch(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        entries = _check_batch(request.get("Entries"), "DeleteMessage")
        handles, successful, failed = [], [], []
        for entry in entries:
            try:
                handles.append(_decode_handle(queue, entry.get("ReceiptHandle")))
                successful.append({"Id": entry["Id"]})
            except errors.SqsError as exc:
                failed.append(exc.entry(entry["Id"]))
        if handles:
            with self._pool.connection() as conn:
                queue_database.delete(conn, queue.id, handles)
            self._freed(queue)
        return {"Successful": successful, "Failed": failed}

    def _change_visibility(
        self, queue: Queue, entries: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        now = self._now_ms()
        parsed, failed = [], []
        for entry in entries:
            try:
                seq, receipt = _decode_handle(queue, entry.get("ReceiptHandle"))
                timeout = _int_param(
                    {"VisibilityTimeout": entry.get("VisibilityTimeout")},
                    "VisibilityTimeout",
                    -1,
                    0,
                    MAX_VISIBILITY_TIMEOUT,
                )
                if timeout < 0:
                    raise errors.missing_parameter("VisibilityTimeout")
                parsed.append((entry, seq, receipt, now + timeout * 1000))
            except errors.SqsError as exc:
                failed.append(exc.entry(entry["Id"]))
        changed: set[int] = set()
        if parsed:
            with self._pool.connection() as conn:
                changed = queue_database.change_visibility(
                    conn,
                    queue.id,
                    [(seq, receipt, visible) for _, seq, receipt, visible in parsed],
                    now,
                )
        successful = []
        for entry, seq, _, _ in parsed:
            if seq in changed:
                successful.append({"Id": entry["Id"]})
            else:
                failed.append(errors.not_in_flight(entry["ReceiptHandle"]).entry(entry["Id"]))
        if any(visible <= now for _, seq, _, visible in parsed if seq in changed):
            self._arrivals.bump({queue.id}, everyone=queue.fifo)
        return successful, failed

    def ChangeMessageVisibility(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        _required(request, "VisibilityTimeout")
        entry = {"Id": "0", **request}
        _, failed = self._change_visibility(queue, [entry])
        if failed:
            if failed[0]["Code"] == "ReceiptHandleIsInvalid":
                raise errors.receipt_handle_invalid(request.get("ReceiptHandle"))
            raise errors.SqsError(failed[0]["Code"], failed[0]["Message"])
        return {}

    def ChangeMessageVisibilityBatch(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        queue = self._queue(request)
        entries = _check_batch(request.get("Entries"), "ChangeMessageVisibility")
        successful, failed = self._change_visibility(queue, entries)
        return {"Successful": successful, "Failed": failed}

    # ------------------------------------------------------------ dead-letter redrive
    def StartMessageMoveTask(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        """Moves the whole dead-letter queue within the call; the task is COMPLETED at once."""
        source_arn = _required(request, "SourceArn")
        dlq = self._by_arn(source_arn)
        if dlq is None:
            raise errors.resource_not_found(
                "The resource that you specified for the SourceArn parameter doesn't exist."
            )
        destination_arn = request.get("DestinationArn")
        destination = None
        if destination_arn:
            target = self._by_arn(destination_arn)
            if target is None:
                raise errors.resource_not_found(
                    "The resource that you specified for the DestinationArn parameter "
                    "doesn't exist."
                )
            if target.fifo != dlq.fifo:
                raise errors.invalid_parameter(
                    "The dead-letter queue and the redrive destination must be of the same type."
                )
            destination = target.id
        sources = {
            self.arn(q.name): q.id
            for q in list(self._queues.values())
            if q.redrive and q.redrive[0] == dlq.name
        }
        if destination is None and not sources:
            raise errors.invalid_parameter(
                "Source queue must be configured as a Dead Letter Queue."
            )
        with self._pool.connection() as conn:
            moved = queue_database.move_dead_letters(
                conn, dlq.id, destination, sources, self._now_ms()
            )
        self._arrivals.bump(set(moved), everyone=True)
        task = MoveTask(
            handle=str(uuid.uuid4()),
            source_arn=source_arn,
            destination_arn=destination_arn,
            started=self._now_ms(),
            moved=sum(moved.values()),
        )
        self._move_tasks.insert(0, task)
        return {"TaskHandle": task.handle}

    def ListMessageMoveTasks(self, request: dict[str, Any], base: str) -> dict[str, Any]:
        source_arn = _required(request, "SourceArn")
        limit = int(request.get("MaxResults") or 1)
        results = []
        for task in self._move_tasks:
            if task.source_arn != source_arn:
                continue
            item: dict[str, Any] = {
                "Status": task.status,
                "SourceArn": task.source_arn,
                "ApproximateNumberOfMessagesMoved": task.moved,
                "ApproximateNumberOfMessagesToMove": task.moved,
                "StartedTimestamp": task.started,
            }
            if task.destination_arn:
                item["DestinationArn"] = task.destination_arn
            results.append(item)
        return {"Results": results[:limit]}
