"""trace_when_sampled: Powertools' handler subsegment only where X-Ray keeps it."""

from __future__ import annotations

import pytest
from sluice.core.observability import trace_when_sampled

SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UNSAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272794;Parent=53995c3f42cd8ad8;Sampled=0"


class RecordingTracer:
    """Stands in for Powertools' Tracer: notes each invocation its decorator wraps."""

    def __init__(self, *, disabled: bool = False) -> None:
        self.disabled = disabled
        self.traced: list[str] = []

    def capture_lambda_handler(self, handler):
        def decorate(event, context):
            self.traced.append(event)
            return handler(event, context)

        return decorate


def answer(event, context):
    return {"statusCode": 202, "event": event}


def invoke(handler, monkeypatch, event: str, trace_header: str | None) -> dict:
    """One invocation, with the trace header Lambda's runtime sets for it (or none)."""
    if trace_header is None:
        monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    else:
        monkeypatch.setenv("_X_AMZN_TRACE_ID", trace_header)
    return handler(event, None)


def test_only_sampled_invocations_after_the_first_go_through_the_tracer(monkeypatch):
    # Given a handler traced as ingest's is, in Lambda with tracing on
    tracer = RecordingTracer()
    handler = trace_when_sampled(answer, tracer)

    # When the container's invocations come sampled or not
    answers = [
        invoke(handler, monkeypatch, "cold, unsampled", UNSAMPLED),
        invoke(handler, monkeypatch, "unsampled", UNSAMPLED),
        invoke(handler, monkeypatch, "sampled", SAMPLED),
        invoke(handler, monkeypatch, "unsampled again", UNSAMPLED),
    ]

    # Then each answer is the handler's, and the tracer saw the cold start (Powertools
    # annotates it on the first invocation it wraps) and the sampled one only
    assert [a["event"] for a in answers] == [
        "cold, unsampled",
        "unsampled",
        "sampled",
        "unsampled again",
    ]
    assert tracer.traced == ["cold, unsampled", "sampled"]


@pytest.mark.parametrize("header", [None, "Root=1-5759e988-bd862e3fe1be46a994272793"])
def test_an_invocation_whose_sampling_is_not_said_is_traced(monkeypatch, header):
    tracer = RecordingTracer()
    handler = trace_when_sampled(answer, tracer)
    invoke(handler, monkeypatch, "first", SAMPLED)

    invoke(handler, monkeypatch, "unknown", header)

    assert tracer.traced == ["first", "unknown"]


def test_with_tracing_off_no_invocation_goes_through_the_tracer(monkeypatch):
    # As in `make dev` (AWS_SAM_LOCAL) and the tests (POWERTOOLS_TRACE_DISABLED)
    tracer = RecordingTracer(disabled=True)
    handler = trace_when_sampled(answer, tracer)

    for event, header in [("first", SAMPLED), ("second", SAMPLED), ("third", None)]:
        assert invoke(handler, monkeypatch, event, header)["event"] == event

    assert tracer.traced == []
