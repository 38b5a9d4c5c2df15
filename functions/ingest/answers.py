"""Ingest's answers: the bodies and status codes of what a request did to its events."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from sluice.core.http_api import json_response
from sluice.intake.ingest import BatchOutcome, Outcome


def event_response(outcome: Outcome) -> Response:
    """One event, sent for real: queued (202) or queued to be stored as invalid (422)."""
    if outcome.status == "invalid":
        return json_response(422, invalid_body(outcome))
    return json_response(202, accepted_body(outcome))


def dry_run_response(outcome: Outcome) -> Response:
    """One event's verdict, nothing queued: 422 as a real send would be, or 200."""
    if outcome.status == "invalid":
        message = "Dry run: a real send would store this event as invalid (its rule fails)."
        return json_response(422, {**invalid_body(outcome), "message": message, "dry_run": True})
    message = "Dry run: a real send would queue this event; nothing was queued."
    return json_response(200, {**accepted_body(outcome), "message": message, "dry_run": True})


def accepted_body(outcome: Outcome) -> dict:
    event_id = str(outcome.event_id) if outcome.event_id else None  # None: a dry run
    return {
        "event_id": event_id,
        "task_id": event_id,  # the seed's name for it; kept for its clients
        "event_name": outcome.event_name,
        "status": "valid",
        "message": "Event queued for processing",
    }


def invalid_body(outcome: Outcome) -> dict:
    return {
        "error": "validation_failed",
        "message": "The event breaks its app's rule for this event name; it was stored as invalid.",
        "event_id": str(outcome.event_id) if outcome.event_id else None,
        "event_name": outcome.event_name,
        "status": "invalid",
        "errors": outcome.errors,
        "errors_omitted": outcome.errors_omitted,
        **_uncounted(outcome),
    }


def _uncounted(outcome: Outcome) -> dict:
    # An event with very many values is checked up to its first error only.
    return {} if outcome.errors_counted else {"errors_counted": False}


def batch_response(batch: BatchOutcome, *, dry_run: bool = False) -> Response:
    results = []
    for outcome in batch.outcomes:
        result: dict = {
            "index": outcome.index,
            "event_id": str(outcome.event_id) if outcome.event_id else None,
            "status": outcome.status,
        }
        if outcome.errors or outcome.errors_omitted:
            result["errors"] = outcome.errors
            result["errors_omitted"] = outcome.errors_omitted
            result.update(_uncounted(outcome))
        if outcome.error is not None:
            result["error"] = outcome.error.code
            result["message"] = outcome.error.message
        if outcome.status == "failed":
            result["retryable"] = True
        results.append(result)
    body = {
        "accepted": batch.count("valid"),
        "invalid": batch.count("invalid"),
        "rejected": batch.count("rejected"),
        "failed": batch.count("failed"),
        "results": results,
    }
    if dry_run:
        # The same counts and per-item results; 200 because nothing was accepted for real.
        return json_response(200, {**body, "dry_run": True})
    if batch.queued:
        return json_response(202, body)
    if batch.count("failed"):
        body.update(error="queue_unavailable", message="No event could be queued. Retry the batch.")
        return json_response(503, body)
    body.update(
        error="invalid_batch", message="Every event in the batch was rejected; see results."
    )
    return json_response(400, body)
