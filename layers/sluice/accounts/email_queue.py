"""The one message that crosses the email queue, and the producer's side of it.

A message names what happened and which challenge it concerns, nothing more: no
address and no code travel through SQS. The email function reads the challenge and
decides what, if anything, the message becomes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from sluice.accounts.challenges import KINDS
from sluice.core.errors import QueueUnavailable
from sluice.core.observability import logger

VERSION = 1


@dataclass(frozen=True, slots=True)
class EmailRequest:
    kind: str  # one of challenges.KINDS
    challenge_id: uuid.UUID  # the business key the email function deduplicates on

    def encode(self) -> str:
        return orjson.dumps(
            {"v": VERSION, "kind": self.kind, "challenge_id": str(self.challenge_id)}
        ).decode()

    @classmethod
    def parse(cls, body: str) -> EmailRequest:
        """The request in a message body; ValueError for anything else."""
        data = orjson.loads(body)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            raise ValueError("not an email request of version 1")
        if data.get("kind") not in KINDS or not isinstance(data.get("challenge_id"), str):
            raise ValueError("an email request needs a known kind and a challenge_id")
        return cls(kind=data["kind"], challenge_id=uuid.UUID(data["challenge_id"]))


class EmailQueue:
    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, request: EmailRequest) -> None:
        """Queues one request (botocore retries on its own); QueueUnavailable if SQS refuses.

        A retry after a lost answer can queue the same request twice: the email
        function deduplicates on the challenge, so that sends one email.
        """
        try:
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=request.encode())
        except (ClientError, BotoCoreError) as exc:
            logger.warning("send to email queue failed", error=type(exc).__name__)
            raise QueueUnavailable("The email could not be queued; try again.") from exc
