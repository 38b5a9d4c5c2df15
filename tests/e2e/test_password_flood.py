"""Issue 24, item 1, end to end: a flood of the password routes, from "many machines" with
random addresses, while ingest keeps taking events.

The accounts function reserves AccountsReservedConcurrency executions (here 4: two
hashing slots), which the local runtime honours as Lambda does. What is asserted is
behaviour, not speed: every ingest request is accepted; the hashing routes answer
202 while a slot is free and 429 with Retry-After beyond it, or, past the reservation,
the 500 API Gateway gives for a throttled invocation; the function never ran more than
its reservation at once; every slot is given back. (The latency of ingest under such a
flood is measured by `make loadtest ARGS="--password-flood ..."`, docs/performance.md.)
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sluice.accounts.limits import hash_slot_keys

from local_runtime.runtime import Runtime
from tests.e2e.conftest import REPO_ROOT, settings_file
from tests.local_runtime.conftest import http, running
from tests.support import make_app

RESERVED = 4  # executions of the accounts function; half of them hash
FLOODERS = 12  # clients at once, three times the reservation
REQUESTS_EACH = 12
INGESTS = 40
PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a test password
HASHING = ("/api/accounts/register", "/api/accounts/sign-in", "/api/accounts/password-reset")


@pytest.fixture(scope="module")
def flood_stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    folder: Path = tmp_path_factory.mktemp("flood")
    path = settings_file(folder)
    settings = json.loads(path.read_text())
    settings["Parameters"]["AccountsReservedConcurrency"] = RESERVED
    settings["Environment"]["AccountsFunction"].update(
        {
            # A hash long enough for requests to overlap (16 MiB), short enough for a test.
            "PASSWORD_SCRYPT_N": "16384",
            # Every client here is 127.0.0.1: as if each came from a machine of its own,
            # so only the hashing slots and the reservation stand in the way.
            "PASSWORDS_PER_SOURCE_PER_MINUTE": "1000000",
            "PASSWORDS_PER_SOURCE_PER_HOUR": "1000000",
        }
    )
    path.write_text(json.dumps(settings))
    with running(REPO_ROOT, folder, database_url, settings=path) as runtime:
        yield runtime


def flood(runtime: Runtime, answers: list, start: threading.Barrier) -> None:
    start.wait()
    for n in range(REQUESTS_EACH):
        path = HASHING[n % len(HASHING)]
        body = {"email": f"random-{uuid.uuid4().hex[:12]}@example.com", "password": PASSWORD}
        if path.endswith("password-reset"):
            body = {"token": f"{uuid.uuid4()}.x", "password": PASSWORD}
            path += "/confirm"
        status, headers, raw = http(
            "POST",
            runtime.api_url + path,
            json.dumps(body).encode(),
            {"Content-Type": "application/json"},
        )
        answers.append((path, status, headers, json.loads(raw)))


def test_a_flood_of_the_password_routes_is_capped_and_ingest_keeps_accepting(
    flood_stack: Runtime, db
):
    app_id, key = make_app(db)
    accounts = flood_stack.pools["AccountsFunction"]
    answers: list = []
    start = threading.Barrier(FLOODERS + 1)
    flooders = [
        threading.Thread(target=flood, args=(flood_stack, answers, start)) for _ in range(FLOODERS)
    ]
    for thread in flooders:
        thread.start()

    start.wait()
    ingested = []
    for n in range(INGESTS):
        status, _, raw = http(
            "POST",
            f"{flood_stack.api_url}/api/logs/{app_id}",
            json.dumps({"eventName": "flood_probe", "n": n}).encode(),
            {"X-Api-Key": key, "Content-Type": "application/json"},
        )
        ingested.append((status, raw))
    for thread in flooders:
        thread.join(120)

    # Ingest took every event while the flood went on.
    assert [status for status, _ in ingested] == [202] * INGESTS, ingested
    statuses = [status for _, status, _, _ in answers]
    assert len(answers) == FLOODERS * REQUESTS_EACH
    assert set(statuses) <= {202, 400, 429, 500}, statuses
    # Some got a slot (202, or 400 for a reset token that opens nothing); beyond the
    # slots, 429 before any hash, with when to come back.
    assert 202 in statuses and 429 in statuses
    for path, status, headers, body in answers:
        if status == 429:
            assert body["error"] == "rate_limited", (path, body)
            assert headers["retry-after"] == [str(body["retry_after"])] == ["1"], (path, headers)
        elif status == 500:
            # Past the reservation Lambda throttles, and API Gateway says no more than this.
            assert body == {"message": "Internal Server Error"}
        elif status == 400:
            assert path.endswith("/confirm") and body["error"] == "invalid_token", (path, body)
    # The function never ran more than its reservation at once; each 500 was a throttle.
    assert accounts.peak_busy <= RESERVED
    assert accounts.throttled == statuses.count(500)
    # and the local console's dashboard counts them where CloudWatch would: Throttles.
    name = {"FunctionName": flood_stack.topology.functions["AccountsFunction"].name}
    throttles = flood_stack.console.metrics.points("AWS/Lambda", "Throttles", name, since=0)
    errors = flood_stack.console.metrics.points("AWS/Lambda", "Errors", name, since=0)
    assert sum(value for _, value in throttles) == accounts.throttled
    assert sum(value for _, value in errors) == 0
    # Every slot was given back once the flood ended.
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FILTER (WHERE cardinality(sent_at) = 0), count(*)"
            " FROM email_send_limits WHERE limit_key = ANY(%s::bytea[])",
            (hash_slot_keys(RESERVED // 2),),
        )
        assert cur.fetchone() == (RESERVED // 2, RESERVED // 2)
