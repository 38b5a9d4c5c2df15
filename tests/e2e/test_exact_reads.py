"""Over real HTTP on the local runtime: an event with numbers past a double's reach is
listed and looked up with every digit, and the console's data shows it the same."""

from __future__ import annotations

from local_runtime.runtime import Runtime
from tests.e2e.test_accounts import call
from tests.e2e.test_manage import owner_session
from tests.handlers.test_door import exact
from tests.local_runtime.conftest import http
from tests.support import wait_for

EVENT = (
    b'{"eventName": "x", "n": 18446744073709551616, "m": -9223372036854775809,'
    b' "tiny": 1e-400, "pi": 3.14159265358979323846, "big": 12345678901234567890123.5}'
)


def get(sluice: Runtime, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, raw = http("GET", sluice.api_url + path, None, headers)
    return status, exact(raw)


def test_an_event_with_big_and_long_numbers_reads_back_with_every_digit(sluice):
    token = owner_session(sluice)
    status, app, _ = call(sluice, "/api/apps", {"name": "Exact"}, token=token)
    assert status == 201, app
    app_id, key = app["app_id"], app["api_key"]["key"]
    status, _, raw = http(
        "POST",
        f"{sluice.api_url}/api/logs/{app_id}",
        EVENT,
        {"Content-Type": "application/json", "x-api-key": key},
    )
    assert status == 202, raw
    event_id = exact(raw)["event_id"]
    path = f"/api/apps/{app_id}/events/{event_id}"

    def stored() -> dict | None:
        status, body = get(sluice, path, token)
        assert status == 200, body
        return body if body["status"] != "queued" else None

    found = wait_for(stored, timeout=20)
    assert found["payload"] == exact(EVENT)
    status, listed = get(sluice, f"/api/apps/{app_id}/events", token)
    assert status == 200, listed
    assert [e["payload"] for e in listed["events"]] == [exact(EVENT)]

    def on_console() -> dict | None:
        status, _, raw = http("GET", f"{sluice.api_url}/_local/console/data")
        assert status == 200, raw
        shown = {e["event_id"]: e for e in exact(raw)["events"]}
        return shown.get(event_id) if "payload" in shown.get(event_id, {}) else None

    assert exact(wait_for(on_console, timeout=20)["payload"]) == exact(EVENT)
