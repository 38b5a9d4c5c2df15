"""Workers' pipes are read by the runtime's event loop: a warm worker, an invocation or
a kept-alive connection costs no thread of the runtime's, however many there are."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from local_runtime.runtime import Runtime
from tests.local_runtime.conftest import http


def test_workers_started_by_concurrent_requests_take_no_thread_each(sample: Runtime):
    pool = sample.pools["ApiFunction"]
    assert http("GET", sample.api_url + "/echo/warm")[0] == 200
    before = threading.active_count()
    idle_before = len(pool._idle)

    # When four requests sleep at once (0.3 s; it times out at 1 s): four workers, three new
    with ThreadPoolExecutor(4) as clients:
        answers = list(clients.map(lambda _: http("GET", sample.api_url + "/sleep/0.3"), range(4)))
    assert [status for status, _, _ in answers] == [200] * 4
    assert pool.peak_busy >= 4 and len(pool._idle) >= idle_before + 3

    # Then, the clients' threads ended, the runtime has no more threads than before
    assert threading.active_count() <= before
