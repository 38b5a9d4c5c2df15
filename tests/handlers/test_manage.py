"""The manage handler as API Gateway calls it: real PostgreSQL, the manual clock.

An owner signs in (a session made in the database: the accounts flow is tested in
test_accounts.py), then manages apps, keys and rules; ingest, on the same database,
follows what was saved.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functions.ingest.app as ingest_app
import functions.manage.app as manage_app
from tests.support import SwitchableProxy, http_event, make_app, make_owner

CHECKOUT_RULE = {"type": "object", "required": ["total"]}


def call(context, method: str, path: str, body=None, *, token: str | None = None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    # Bytes that are not UTF-8 reach a function base64-encoded, as API Gateway sends them.
    binary = isinstance(body, bytes)
    path, _, query = path.partition("?")
    event = http_event(path, body, method=method, headers=headers, base64_body=binary)
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    response = manage_app.handler(event, context)
    data = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], data


def send(context, app_id: str, key: str, event: dict):
    response = ingest_app.handler(
        http_event(f"/api/logs/{app_id}", event, headers={"x-api-key": key}), context
    )
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def owner(db, clock, manager):
    return make_owner(db, clock)


@pytest.fixture
def stranger(db, clock, manager):
    return make_owner(db, clock, "stranger@sluice.test")


@pytest.fixture
def created(context, owner):
    status, body = call(context, "POST", "/api/apps", {"name": "Shop"}, token=owner[1])
    assert status == 201, body
    return body


def test_an_app_is_created_with_its_first_key_shown_once(context, owner, created, ingestor):
    # Given an app just created, its key in the answer
    key = created["api_key"]["key"]
    assert key.startswith(created["api_key"]["prefix"] + "_")
    # Then ingest takes events with that key at once
    assert send(context, created["app_id"], key, {"eventName": "page_view"})[0] == 202
    # And the key is never shown again
    status, listed = call(context, "GET", f"/api/apps/{created['app_id']}/keys", token=owner[1])
    assert status == 200
    assert [k["prefix"] for k in listed["keys"]] == [created["api_key"]["prefix"]]
    assert key not in json.dumps(listed)
    status, apps = call(context, "GET", "/api/apps", token=owner[1])
    assert [a["app_id"] for a in apps["apps"]] == [created["app_id"]]
    assert apps["apps"][0]["policies"] == {
        "invalid_events": "store",
        "unplanned_events": "allow",
        "retention_days": 30,
    }


def test_another_account_gets_404_for_every_route_never_403(context, created, stranger, db):
    app_id = created["app_id"]
    key_id = created["api_key"]["key_id"]
    token = stranger[1]
    attempts = [
        ("GET", f"/api/apps/{app_id}", None),
        ("PATCH", f"/api/apps/{app_id}", {"name": "Mine now"}),
        ("DELETE", f"/api/apps/{app_id}", None),
        ("GET", f"/api/apps/{app_id}/keys", None),
        ("POST", f"/api/apps/{app_id}/keys", None),
        ("DELETE", f"/api/apps/{app_id}/keys/{key_id}", None),
        ("GET", f"/api/apps/{app_id}/rules", None),
        ("PUT", f"/api/apps/{app_id}/rules/checkout", {"schema": CHECKOUT_RULE}),
        ("GET", f"/api/apps/{app_id}/rules/checkout", None),
        ("DELETE", f"/api/apps/{app_id}/rules/checkout", None),
        ("GET", f"/api/apps/{app_id}/rules/checkout/versions", None),
        ("POST", f"/api/apps/{app_id}/rules/checkout/restore", {"version": 1}),
    ]
    for method, path, body in attempts:
        status, answer = call(context, method, path, body, token=token)
        assert (status, answer["error"]) == (404, "app_not_found"), (method, path)
        # The same answer as for an app that does not exist at all
        unknown = path.replace(app_id, "app_" + "0" * 32)
        assert call(context, method, unknown, body, token=token) == (
            404,
            {**answer, "message": answer["message"].replace(app_id, "app_" + "0" * 32)},
        )
    status, apps = call(context, "GET", "/api/apps", token=token)
    assert apps == {"apps": []}
    # And nothing changed
    with db.cursor() as cur:
        cur.execute("SELECT name FROM apps WHERE app_id = %s", (app_id,))
        assert cur.fetchone() == ("Shop",)
        cur.execute("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
        assert cur.fetchone() == (1,)


def test_apps_made_by_the_cli_belong_to_nobody(context, owner, db):
    app_id, _ = make_app(db)
    assert call(context, "GET", f"/api/apps/{app_id}", token=owner[1])[0] == 404


def test_every_route_wants_a_live_session(context, owner, created, clock):
    assert call(context, "GET", "/api/apps")[0] == 401
    assert call(context, "GET", "/api/apps", token="not-a-session")[0] == 401  # noqa: S106
    assert call(context, "GET", "/api/apps", token=owner[1])[0] == 200
    clock.advance(12 * 3600 + 1)  # sessions last 12 hours
    status, body = call(context, "GET", "/api/apps", token=owner[1])
    assert (status, body["error"]) == (401, "unauthorized")


def test_rename_and_delete(context, owner, created, db):
    app_id = created["app_id"]
    status, body = call(context, "PATCH", f"/api/apps/{app_id}", {"name": "Store"}, token=owner[1])
    assert (status, body["name"]) == (200, "Store")
    call(context, "PUT", f"/api/apps/{app_id}/rules/a", {"schema": {}}, token=owner[1])
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO events (event_id, app_id, event_name, payload, status, occurred_at,"
            " received_at) VALUES (gen_random_uuid(), %s, 'a', '{}', 'valid', now(), now())",
            (app_id,),
        )
    status, deleted = call(context, "DELETE", f"/api/apps/{app_id}", token=owner[1])
    assert (status, deleted["app_id"], deleted["deleted"]) == (200, app_id, True)
    assert call(context, "GET", f"/api/apps/{app_id}", token=owner[1])[0] == 404
    with db.cursor() as cur:
        for table in ("apps", "api_keys", "rules", "rule_versions"):
            cur.execute(f"SELECT count(*) FROM {table} WHERE app_id = %s", (app_id,))  # noqa: S608
            assert cur.fetchone() == (0,), table
        # The events go in chunks, by the maintain function (tests/retention), from this record
        cur.execute("SELECT count(*) FROM deleted_apps WHERE app_id = %s", (app_id,))
        assert cur.fetchone() == (1,)


def test_a_revoked_key_stops_working_after_the_cache_ttl(context, owner, created, ingestor, clock):
    app_id, old = created["app_id"], created["api_key"]
    status, new = call(context, "POST", f"/api/apps/{app_id}/keys", token=owner[1])
    assert status == 201 and new["key"].startswith("sk_")
    assert send(context, app_id, old["key"], {"eventName": "a"})[0] == 202
    status, revoked = call(
        context, "DELETE", f"/api/apps/{app_id}/keys/{old['key_id']}", token=owner[1]
    )
    assert status == 200 and revoked["revoked_at"]
    clock.advance(61)  # ingest's key cache
    assert send(context, app_id, old["key"], {"eventName": "a"})[0] == 401
    assert send(context, app_id, new["key"], {"eventName": "a"})[0] == 202
    assert call(context, "DELETE", f"/api/apps/{app_id}/keys/nope", token=owner[1])[0] == 404


def test_a_broken_rule_is_a_400_that_says_what_is_wrong_and_never_reaches_ingest(
    context, owner, created
):
    app_id = created["app_id"]
    for schema, words in [
        ({"type": "strin"}, "strin"),
        ({"properties": {"a": {"pattern": "(?=x)"}}}, "lookaround"),
        ({"$ref": "https://example.com/s.json"}, "refer"),
        ([1], "object"),
    ]:
        status, body = call(
            context, "PUT", f"/api/apps/{app_id}/rules/checkout", {"schema": schema}, token=owner[1]
        )
        assert (status, body["error"]) == (400, "invalid_rule"), schema
        assert words in body["message"]
    assert call(context, "GET", f"/api/apps/{app_id}/rules/checkout", token=owner[1])[0] == 404


def test_every_change_keeps_a_version_and_an_old_one_can_be_restored(
    context, owner, created, ingestor, clock
):
    app_id, key = created["app_id"], created["api_key"]["key"]
    token = owner[1]
    base = f"/api/apps/{app_id}/rules/checkout"
    assert call(context, "PUT", base, {"schema": CHECKOUT_RULE}, token=token)[1]["version"] == 1
    assert call(context, "PUT", base, {"schema": {}}, token=token)[1]["version"] == 2
    assert call(context, "DELETE", base, token=token)[1] == {
        **call(context, "GET", f"{base}/versions", token=token)[1]["versions"][0],
        "deleted": True,
        "ingest_follows_within_seconds": 60,
    }
    versions = call(context, "GET", f"{base}/versions", token=token)[1]["versions"]
    assert [(v["version"], v["deleted"]) for v in versions] == [(3, True), (2, False), (1, False)]
    status, restored = call(context, "POST", f"{base}/restore", {"version": 1}, token=token)
    assert (status, restored["version"], restored["schema"]) == (200, 4, CHECKOUT_RULE)
    assert call(context, "GET", base, token=token)[1]["schema"] == CHECKOUT_RULE
    # Ingest follows within its rules cache TTL
    clock.advance(61)
    status, body = send(context, app_id, key, {"eventName": "checkout"})
    assert (status, body["status"]) == (422, "invalid")
    assert call(context, "POST", f"{base}/restore", {"version": 9}, token=token)[0] == 404
    assert call(context, "POST", f"{base}/restore", {"version": "1"}, token=token)[0] == 400


def test_policies_are_checked_when_set(context, owner, created):
    path = f"/api/apps/{created['app_id']}"
    token = owner[1]
    status, body = call(
        context, "PATCH", path, {"policies": {"invalid_events": "block"}}, token=token
    )
    assert (status, body["policies"]["invalid_events"]) == (200, "block")
    status, body = call(context, "PATCH", path, {"policies": {"retention_days": 7}}, token=token)
    assert (status, body["policies"]["retention_days"]) == (200, 7)
    assert call(context, "GET", path, token=token)[1]["policies"]["retention_days"] == 7
    for bad in (
        {"policies": {"retention_days": 0}},
        {"policies": {"retention_days": 3651}},
        {"policies": {"retention_days": 7.5}},
        {"policies": {"retention_days": True}},
        {"policies": {"retention_days": "7"}},
        {"policies": {"invalid_events": "drop"}},
        {"policies": {"other": "block"}},
        {"policies": []},
        {"colour": "red"},
        {},
    ):
        assert call(context, "PATCH", path, bad, token=token)[0] == 400, bad


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=5,
)


@settings(
    derandomize=True,
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=st.one_of(st.integers(-(2**70), 2**70), JSON_VALUES))
def test_any_retention_is_a_200_with_it_kept_or_a_400_with_it_unchanged(
    context, owner, created, value
):
    path = f"/api/apps/{created['app_id']}"
    before = call(context, "GET", path, token=owner[1])[1]["policies"]["retention_days"]
    status, body = call(
        context, "PATCH", path, {"policies": {"retention_days": value}}, token=owner[1]
    )
    valid = type(value) is int and 1 <= value <= 3650
    assert status == (200 if valid else 400), (value, body)
    after = call(context, "GET", path, token=owner[1])[1]["policies"]["retention_days"]
    assert after == (value if valid else before)


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b"\xff", b'"x"', json.dumps({"name": 5}).encode(), b'{"name": ""}']
)
def test_bad_bodies_are_400s(context, owner, body):
    status, answer = call(context, "POST", "/api/apps", body, token=owner[1])
    assert status == 400 and set(answer) == {"error", "message"}


def test_an_oversize_body_is_a_413(context, owner):
    status, answer = call(context, "POST", "/api/apps", {"name": "x" * 70_000}, token=owner[1])
    assert (status, answer["error"]) == (413, "payload_too_large")


def test_a_database_outage_is_a_503(context, owner, database_url, monkeypatch, clock):
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    proxy = SwitchableProxy(database_url)
    proxy.on()
    service = Manager(Database(DatabaseSettings(url=proxy.url)), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    try:
        assert call(context, "GET", "/api/apps", token=owner[1])[0] == 200
        proxy.off()
        status, body = call(context, "GET", "/api/apps", token=owner[1])
        assert (status, body["error"]) == (503, "database_unavailable")
    finally:
        service.database.close()
        proxy.off()


def test_the_manage_role_can_do_what_the_routes_need(database_url, db, clock, context, monkeypatch):
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    _, token = make_owner(db, clock)
    service = Manager(Database(DatabaseSettings(url=database_url, user="sluice_manage")), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    status, app = call(context, "POST", "/api/apps", {"name": "Roles"}, token=token)
    assert status == 201
    base = f"/api/apps/{app['app_id']}"
    assert call(context, "PUT", f"{base}/rules/a", {"schema": {}}, token=token)[0] == 200
    assert call(context, "POST", f"{base}/rules/a/restore", {"version": 1}, token=token)[0] == 200
    assert call(context, "DELETE", f"{base}/keys/{app['api_key']['key_id']}", token=token)[0] == 200
    assert call(context, "PATCH", base, {"name": "R"}, token=token)[0] == 200
    assert call(context, "DELETE", base, token=token)[0] == 200
    service.database.close()
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        conn = psycopg2.connect(database_url, user="sluice_manage")
        with conn.cursor() as cur:
            cur.execute("SELECT password_hash FROM accounts")


def test_an_event_is_queued_then_stored_and_a_never_issued_id_is_404(
    context, owner, created, ingestor, store_database, sqs, queues, clock
):
    import uuid

    import functions.store.app as store_app
    from tests.support import drain, sqs_event

    app_id, key = created["app_id"], created["api_key"]["key"]
    status, sent = send(context, app_id, key, {"eventName": "page_view"})
    assert status == 202
    path = f"/api/apps/{app_id}/events/{sent['event_id']}"
    # Given an id ingest issued, not stored yet: queued
    assert call(context, "GET", path, token=owner[1]) == (
        200,
        {"event_id": sent["event_id"], "status": "queued"},
    )
    # Never issued (a random UUIDv4, a UUIDv7 with no MAC, not a UUID, and ids whose time
    # bits run past datetime's year 9999 — one random UUID in ten has them): 404
    never_issued = (
        str(uuid.uuid4()),
        "0190c9e2-1234-7abc-8def-0123456789ab",
        "nope",
        "ffffffff-ffff-4fff-bfff-ffffffffffff",
        "ffffffff-ffff-7fff-bfff-ffffffffffff",
        "e677d21f-d818-7fff-bfff-ffffffffffff",  # 9999-12-31 23:59:59, the last second
    )
    for other in never_issued:
        status, body = call(context, "GET", f"/api/apps/{app_id}/events/{other}", token=owner[1])
        assert (status, body["error"]) == (404, "event_not_found"), other
    # The same id asked about under another app of the owner's: 404
    other_app = call(context, "POST", "/api/apps", {"name": "Other"}, token=owner[1])[1]
    assert (
        call(
            context,
            "GET",
            f"/api/apps/{other_app['app_id']}/events/{sent['event_id']}",
            token=owner[1],
        )[0]
        == 404
    )
    # Once stored: the row
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    status, stored = call(context, "GET", path, token=owner[1])
    assert (status, stored["status"], stored["event_name"]) == (200, "valid", "page_view")


def test_events_are_listed_newest_first_with_filters_and_a_cursor(
    context, owner, created, ingestor, store_database, sqs, queues, clock
):
    import functions.store.app as store_app
    from tests.support import drain, sqs_event

    app_id, key = created["app_id"], created["api_key"]["key"]
    call(
        context,
        "PUT",
        f"/api/apps/{app_id}/rules/b",
        {"schema": {"required": ["x"]}},
        token=owner[1],
    )
    for i in range(7):
        clock.advance(1)
        send(context, app_id, key, {"eventName": "a" if i % 2 else "b", "i": i})
    store_app.handler(sqs_event(drain(sqs, queues["events"])), context)
    base = f"/api/apps/{app_id}/events"

    pages, cursor = [], None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = call(context, "GET", base + query, token=owner[1])
        assert status == 200, page
        pages.append([e["payload"]["i"] for e in page["events"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[6, 5, 4], [3, 2, 1], [0]]
    status, invalid = call(context, "GET", base + "?status=invalid", token=owner[1])
    assert [e["payload"]["i"] for e in invalid["events"]] == [6, 4, 2, 0]
    status, named = call(context, "GET", base + "?event_name=a&limit=2", token=owner[1])
    assert [e["payload"]["i"] for e in named["events"]] == [5, 3]
    for bad in (
        "?limit=0",
        "?limit=101",
        "?limit=x",
        "?status=odd",
        "?since=yesterday",
        "?cursor=%%%",
        "?colour=red",
        "?since=2026-01-01T00:00:00",
    ):
        status, body = call(context, "GET", base + bad, token=owner[1])
        assert status == 400 and set(body) == {"error", "message"}, bad


def _store_bodies_with(context, bodies: list[str], event_id: str) -> None:
    """Stores the one queued message that carries `event_id`, alone in its batch."""
    import functions.store.app as store_app
    from tests.support import sqs_event

    [body] = [body for body in bodies if event_id in body]
    assert store_app.handler(sqs_event([body]), context) == {"batchItemFailures": []}


@pytest.fixture
def as_roles(database_url, clock, monkeypatch):
    """The store and manage handlers as their own database roles: their grants are tested."""
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    import functions.store.app as store_app

    store = Database(DatabaseSettings(url=database_url, user="sluice_store"))
    service = Manager(Database(DatabaseSettings(url=database_url, user="sluice_manage")), clock)
    monkeypatch.setattr(store_app, "database", lambda: store)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    yield
    store.close()
    service.database.close()


def test_a_second_send_of_a_message_id_leads_to_the_row_stored(
    context, owner, created, ingestor, sqs, queues, db, as_roles
):
    from tests.support import drain

    # Given an event sent twice with one messageId (a client's retry after a timeout)
    app_id, key = created["app_id"], created["api_key"]["key"]
    event = {"eventName": "page_view", "messageId": "retry-1"}
    first = send(context, app_id, key, event)[1]["event_id"]
    second = send(context, app_id, key, event)[1]["event_id"]
    assert first != second
    bodies = drain(sqs, queues["events"])
    # When the first is stored, then the retry (skipped: its messageId is taken)
    _store_bodies_with(context, bodies, first)
    _store_bodies_with(context, bodies, second)
    # And the retry's message comes again (an SQS redelivery)
    _store_bodies_with(context, bodies, second)
    with db.cursor() as cur:
        cur.execute("SELECT event_id::text FROM events")
        assert cur.fetchall() == [(first,)]
    # Then the retry's id leads to the row that was stored, never to "queued"
    status, found = call(context, "GET", f"/api/apps/{app_id}/events/{second}", token=owner[1])
    assert status == 200, found
    assert (found["event_id"], found["status"], found["duplicate_event_id"]) == (
        first,
        "valid",
        second,
    )
    # And the first id is the row itself, with no duplicate_event_id
    status, original = call(context, "GET", f"/api/apps/{app_id}/events/{first}", token=owner[1])
    assert (status, original["event_id"]) == (200, first)
    assert "duplicate_event_id" not in original
    assert {k: v for k, v in found.items() if k != "duplicate_event_id"} == original


def test_a_message_id_twice_in_one_batch_leads_both_ids_to_one_row(
    context, owner, created, ingestor, store_database, sqs, queues
):
    import functions.store.app as store_app
    from tests.support import drain, sqs_event

    app_id, key = created["app_id"], created["api_key"]["key"]
    event = {"eventName": "page_view", "messageId": "twice"}
    response = ingest_app.handler(
        http_event(f"/api/logs/{app_id}/batch", [event, event], headers={"x-api-key": key}),
        context,
    )
    ids = [item["event_id"] for item in json.loads(response["body"])["results"]]
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    found = [
        call(context, "GET", f"/api/apps/{app_id}/events/{event_id}", token=owner[1])
        for event_id in ids
    ]
    assert [status for status, _ in found] == [200, 200]
    # The first of a batch wins; the second leads to it
    assert [body["event_id"] for _, body in found] == [ids[0], ids[0]]
    assert [body["status"] for _, body in found] == ["valid", "valid"]
    assert found[1][1]["duplicate_event_id"] == ids[1]


# Not the defaults, so a number in an answer can only come from the settings.
CACHE_ENVIRONMENT = {
    "RULES_CACHE_TTL_SECONDS": "7",
    "KEYS_CACHE_TTL_SECONDS": "11",
    "UNKNOWN_KEY_CACHE_TTL_SECONDS": "3",
}


@pytest.fixture
def cached_pair(database_url, queues, events_sqs, clock, monkeypatch):
    """Ingest and manage built from one environment, as the template gives them."""
    from sluice.core.config import IngestSettings, ManageSettings
    from sluice.core.db import Database
    from sluice.intake.catalog import Catalog
    from sluice.intake.event_ids import EventIds
    from sluice.intake.ingest import Ingestor
    from sluice.intake.queue import EventQueue
    from sluice.manage.manage import Manager

    environment = {
        **CACHE_ENVIRONMENT,
        "EVENTS_QUEUE_URL": queues["events"],
        "DATABASE_URL": database_url,
    }
    ingest_settings = IngestSettings.from_env(environment)
    database = Database(ingest_settings.database)
    ingestor = Ingestor(
        ingest_settings,
        Catalog(database, ingest_settings, clock),
        EventQueue(events_sqs, ingest_settings.events_queue_url),
        clock,
        EventIds(database).new,
    )
    monkeypatch.setattr(ingest_app, "ingestor", lambda: ingestor)
    manage_settings = ManageSettings.from_env(environment)
    manager = Manager(
        Database(manage_settings.database), clock, ingest_cache=manage_settings.ingest_cache
    )
    monkeypatch.setattr(manage_app, "manager", lambda: manager)
    yield
    manager.database.close()
    database.close()


def test_every_change_says_when_ingest_follows_it_and_ingest_does(context, db, clock, cached_pair):
    # Given an owner's app, its key and rule seen by ingest
    _, token = make_owner(db, clock)
    status, created = call(context, "POST", "/api/apps", {"name": "Shop"}, token=token)
    assert created["ingest_follows_within_seconds"] == 3  # an id nobody could have tried
    app_id, key = created["app_id"], created["api_key"]["key"]
    rule = f"/api/apps/{app_id}/rules/checkout"
    status, saved = call(context, "PUT", rule, {"schema": {}}, token=token)
    assert (status, saved["ingest_follows_within_seconds"]) == (200, 7)
    clock.advance(7)
    assert send(context, app_id, key, {"eventName": "checkout"})[0] == 202

    def follows(answer: tuple[int, dict], seconds: int, then: int, event=None) -> None:
        status, body = answer
        assert status == 200 and body["ingest_follows_within_seconds"] == seconds, body
        clock.advance(seconds)
        assert send(context, app_id, key, event or {"eventName": "checkout"})[0] == then

    # When the rule changes, ingest applies it within the time the answer gave
    follows(call(context, "PUT", rule, {"schema": CHECKOUT_RULE}, token=token), 7, 422)
    follows(call(context, "DELETE", rule, token=token), 7, 202)
    follows(
        call(context, "POST", f"{rule}/restore", {"version": 2}, token=token),
        7,
        422,
    )
    policies = {"policies": {"unplanned_events": "block"}}
    follows(
        call(context, "PATCH", f"/api/apps/{app_id}", policies, token=token),
        7,
        422,
        {"eventName": "other"},
    )
    status, new_key = call(context, "POST", f"/api/apps/{app_id}/keys", token=token)
    assert (status, new_key["ingest_follows_within_seconds"]) == (201, 3)
    status, keys = call(context, "GET", f"/api/apps/{app_id}/keys", token=token)
    first = next(k for k in keys["keys"] if k["key_id"] != new_key["key_id"])
    follows(
        call(context, "DELETE", f"/api/apps/{app_id}/keys/{first['key_id']}", token=token), 11, 401
    )
    key = new_key["key"]
    follows(call(context, "DELETE", f"/api/apps/{app_id}", token=token), 7, 404)
