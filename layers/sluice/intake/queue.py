"""Sending message bodies to the events queue, as few calls as SQS allows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from sluice.core.observability import logger
from sluice.queued_events import MAX_BATCH_BYTES, MAX_BATCH_ENTRIES


def _send_groups(bodies: Sequence[bytes], indexes: list[int]) -> Iterator[list[int]]:
    """Splits bodies into SendMessageBatch calls: at most 10 entries and 256 KiB each
    (a group of one goes by SendMessage)."""
    group: list[int] = []
    size = 0
    for index in indexes:
        length = len(bodies[index])
        if group and (len(group) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield group
            group, size = [], 0
        group.append(index)
        size += length
    if group:
        yield group


class EventQueue:
    def __init__(self, sqs_client: Any, queue_url: str, *, attempts: int = 3) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._attempts = attempts  # per entry, on top of botocore's own retries per call

    def send(self, bodies: Sequence[bytes]) -> set[int]:
        """Sends every body; returns the positions of those SQS did not take.

        A call that timed out (botocore's own attempts spent) ends the sending: each
        further call would wait as long again, and a batch takes up to 50 calls, far
        past ingest's timeout. A refusal or an error answer costs no wait and is retried.
        """
        pending = list(range(len(bodies)))
        for _ in range(self._attempts):
            if not pending:
                break
            failed: list[int] = []
            for group in _send_groups(bodies, pending):
                try:
                    failed.extend(self._send_batch(bodies, group))
                except _Unreachable:
                    return set(pending) - _sent_before(pending, failed, group)
            pending = failed
        return set(pending)

    def _send_batch(self, bodies: Sequence[bytes], group: list[int]) -> list[int]:
        if len(group) == 1:
            # A single event's request sends one message: SendMessage costs botocore
            # less to build, sign and read than a batch of one (docs/performance.md).
            return self._send_one(bodies, group)
        entries = [{"Id": str(i), "MessageBody": bodies[i].decode()} for i in group]
        try:
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            logger.warning("events queue unreachable", error=type(exc).__name__)
            raise _Unreachable from exc
        except (ClientError, BotoCoreError) as exc:  # answered, or failed at once: retried
            logger.warning("send to events queue failed", error=type(exc).__name__)
            return group
        failed = response.get("Failed", [])
        if failed:
            logger.warning(
                "events queue refused entries",
                codes=sorted({entry.get("Code", "") for entry in failed}),
            )
        return [int(entry["Id"]) for entry in failed]

    def _send_one(self, bodies: Sequence[bytes], group: list[int]) -> list[int]:
        """As _send_batch, for one message: SQS refuses it with an error answer instead
        of a failed entry, and the refusal is retried the same way."""
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=bodies[group[0]].decode())
        except (ConnectTimeoutError, ReadTimeoutError) as exc:
            logger.warning("events queue unreachable", error=type(exc).__name__)
            raise _Unreachable from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            logger.warning("events queue refused entries", codes=[code])
            return group
        except BotoCoreError as exc:
            logger.warning("send to events queue failed", error=type(exc).__name__)
            return group
        return []


class _Unreachable(Exception):
    pass


def _sent_before(pending: list[int], failed: list[int], group: list[int]) -> set[int]:
    """The positions of this round that calls before `group` delivered."""
    tried = pending[: pending.index(group[0])]
    return set(tried) - set(failed)
