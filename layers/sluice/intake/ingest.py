"""Accepting events: authorise, check, queue. What the ingest function does, without AWS."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from uuid_utils.compat import uuid7

from sluice.core.clock import Clock
from sluice.core.config import IngestSettings
from sluice.core.errors import EventBlocked, EventRejected, PayloadTooLarge, QueueUnavailable
from sluice.core.observability import logger
from sluice.intake.catalog import App, Catalog
from sluice.intake.incoming_events import (
    Envelope,
    EventTexts,
    may_be_too_deep,
    may_contain_nul,
    occurred_at,
    parse_events,
    read_envelope,
)
from sluice.intake.queue import EventQueue
from sluice.intake.segment import MAX_REQUEST_BYTES, messages, read_message, write_key_in_body
from sluice.intake.validation import ErrorBudget, Verdict
from sluice.queued_events import (
    MAX_REJECTION_CODE,
    MAX_REJECTION_MESSAGE,
    MAX_REJECTION_MESSAGE_ID,
    MAX_REJECTION_ROUTE,
    QueuedEvent,
    Rejection,
    ValidationIssue,
    capped,
    pack,
    serialize_event,
    serialize_rejections,
)

Status = Literal["valid", "invalid", "rejected", "failed"]

# A batch's answer lists at most this many rule violations in all; the rest are
# only counted. A listed issue is at most ~3.3 KB once the answer is JSON inside
# Lambda's response (464 capped characters, 6 bytes for an escaped control
# character, 7 once escaped again), so 1,000 of them stay far under the 6 MB
# Lambda can return, whatever 500 events bring.
MAX_ANSWER_ISSUES = 1_000


@dataclass(slots=True)
class Outcome:
    """What became of one event."""

    index: int
    status: Status
    event_id: UUID | None = None
    event_name: str | None = None
    errors: list[ValidationIssue] = field(default_factory=list)  # rule violations
    errors_omitted: int = 0  # violations found but not listed in errors
    errors_counted: bool = True  # False: only the first violation was looked for
    error: EventRejected | QueueUnavailable | None = None  # why rejected or failed


@dataclass(slots=True)
class BatchOutcome:
    outcomes: list[Outcome]

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def queued(self) -> int:
        return self.count("valid") + self.count("invalid")


class Ingestor:
    def __init__(
        self,
        settings: IngestSettings,
        catalog: Catalog,
        queue: EventQueue,
        clock: Clock,
        new_event_id: Callable[[str], UUID] = lambda app_id: uuid7(),
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._queue = queue
        self._clock = clock
        self._new_event_id = new_event_id

    def ingest_one(
        self, app_id: str, api_key: str | None, body: bytes, *, dry_run: bool = False
    ) -> Outcome:
        """Queues one event; raises a SluiceError for anything that stops it.

        An event that breaks its rule is still queued (to be stored as invalid),
        unless its app's policy blocks it: the outcome says so. A dry run answers
        the same verdict and queues nothing (and issues no event id); it reads the
        app, its rules and the key afresh, so it answers by what was saved last.
        """
        if len(body) > self._settings.max_event_bytes:
            raise PayloadTooLarge(
                f"An event may be at most {self._settings.max_event_bytes} bytes;"
                f" this one is {len(body)}."
            )
        app = self._catalog.authorize(app_id, api_key, fresh=dry_run)
        received_at = self._clock.now()
        body, document = parse_events(body)
        envelope = read_envelope(
            document, check_nul=may_contain_nul(body), check_depth=may_be_too_deep(body)
        )
        text = EventTexts(body, lambda whole: [whole]).text(0, document)
        event, verdict = self._prepare(
            app, envelope, document, text.decode(), received_at, ErrorBudget()
        )
        if dry_run:
            return _dry(_outcome(0, event, verdict))
        [(body, _)] = pack([serialize_event(event)])
        if self._queue.send([body]):
            raise QueueUnavailable(
                "The event could not be queued. Retry; send a messageId to make retries safe."
            )
        return _outcome(0, event, verdict)

    def ingest_batch(
        self,
        app_id: str,
        api_key: str | None,
        body: bytes,
        *,
        dry_run: bool = False,
        route: str = "/api/logs/{app_id}/batch",
    ) -> BatchOutcome:
        """Queues every well-formed event of a batch; one bad item never fails the others.

        The refused items' records (`route`, index, why) go with the events, for the owner.
        """
        limits = self._settings
        if len(body) > limits.max_batch_bytes:
            raise PayloadTooLarge(
                f"A batch may be at most {limits.max_batch_bytes} bytes; this one is {len(body)}."
            )
        app = self._catalog.authorize(app_id, api_key, fresh=dry_run)
        body, document = parse_events(body)
        items = _batch_items(document)
        if not items:
            raise EventRejected("The batch holds no events.", code="empty_batch")
        if len(items) > limits.max_batch_events:
            raise PayloadTooLarge(
                f"A batch may hold at most {limits.max_batch_events} events;"
                f" this one has {len(items)}. Split it.",
                code="too_many_events",
            )
        received_at = self._clock.now()
        check_nul = may_contain_nul(body)
        texts = EventTexts(body, _batch_items)
        budget = ErrorBudget()
        outcomes: list[Outcome] = []
        to_send: list[bytes] = []
        sent_outcomes: list[Outcome] = []
        for index, item in enumerate(items):
            try:
                text = texts.text(index, item)
                # Its own text bounds its depth: most events need no walk.
                envelope = read_envelope(
                    item, check_nul=check_nul, check_depth=may_be_too_deep(text)
                )
                if len(text) > limits.max_event_bytes:
                    raise EventRejected(
                        f"An event may be at most {limits.max_event_bytes} bytes;"
                        f" this one is {len(text)}.",
                        code="event_too_large",
                    )
                event, verdict = self._prepare(
                    app, envelope, item, text.decode(), received_at, budget
                )
                data = serialize_event(event)
            except EventBlocked as blocked:
                outcomes.append(
                    Outcome(index=index, status="rejected", error=blocked, errors=blocked.errors)
                )
                continue
            except EventRejected as rejection:
                outcomes.append(Outcome(index=index, status="rejected", error=rejection))
                continue
            outcome = _outcome(index, event, verdict)
            outcomes.append(outcome)
            to_send.append(data)
            sent_outcomes.append(outcome)
        if dry_run:
            outcomes = [_dry(outcome) for outcome in outcomes]
        else:
            rejections = _rejections(app.app_id, received_at, route, outcomes, items)
            self._send_packed(to_send, sent_outcomes, rejections)
        _share_answer_issues(sent_outcomes)
        return BatchOutcome(outcomes)

    def ingest_segment(
        self, write_key: str | None, body: bytes, call_type: str | None, route: str = "/v1/batch"
    ) -> BatchOutcome:
        """Queues the messages of a Segment request (`call_type` None: a batch).

        The write key alone names the app: from the headers, else the body's writeKey.
        A single message that cannot be queued raises, as ingest_one does; in a batch
        each bad message is rejected alone, and its record (`route`, index, messageId
        as sent, why) goes with the events, for the owner.
        """
        if len(body) > MAX_REQUEST_BYTES:
            raise PayloadTooLarge(
                f"A request may be at most {MAX_REQUEST_BYTES} bytes; this one is {len(body)}.",
                code="request_too_large",
            )
        app = self._catalog.authorize_key(write_key) if write_key is not None else None
        body, document = parse_events(body)
        if app is None:
            app = self._catalog.authorize_key(write_key_in_body(document))
        new_ids: dict[int, str] = {}

        def message_id(index: int) -> str:
            if index not in new_ids:
                new_ids[index] = str(uuid7())
            return new_ids[index]

        def select(whole: Any) -> list[Any]:
            return messages(whole, call_type, message_id)

        items = select(document)
        if not items:
            raise EventRejected("The batch holds no messages.", code="empty_batch")
        received_at = self._clock.now()
        check_nul = may_contain_nul(body)
        texts = EventTexts(body, select)
        budget = ErrorBudget()
        outcomes: list[Outcome] = []
        to_send: list[bytes] = []
        sent_outcomes: list[Outcome] = []
        limit = self._settings.max_event_bytes
        for index, item in enumerate(items):
            try:
                text = texts.text(index, item)
                envelope = read_message(
                    item, check_nul=check_nul, check_depth=may_be_too_deep(text)
                )
                if len(text) > limit:
                    message = f"A message may be at most {limit} bytes; this one is {len(text)}."
                    if call_type is not None:
                        raise PayloadTooLarge(message, code="event_too_large")
                    raise EventRejected(message, code="event_too_large")
                event, verdict = self._prepare(
                    app, envelope, item, text.decode(), received_at, budget
                )
                data = serialize_event(event)
            except EventRejected as rejection:
                if call_type is not None:
                    raise
                errors = rejection.errors if isinstance(rejection, EventBlocked) else []
                outcomes.append(
                    Outcome(index=index, status="rejected", error=rejection, errors=errors)
                )
                continue
            outcome = _outcome(index, event, verdict)
            outcomes.append(outcome)
            to_send.append(data)
            sent_outcomes.append(outcome)
        # A messageId Sluice generated is no client's: the record names only one sent.
        rejections = _rejections(app.app_id, received_at, route, outcomes, items, new_ids)
        self._send_packed(to_send, sent_outcomes, rejections)
        _share_answer_issues(sent_outcomes)
        return BatchOutcome(outcomes)

    def _send_packed(
        self, serialized: list[bytes], outcomes: list[Outcome], rejections: Sequence[Rejection] = ()
    ) -> None:
        messages = list(pack(serialized))
        bodies = [body for body, _ in messages]
        if rejections:
            # The records ride in the events' SendMessageBatch: one more entry, no more calls.
            bodies.append(serialize_rejections(list(rejections)))
        unsent = self._queue.send(bodies)
        if rejections and len(messages) in unsent:
            unsent.discard(len(messages))
            # The client's answer lists them still; only the owner's list lacks them.
            logger.warning("rejection records not queued", count=len(rejections))
        for message_index in unsent:
            for position in messages[message_index][1]:
                outcome = outcomes[position]
                outcome.status = "failed"
                # Its id was never queued, so no lookup could ever find it: the answer
                # carries none (the management API would otherwise say `queued` for 18 days).
                outcome.event_id = None
                outcome.error = QueueUnavailable(
                    "The event could not be queued; resend it (with its messageId)."
                )

    def _prepare(
        self,
        app: App,
        envelope: Envelope,
        event: Any,
        payload: str,
        received_at: datetime,
        budget: ErrorBudget,
    ) -> tuple[QueuedEvent, Verdict]:
        if app.unplanned_events == "block" and envelope.event_name not in app.rules:
            raise EventBlocked(
                f"The app takes only event names it has a rule for; {envelope.event_name!r}"
                " has none. Add a rule, or set the app's unplanned_events policy to allow.",
                code="unplanned_event",
            )
        verdict = app.rules.check(envelope.event_name, event, text=payload, budget=budget)
        if not verdict.valid and app.invalid_events == "block":
            raise EventBlocked(
                "The event breaks its app's rule for this event name; the app's policy"
                " blocks such events, so it was not stored.",
                code="validation_failed",
                errors=list(verdict.issues),
            )
        queued = QueuedEvent(
            event_id=self._new_event_id(app.app_id),
            app_id=app.app_id,
            event_name=envelope.event_name,
            payload=payload,
            status="valid" if verdict.valid else "invalid",
            validation_errors=verdict.stored(),
            message_id=envelope.message_id,
            client_timestamp=envelope.client_timestamp,
            sent_at=envelope.sent_at,
            occurred_at=occurred_at(received_at, envelope.client_timestamp, envelope.sent_at),
            received_at=received_at,
        )
        return queued, verdict


def _outcome(index: int, event: QueuedEvent, verdict: Verdict) -> Outcome:
    return Outcome(
        index=index,
        status=event.status,
        event_id=event.event_id,
        event_name=event.event_name,
        errors=list(verdict.issues),
        errors_omitted=verdict.omitted,
        errors_counted=verdict.counted,
    )


def _rejections(
    app_id: str,
    received_at: datetime,
    route: str,
    outcomes: list[Outcome],
    items: list[Any],
    generated: Container[int] = (),
) -> list[Rejection]:
    """The rejected outcomes' records (none when nothing was rejected).

    An item's messageId is kept when it is a string the client sent (an index in
    `generated` had it made by Sluice).
    """
    records = []
    for outcome in outcomes:
        if outcome.status != "rejected" or outcome.error is None:
            continue
        item = items[outcome.index] if outcome.index not in generated else None
        message_id = item.get("messageId") if isinstance(item, dict) else None
        records.append(
            Rejection(
                rejection_id=uuid7(),
                app_id=app_id,
                received_at=received_at,
                route=capped(route, MAX_REJECTION_ROUTE),
                index=outcome.index,
                message_id=(
                    capped(message_id, MAX_REJECTION_MESSAGE_ID)
                    if isinstance(message_id, str)
                    else None
                ),
                code=capped(outcome.error.code, MAX_REJECTION_CODE),
                message=capped(outcome.error.message, MAX_REJECTION_MESSAGE),
            )
        )
    return records


def _dry(outcome: Outcome) -> Outcome:
    # No id: nothing was issued, so nothing can be looked up by it later.
    outcome.event_id = None
    return outcome


def _share_answer_issues(outcomes: list[Outcome]) -> None:
    """Lists issues in the answer up to MAX_ANSWER_ISSUES, first events first.

    Only the answer is cut: each event is queued with its own issues.
    """
    room = MAX_ANSWER_ISSUES
    for outcome in outcomes:
        if len(outcome.errors) > room:
            outcome.errors_omitted += len(outcome.errors) - room
            outcome.errors = outcome.errors[:room]
        room -= len(outcome.errors)


def _batch_items(document: Any) -> list[Any]:
    """A batch is a JSON array of events, or an object holding one under "events"."""
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        return document["events"]
    if isinstance(document, list):
        return document
    raise EventRejected(
        'A batch must be a JSON array of events, or an object {"events": [...]}.',
        code="invalid_batch",
    )
