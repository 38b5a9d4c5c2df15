"""Reading wrk's --latency report, as `make loadtest ARGS="--wrk"` does."""

from toolkit import wrk

REPORT = """Running 20s test @ http://127.0.0.1:3000/api/logs/app_x
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    51.47ms   23.27ms 262.17ms   74.50%
    Req/Sec   314.77     54.87   494.00     68.50%
  Latency Distribution
     50%   49.62ms
     75%  612.00us
     90%    1.20s
     99%  121.60ms
  12572 requests in 20.06s, 3.55MB read
  Socket errors: connect 0, read 0, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    626.64
Transfer/sec:    181.34KB
"""


def test_the_report_gives_requests_answers_and_latencies_in_ms():
    figures = wrk.parse(REPORT)
    assert figures["requests"] == 12572
    assert figures["non_2xx"] == 7
    assert figures["requests_per_s"] == 626.64
    assert figures["socket_errors"] == "connect 0, read 0, write 0, timeout 3"
    assert figures["latency_ms"] == {"p50": 49.62, "p75": 0.61, "p90": 1200.0, "p99": 121.6}


def test_a_run_with_every_answer_2xx_counts_none_refused():
    clean = REPORT.replace("  Non-2xx or 3xx responses: 7\n", "").replace(
        "  Socket errors: connect 0, read 0, write 0, timeout 3\n", ""
    )
    figures = wrk.parse(clean)
    assert figures["non_2xx"] == 0 and figures["socket_errors"] == ""
