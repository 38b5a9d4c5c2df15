"""Email queue -> SES: each request becomes at most one email, reporting only failed messages."""

from __future__ import annotations

from functools import cache

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.clock import SystemClock
from sluice.config import EmailSettings
from sluice.db import Database
from sluice.email_queue import EmailRequest
from sluice.mailer import Mailer
from sluice.observability import logger, metrics, tracer

# A failed record (SES throttled, the database down, a malformed message) goes back
# alone; after maxReceiveCount receives it waits in the DLQ.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
OUTCOME_METRICS = {
    "sent": "EmailsSent",
    "rejected": "EmailsRejected",
    "skipped": "EmailRequestsSkipped",
    "duplicate": "EmailRequestsDuplicate",
}


@cache
def mailer() -> Mailer:
    settings = EmailSettings.from_env()
    return Mailer(settings, Database(settings.database), boto3.client("sesv2"), SystemClock())


def record_handler(record: SQSRecord) -> str:
    outcome = mailer().deliver(EmailRequest.parse(record.body))
    metrics.add_metric(name=OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    return outcome


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
