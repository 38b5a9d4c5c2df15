"""Figures from raw samples: percentiles and the run's summary."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of values already sorted; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in milliseconds, from seconds."""
    ordered = sorted(values)
    return {
        name: None if (value := percentile(ordered, fraction)) is None else round(value * 1000, 2)
        for name, fraction in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }
