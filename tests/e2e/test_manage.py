"""An owner manages an app through the management API alone, over real HTTP on the local
runtime: sign-up, an app and its key, a rule and its versions, events sent with the key.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from hypothesis import given, settings
from hypothesis import strategies as st

from local_runtime.runtime import Runtime
from tests.e2e.test_accounts import address, call, register, sign_in
from tests.handlers.test_unknown_routes import segments
from tests.openapi import Contract, document
from tests.support import wait_for

CHECKOUT_RULE = {"type": "object", "required": ["total"]}


def owner_session(sluice: Runtime) -> str:
    owner = address()
    register(sluice, owner)
    return sign_in(sluice, owner, mails_before=1)


def send(sluice: Runtime, app_id: str, key: str, event: dict):
    status, body, _ = call(
        sluice, f"/api/logs/{app_id}", event, method="POST", token=key
    )  # Authorization: Bearer <API key> is one of ingest's two ways
    return status, body


def stored(db, event_id: str) -> tuple | None:
    with db.cursor() as cur:
        cur.execute("SELECT status FROM events WHERE event_id = %s", (event_id,))
        return cur.fetchone()


def test_an_owner_goes_from_sign_up_to_stored_events_and_back_to_an_old_rule(sluice, db):
    token = owner_session(sluice)
    status, app, _ = call(sluice, "/api/apps", {"name": "Shop"}, token=token)
    assert status == 201, app
    app_id, key = app["app_id"], app["api_key"]["key"]
    rule = f"/api/apps/{app_id}/rules/checkout"

    status, v1, _ = call(sluice, rule, {"schema": {}}, method="PUT", token=token)
    assert (status, v1["version"]) == (200, 1)
    status, v2, _ = call(sluice, rule, {"schema": CHECKOUT_RULE}, method="PUT", token=token)
    assert (status, v2["version"]) == (200, 2)
    # The answer says when ingest follows (IngestCacheSeconds: 1 s in these tests)...
    assert v2["ingest_follows_within_seconds"] == 1
    # ...a dry run sees the strict rule at once...
    status, dry, _ = call(
        sluice, f"/api/logs/{app_id}?dry_run=true", {"eventName": "checkout"}, token=key
    )
    assert (status, dry["status"], dry["dry_run"]) == (422, "invalid", True)

    # ...and a real send within that time
    def refused() -> dict | None:
        status, body = send(sluice, app_id, key, {"eventName": "checkout"})
        return body if status == 422 else None

    invalid = wait_for(refused, timeout=20)
    status, valid = send(sluice, app_id, key, {"eventName": "checkout", "total": 3})
    assert status == 202
    # The id ingest returned is queued until the store function has written it, then stored
    path = f"/api/apps/{app_id}/events/{valid['event_id']}"
    status, first, _ = call(sluice, path, method="GET", token=token)
    assert status == 200 and first["status"] in ("queued", "valid")

    def stored_via_api() -> dict | None:
        status, event, _ = call(sluice, path, method="GET", token=token)
        return event if status == 200 and event["status"] != "queued" else None

    assert wait_for(stored_via_api, timeout=20)["payload"] == {"eventName": "checkout", "total": 3}

    # The app's key alone (a client of the replaced design tracking its task id) sees
    # the state, and the rule's errors of the invalid one, but no payload
    def key_sees(event_id: str, key: str = key) -> dict | None:
        path = f"/api/logs/{app_id}/events/{event_id}"
        status, body, _ = call(sluice, path, method="GET", token=key)
        return body if status == 200 and body["status"] != "queued" else None

    assert wait_for(lambda: key_sees(valid["event_id"]), timeout=20)["status"] == "valid"
    seen = wait_for(lambda: key_sees(invalid["event_id"]), timeout=20)
    assert (seen["status"], seen["validation_errors"]) == ("invalid", invalid["errors"])
    assert "payload" not in seen
    wrong_key = "sk_nope"
    status, refused, _ = call(
        sluice, f"/api/logs/{app_id}/events/{valid['event_id']}", method="GET", token=wrong_key
    )
    assert (status, refused["error"]) == (401, "unauthorized")
    assert wait_for(lambda: stored(db, invalid["event_id"]), timeout=20) == ("invalid",)
    status, listed, _ = call(
        sluice, f"/api/apps/{app_id}/events?status=invalid", method="GET", token=token
    )
    assert [e["event_id"] for e in listed["events"]] == [invalid["event_id"]]

    # Restoring version 1 (accept anything) becomes version 3, and ingest follows it
    status, restored, _ = call(sluice, f"{rule}/restore", {"version": 1}, token=token)
    assert (status, restored["version"], restored["schema"]) == (200, 3, {})
    wait_for(lambda: send(sluice, app_id, key, {"eventName": "checkout"})[0] == 202, timeout=20)
    status, history, _ = call(sluice, f"{rule}/versions", method="GET", token=token)
    assert [v["version"] for v in history["versions"]] == [3, 2, 1]


def test_block_policies_refuse_what_store_and_allow_would_take(sluice, db):
    token = owner_session(sluice)
    app = call(sluice, "/api/apps", {"name": "Strict"}, token=token)[1]
    app_id, key = app["app_id"], app["api_key"]["key"]
    call(
        sluice,
        f"/api/apps/{app_id}/rules/checkout",
        {"schema": CHECKOUT_RULE},
        method="PUT",
        token=token,
    )
    policies = {"invalid_events": "block", "unplanned_events": "block"}
    status, changed, _ = call(
        sluice, f"/api/apps/{app_id}", {"policies": policies}, method="PATCH", token=token
    )
    assert (status, changed["policies"]) == (200, {**policies, "retention_days": 30})

    def blocked(event: dict, code: str) -> bool:
        status, body = send(sluice, app_id, key, event)
        return status == 422 and body["error"] == code

    wait_for(lambda: blocked({"eventName": "checkout"}, "validation_failed"), timeout=20)
    assert blocked({"eventName": "signup"}, "unplanned_event")
    assert send(sluice, app_id, key, {"eventName": "checkout", "total": 1})[0] == 202
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM events WHERE app_id = %s AND status = 'invalid'", (app_id,)
        )
        assert cur.fetchone() == (0,)


def test_another_account_cannot_see_or_change_the_app(sluice, db):
    owner, stranger = owner_session(sluice), owner_session(sluice)
    app_id = call(sluice, "/api/apps", {"name": "Mine"}, token=owner)[1]["app_id"]
    for method, path, body in [
        ("GET", f"/api/apps/{app_id}", None),
        ("PATCH", f"/api/apps/{app_id}", {"name": "Ours"}),
        ("DELETE", f"/api/apps/{app_id}", None),
        ("POST", f"/api/apps/{app_id}/keys", None),
    ]:
        status, answer, _ = call(sluice, path, body, method=method, token=stranger)
        assert (status, answer["error"]) == (404, "app_not_found"), (method, path)
    assert call(sluice, f"/api/apps/{app_id}", method="GET", token=owner)[1]["name"] == "Mine"


def test_the_api_describes_itself_and_answers_over_http_as_described(sluice):
    """GET /api/openapi.json through the local runtime's router, and real answers checked by it."""
    status, served, headers = call(sluice, "/api/openapi.json", method="GET")
    assert (status, served) == (200, document())
    assert headers["content-type"] == ["application/json"]

    contract = Contract()
    token = owner_session(sluice)
    for path, body, method, route, session in [
        ("/api/apps", {"name": "Described"}, "POST", "/api/apps", token),
        ("/api/apps", None, "GET", "/api/apps", None),
        ("/api/apps/app_nobody", None, "GET", "/api/apps/{app_id}", token),
        ("/api/accounts/me", None, "GET", "/api/accounts/me", token),
        ("/api/logs/app_nobody", {"eventName": "a"}, "POST", "/api/logs/{app_id}", None),
    ]:
        status, answer, _ = call(sluice, path, body, method=method, token=session)
        contract.check(method, route, status, json.dumps(answer))
    assert {status for *_, status in contract.seen} == {200, 201, 401, 404}


