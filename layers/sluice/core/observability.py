"""Logger, tracer and metrics, created once for every module of a function."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

# Service name, namespace and level come from POWERTOOLS_* variables (template Globals).
logger = Logger()
tracer = Tracer()
metrics = Metrics()

Handler = Callable[[Any, Any], Any]


def trace_when_sampled(handler: Handler, traced_by: Tracer | None = None) -> Handler:
    """Powertools' `capture_lambda_handler`, for the invocations X-Ray keeps.

    Lambda decides per invocation whether X-Ray samples it (1 a second, then 5 %) and
    says so in `_X_AMZN_TRACE_ID`. For an unsampled one, or with tracing off (as in
    `make dev`), the `## handler` subsegment and its annotations are dummies nobody
    receives, yet cost ingest ~30 us of CPU a request (docs/performance.md): such an
    invocation runs the handler bare. The first goes through the tracer whatever its
    sampling, as Powertools marks the container's cold start on the first one it sees.
    Patched clients (botocore) still trace their calls and pass the trace header on.
    """
    active = traced_by or tracer
    traced = active.capture_lambda_handler(handler)
    first = True

    @functools.wraps(handler)
    def decorate(event: Any, context: Any) -> Any:
        nonlocal first
        if active.disabled:
            return handler(event, context)
        if first or "Sampled=0" not in os.environ.get("_X_AMZN_TRACE_ID", ""):
            first = False
            return traced(event, context)
        return handler(event, context)

    return decorate
