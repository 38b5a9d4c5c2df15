from loadtest.stats import latency_summary, percentile


def test_nearest_rank_percentiles():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.95) == 7


def test_summary_is_in_milliseconds_and_handles_no_samples():
    summary = latency_summary([0.010, 0.020, 0.030])
    assert summary == {"p50": 20.0, "p95": 30.0, "p99": 30.0, "max": 30.0}
    assert latency_summary([]) == {"p50": None, "p95": None, "p99": None, "max": None}
