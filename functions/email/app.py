"""Email queue -> SES: each request becomes at most one email, reporting only failed messages."""

from __future__ import annotations

from functools import cache

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.accounts.email_queue import EmailRequest
from sluice.core import aws_clients
from sluice.core.clock import SystemClock
from sluice.core.config import EmailSettings
from sluice.core.db import Database
from sluice.core.observability import logger, metrics, tracer
from sluice.email.mailer import Mailer, RetryLater, SesMisconfigured

# A failed record (SES throttled or misconfigured, the database down, a malformed
# message) goes back alone; after maxReceiveCount receives it waits in the DLQ.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
OUTCOME_METRICS = {
    "sent": "EmailsSent",
    "rejected": "EmailsRejected",
    "skipped": "EmailRequestsSkipped",
    "duplicate": "EmailRequestsDuplicate",
    # SES throttled or could not be reached: the request comes back later.
    "throttled": "EmailsThrottled",
    # SES refuses every message until the account or the stack is fixed (identity not
    # verified, the sandbox, sending paused, access denied): back until the DLQ.
    "misconfigured": "EmailsMisconfigured",
    # Anything else that sent the request back (the database down, a malformed message,
    # an SES error Sluice does not know).
    "failed": "EmailRequestsFailed",
}
# One invocation's outcomes, emitted once at its end (zeros too, for the alarms).
_outcomes: dict[str, int] = {}


@cache
def mailer() -> Mailer:
    settings = EmailSettings.from_env()
    return Mailer(
        settings,
        Database(settings.database, settings.aws),
        aws_clients.client("sesv2", settings.aws),
        SystemClock(),
    )


def record_handler(record: SQSRecord) -> str:
    try:
        outcome = mailer().deliver(EmailRequest.parse(record.body))
    except SesMisconfigured:
        _outcomes["misconfigured"] += 1
        raise
    except RetryLater:
        _outcomes["throttled"] += 1
        raise
    except Exception:
        _outcomes["failed"] += 1
        raise
    _outcomes[outcome] += 1
    return outcome


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    _outcomes.update(dict.fromkeys(OUTCOME_METRICS, 0))
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        for outcome, name in OUTCOME_METRICS.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=_outcomes[outcome])