def test_a_path_under_api_that_no_route_serves_is_a_route_not_found(sluice):
    # API Gateway's own 404 is {"message": "Not Found"}; the catch-all route makes it ours.
    for method, path in [
        ("GET", "/api/nope"),
        ("GET", "/api/logs/app_nobody"),  # only POST is a route
        ("POST", "/api/logs/app_nobody/batch/more"),
        ("DELETE", "/api/accounts/me"),
        ("PUT", "/api/apps"),
        ("GET", "/api/apps/app_nobody/keys/k/more"),
    ]:
        status, answer, _ = call(sluice, path, {}, method=method)
        assert status == 404, (method, path, answer)
        assert answer["error"] == "route_not_found", (method, path, answer)
        assert set(answer) == {"error", "message"}


@settings(derandomize=True, max_examples=40, deadline=None, database=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    parts=st.lists(segments, min_size=1, max_size=4),
)
def test_any_unknown_path_under_api_is_a_route_not_found_over_http(sluice, method, parts):
    if parts[0] in ("logs", "accounts", "apps", "openapi.json"):
        parts = ["x", *parts]
    path = "/api/" + "/".join(quote(part, safe="") for part in parts)
    status, answer, _ = call(sluice, path, {}, method=method)
    assert (status, answer["error"]) == (404, "route_not_found"), (method, path, answer)
