"""ReservedConcurrentExecutions on the local runtime: at most that many invocations of the
function at once; one more is refused (Lambda throttles it) instead of waiting, and API
Gateway answers it `500 {"message": "Internal Server Error"}`, as it answers every
invocation the Lambda API rejects.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from local_runtime.runtime import Runtime
from tests.local_runtime.conftest import http, sample_runtime, sample_settings
from tests.support import wait_for


@pytest.fixture
def reserved_one(tmp_path, queue_database) -> Iterator[Runtime]:
    """The sample with ApiFunction reserving one execution (and time to sleep in it)."""
    settings = sample_settings(
        tmp_path,
        Resources={"ApiFunction": {"Timeout": 10, "ReservedConcurrentExecutions": 1}},
    )
    runtime = sample_runtime(tmp_path / "state", settings, queue_database, drain_seconds=1)
    runtime.start()
    yield runtime
    runtime.stop()


def test_an_invocation_past_the_reserved_concurrency_is_throttled_not_queued(reserved_one):
    pool = reserved_one.pools["ApiFunction"]
    slow: list = []
    sleeper = threading.Thread(
        target=lambda: slow.append(http("GET", reserved_one.api_url + "/sleep/3"))
    )
    sleeper.start()
    wait_for(lambda: pool.busy == 1, timeout=20)

    status, _, body = http("GET", reserved_one.api_url + "/echo/second")
    sleeper.join(30)
    after, _, _ = http("GET", reserved_one.api_url + "/echo/third")

    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    assert slow[0][0] == 200
    assert after == 200
    # What the runtime reports: never more than one at once, one refused.
    assert (pool.peak_busy, pool.throttled) == (1, 1)
