"""The OpenAPI document against the real handlers: every answer they give is one it describes.

A scripted walk reaches each management route's every documented status (and the
main ones of ingest and accounts); a property-based run over the document's own
request schemas, plus hostile bytes, finds no 5xx and nothing the document forbids.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate

import functions.accounts.app as accounts_app
import functions.ingest.app as ingest_app
import functions.manage.app as manage_app
import functions.store.app as store_app
from tests.handlers.test_accounts import PASSWORD, register, sign_in
from tests.handlers.test_fuzz import FUZZ_SETTINGS
from tests.openapi import Contract, document, operation, operations, parameters, request_schema
from tests.support import SwitchableProxy, drain, http_event, make_app, make_owner, sqs_event

MANAGE_OPERATIONS = [
    (method, route) for method, route in operations() if route.startswith("/api/apps")
]
ACCOUNTS_OPERATIONS = [(m, r) for m, r in operations() if r.startswith("/api/accounts")]


KEY_STATUS = "/api/logs/{app_id}/events/{event_id}"  # the manage function serves it


def handler_for(route: str):
    if (route.startswith("/api/logs") and route != KEY_STATUS) or route.startswith("/v1/"):
        return ingest_app.handler
    if route.startswith("/api/accounts"):
        return accounts_app.handler
    return manage_app.handler


def request(
    contract: Contract,
    context,
    method: str,
    route: str,
    *,
    path: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: object = None,
    headers: dict[str, str] | None = None,
    as_text: bool = False,
):
    """Calls the route's handler as API Gateway would and checks the answer against the document."""
    concrete = route
    for name, value in (path or {}).items():
        concrete = concrete.replace("{" + name + "}", quote(value, safe=""))
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    event = http_event(concrete, raw, method=method, headers=headers, base64_body=True)
    if as_text:  # as API Gateway passes a text body; bytes that are not UTF-8 as escapes
        event["isBase64Encoded"] = False
        event["body"] = raw.decode("utf-8", "surrogateescape")
    if query:
        event["rawQueryString"] = urlencode(query, errors="surrogatepass")
        event["queryStringParameters"] = query
    response = handler_for(route)(event, context)
    status = response["statusCode"]
    return status, contract.check(method, route, status, response.get("body"))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# --- the document itself ----------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1():
    validate(document())
    assert document()["openapi"].startswith("3.1.")


def test_the_manage_function_serves_the_document_without_a_session(context):
    contract = Contract()
    status, served = request(contract, context, "GET", "/api/openapi.json")
    assert (status, served) == (200, document())


def _alternatives(schema: dict) -> list[dict]:
    schema = _resolve(schema)
    if "oneOf" in schema:
        return [alt for sub in schema["oneOf"] for alt in _alternatives(sub)]
    return [schema]


def test_every_error_answer_carries_a_code_and_a_message():
    for method, route in operations():
        for status, response in operation(method, route)["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                for alternative in _alternatives(schema):
                    assert {"error", "message"} <= set(alternative["required"]), (route, status)


# --- the walk: representative requests, every management status -----------------------


@pytest.fixture
def owner(db, clock, manager):
    return make_owner(db, clock)


def test_every_management_route_answers_only_what_the_document_says(
    context,
    db,
    clock,
    owner,
    manager,
    ingestor,
    store_database,
    sqs,
    queues,
    database_url,
    monkeypatch,
):
    contract = Contract()
    token = bearer(owner[1])

    def call(method, route, status, **kwargs):
        kwargs.setdefault("headers", token)
        got, body = request(contract, context, method, route, **kwargs)
        assert got == status, (method, route, body)
        return body

    # Given an app of the owner's, with a key, a rule, and events queued and stored
    call("POST", "/api/apps", 400, body={"name": ""})
    call("POST", "/api/apps", 400, body=b"\xff{")
    call("POST", "/api/apps", 413, body={"name": "x" * 70_000})
    app = call("POST", "/api/apps", 201, body={"name": "Shop"})
    ids = {"app_id": app["app_id"]}
    gone = {"app_id": "app_nobody"}
    call("GET", "/api/apps", 200)
    call("GET", "/api/apps/{app_id}", 200, path=ids)
    call("GET", "/api/apps/{app_id}", 404, path=gone)
    call(
        "PATCH", "/api/apps/{app_id}", 200, path=ids, body={"policies": {"invalid_events": "block"}}
    )
    call("PATCH", "/api/apps/{app_id}", 400, path=ids, body={"colour": "red"})
    call("PATCH", "/api/apps/{app_id}", 404, path=gone, body={"name": "New"})
    call("PATCH", "/api/apps/{app_id}", 413, path=ids, body={"name": "x" * 70_000})
    # keys
    call("GET", "/api/apps/{app_id}/keys", 200, path=ids)
    call("GET", "/api/apps/{app_id}/keys", 404, path=gone)
    key = call("POST", "/api/apps/{app_id}/keys", 201, path=ids)
    call("POST", "/api/apps/{app_id}/keys", 404, path=gone)
    route = "/api/apps/{app_id}/keys/{key_id}"
    call("DELETE", route, 200, path={**ids, "key_id": key["key_id"]})
    call("DELETE", route, 404, path={**ids, "key_id": "not-a-uuid"})
    # rules
    rule = {**ids, "event_name": "checkout flow"}  # a space: percent-encoded in the path
    route = "/api/apps/{app_id}/rules/{event_name}"
    call("PUT", route, 200, path=rule, body={"schema": {"type": "object"}})
    call("PUT", route, 200, path=rule, body={"schema": {"required": ["total"]}})
    call("PUT", route, 400, path=rule, body={"schema": {"type": 5}})
    call("PUT", route, 404, path={**gone, "event_name": "x"}, body={"schema": {}})
    call("PUT", route, 413, path=rule, body={"schema": {"description": "x" * 70_000}})
    call("GET", "/api/apps/{app_id}/rules", 200, path=ids)
    call("GET", "/api/apps/{app_id}/rules", 404, path=gone)
    call("GET", route, 200, path=rule)
    call("GET", route, 404, path={**ids, "event_name": "never"})
    call("GET", route + "/versions", 200, path=rule)
    call("GET", route + "/versions", 404, path={**ids, "event_name": "never"})
    restore = route + "/restore"
    call("POST", restore, 200, path=rule, body={"version": 1})
    call("POST", restore, 400, path=rule, body={"version": 0})
    call("POST", restore, 404, path=rule, body={"version": 99})
    call("POST", restore, 413, path=rule, body={"version": 1, "pad": "x" * 70_000})
    call("DELETE", route, 200, path=rule)
    call("DELETE", route, 404, path=rule)
    # events: one queued, one stored
    sent = ingest_app.handler(
        http_event(
            f"/api/logs/{ids['app_id']}",
            {"eventName": "page_view"},
            headers={"x-api-key": app["api_key"]["key"]},
        ),
        context,
    )
    event_id = json.loads(sent["body"])["event_id"]
    route = "/api/apps/{app_id}/events/{event_id}"
    assert call("GET", route, 200, path={**ids, "event_id": event_id})["status"] == "queued"
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    assert call("GET", route, 200, path={**ids, "event_id": event_id})["status"] == "valid"
    call("GET", route, 404, path={**ids, "event_id": "nope"})
    listed = "/api/apps/{app_id}/events"
    page = call("GET", listed, 200, path=ids, query={"limit": "1", "status": "valid"})
    assert [e["event_id"] for e in page["events"]] == [event_id]
    call("GET", listed, 400, path=ids, query={"limit": "0"})
    call("GET", listed, 400, path=ids, query={"cursor": "not ours"})
    call("GET", listed, 404, path=gone)
    # rejections: a batch's refused item, recorded by the store
    ingest_app.handler(
        http_event(
            f"/api/logs/{ids['app_id']}/batch",
            [{"eventName": "page_view"}, {"eventName": ""}],
            headers={"x-api-key": app["api_key"]["key"]},
        ),
        context,
    )
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    rejections = "/api/apps/{app_id}/rejections"
    page = call("GET", rejections, 200, path=ids, query={"limit": "1"})
    assert [(r["index"], r["code"]) for r in page["rejections"]] == [(1, "invalid_event_name")]
    call("GET", rejections, 400, path=ids, query={"since": "2026-03-01"})
    call("GET", rejections, 404, path=gone)
    # stats, from the rollups (empty here: no aggregation has run, so zeros)
    stats = "/api/apps/{app_id}/stats"
    day = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00Z"}
    series = call("GET", stats, 200, path=ids, query=day)["series"]
    assert len(series) == 24 and {point["count"] for point in series} == {0}
    call("GET", stats, 400, path=ids, query={**day, "granularity": "week"})
    call("GET", stats, 404, path=gone, query=day)
    call("DELETE", "/api/apps/{app_id}", 200, path=ids)
    call("DELETE", "/api/apps/{app_id}", 404, path=ids)

    # Without a session: 401 everywhere
    some = {"app_id": "app_x", "key_id": "k", "event_name": "e", "event_id": "e"}
    for method, route in MANAGE_OPERATIONS:
        call(method, route, 401, path=some, headers={}, body={})

    # With the database gone: 503 everywhere (the session is checked against it first)
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    proxy = SwitchableProxy(database_url)
    service = Manager(Database(DatabaseSettings(url=proxy.url)), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    try:
        for method, route in MANAGE_OPERATIONS:
            call(method, route, 503, path=some, body={"name": "x"})
    finally:
        service.database.close()
        proxy.off()

    # Then every status the document lists for a management route was reached
    documented = {
        (method, route, int(status))
        for method, route in MANAGE_OPERATIONS
        for status in operation(method, route)["responses"]
    }
    assert documented - contract.seen == set()


def test_ingest_answers_only_what_the_document_says(context, db, ingestor):
    contract = Contract()
    app_id, key = make_app(db, rules={"checkout": {"type": "object", "required": ["total"]}})
    headers = {"x-api-key": key}
    one, batch = "/api/logs/{app_id}", "/api/logs/{app_id}/batch"
    ids = {"app_id": app_id}

    def call(route, status, **kwargs):
        kwargs.setdefault("headers", headers)
        got, body = request(contract, context, "POST", route, path=ids, **kwargs)
        assert got == status, (route, body)
        return body

    call(one, 202, body={"eventName": "page_view"})
    call(one, 200, body={"eventName": "page_view"}, query={"dry_run": "true"})
    call(one, 422, body={"eventName": "checkout"})
    call(one, 422, body={"eventName": "checkout"}, query={"dry_run": "1"})
    call(one, 400, body={"eventName": "page_view"}, query={"dry_run": "maybe"})
    call(one, 400, body=b"\xff")
    call(one, 401, body={"eventName": "page_view"}, headers={"x-api-key": "wrong"})
    request(contract, context, "POST", one, path={"app_id": "app_nobody"}, body={"eventName": "a"})
    call(one, 413, body={"eventName": "a", "pad": "x" * 40_000})
    call(batch, 202, body=[{"eventName": "a"}, {"eventName": "checkout"}, {}])
    call(batch, 200, body=[{"eventName": "a"}], query={"dry_run": "true"})
    call(batch, 400, body=[{}, {"eventName": ""}])
    call(batch, 400, body=[])
    call(batch, 413, body=[{"eventName": "a"}] * 501)
    assert ("POST", one, 404) in contract.seen


def test_segment_routes_answer_only_what_the_document_says(context, db, ingestor):
    contract = Contract()
    _, key = make_app(db, rules={"identify": {"type": "object", "required": ["traits"]}})
    basic = {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}
    route = "/v1/{call}"

    def call(name, status, body, headers=basic):
        got, answer = request(
            contract, context, "POST", route, path={"call": name}, body=body, headers=headers
        )
        assert got == status, (name, answer)

    track = {"event": "a", "userId": "u"}
    call("track", 200, track)
    call("batch", 200, {"batch": [{"type": "track", **track}, {"type": "track"}]})
    call("batch", 400, {"batch": [{"type": "track"}]})
    call("t", 400, b"{")
    call("identify", 401, {"userId": "u"}, headers={})
    call("nope", 404, track)
    call("track", 413, {**track, "pad": "x" * 40_000})
    call("p", 200, {"anonymousId": "a"})


def test_accounts_answer_only_what_the_document_says(
    context, db, accounts, mailer, sqs, email_queue, clock
):
    contract = Contract()

    def call(route, status, method="POST", **kwargs):
        got, body = request(contract, context, method, route, **kwargs)
        assert got == status, (route, body)
        return body

    address = "owner@example.com"
    register(context, sqs, email_queue, address)
    token = sign_in(context, sqs, email_queue, clock, address)
    call("/api/accounts/me", 200, "GET", headers=bearer(token))
    call("/api/accounts/register", 400, body={"email": "nope", "password": PASSWORD})
    call("/api/accounts/register", 413, body={"email": "a" * 5000})
    clock.advance(61)
    call("/api/accounts/register", 202, body={"email": "new@example.com", "password": PASSWORD})
    call("/api/accounts/register", 429, body={"email": "new@example.com", "password": PASSWORD})
    call("/api/accounts/sign-in", 202, body={"email": "else@example.com", "password": "x"})
    challenge = {"challenge_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "code": "1"}
    call("/api/accounts/verify", 400, body=challenge)
    call("/api/accounts/sign-in/verify", 400, body=challenge)
    call("/api/accounts/password-reset", 202, body={"email": "third@example.com"})
    call(
        "/api/accounts/password-reset/confirm",
        400,
        body={"token": "7d444840-9dc0-11d1-b245-5ffdce74fad2.x", "password": PASSWORD},
    )
    clock.advance(61)
    fresh = call(
        "/api/accounts/register", 202, body={"email": "new@example.com", "password": PASSWORD}
    )
    tried = {"challenge_id": fresh["challenge_id"], "code": "000000"}  # no code is mailed yet
    for _ in range(5):
        call("/api/accounts/verify", 400, body=tried)
    call("/api/accounts/verify", 429, body=tried)
    call("/api/accounts/sign-out", 204, headers=bearer(token))
    call("/api/accounts/me", 401, "GET", headers=bearer(token))
    call("/api/accounts/sign-out", 401, headers=bearer(token))


# --- the property-based run over the document ------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "%",
        "../..",
        "a/b",
        "é" * 300,
        "x" * 5000,
        "0" * 400,
        "00000000-0000-0000-0000-000000000000",
        "2026-02-30T25:00:00Z",
        "-1",
        "1e999",
    ]
)
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    HOSTILE_TEXT,
    st.text(max_size=40),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
)


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = document()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def from_schema(schema: dict) -> st.SearchStrategy:
    """Values the schema allows (loosely: type, enum, bounds), or hostile ones, mixed."""
    schema = _resolve(schema)
    if "allOf" in schema:
        return from_schema(
            {**_resolve(schema["allOf"][0]), **{k: v for k, v in schema.items() if k != "allOf"}}
        )
    if "oneOf" in schema:
        return st.one_of([from_schema(s) for s in schema["oneOf"]])
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), HOSTILE_VALUES)
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props = schema["properties"]
        return st.fixed_dictionaries(
            {}, optional={name: from_schema(sub) for name, sub in props.items()}
        ).flatmap(
            lambda d: st.dictionaries(
                st.sampled_from(["extra", "$ref"]), HOSTILE_VALUES, max_size=1
            ).map(lambda x: {**d, **x})
        )
    if kind == "object":
        return st.one_of(
            st.dictionaries(
                st.sampled_from(
                    ["type", "required", "properties", "$ref", "items", "pattern", "x"]
                ),
                HOSTILE_VALUES,
                max_size=3,
            ),
            HOSTILE_VALUES,
        )
    if kind == "integer":
        return st.one_of(
            st.integers(schema.get("minimum", -10), schema.get("maximum", 10**6)), HOSTILE_VALUES
        )
    if "examples" in schema:
        return st.one_of(st.sampled_from(schema["examples"]), st.text(max_size=50), HOSTILE_VALUES)
    if kind == "string" and schema.get("format") == "email":
        return st.one_of(st.emails(), HOSTILE_TEXT, st.text(max_size=50))
    if kind == "string" and schema.get("format") == "date-time":
        return st.one_of(
            st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
            HOSTILE_TEXT,
        )
    return st.one_of(st.text(max_size=50), HOSTILE_VALUES)


def valid_for(schema: dict) -> st.SearchStrategy:
    """Values the schema allows, so the run reaches past validation into the database."""
    schema = _resolve(schema)
    if "allOf" in schema:
        rest = {k: v for k, v in schema.items() if k != "allOf"}
        return valid_for({**_resolve(schema["allOf"][0]), **rest})
    if "oneOf" in schema:
        return st.one_of([valid_for(s) for s in schema["oneOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "examples" in schema:
        return st.sampled_from(schema["examples"])
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        props, required = schema["properties"], set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: valid_for(sub) for name, sub in props.items() if name in required},
            optional={name: valid_for(sub) for name, sub in props.items() if name not in required},
        ).filter(lambda d: len(d) >= schema.get("minProperties", 0))
    if kind == "object":
        return st.sampled_from([{}, {"type": "object"}, {"required": ["total"]}])
    if kind == "integer":
        return st.integers(schema.get("minimum", -10), schema.get("maximum", 10**6))
    if kind == "string" and schema.get("format") == "email":
        return st.emails()
    if kind == "string" and schema.get("format") == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return st.text(
        min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 50), 50)
    )


def query_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@st.composite
def requests_for(
    draw, operations_: list[tuple[str, str]], path_values: dict[str, st.SearchStrategy]
):
    method, route = draw(st.sampled_from(operations_))
    path, query = {}, {}
    for parameter in parameters(method, route):
        if parameter["in"] == "path":
            path[parameter["name"]] = draw(
                path_values.get(parameter["name"], st.text(min_size=1, max_size=40))
            )
        elif parameter.get("required") or draw(st.booleans()):
            values = st.one_of(valid_for(parameter["schema"]), from_schema(parameter["schema"]))
            query[parameter["name"]] = query_value(draw(values))
    if draw(st.booleans()):
        query[draw(st.sampled_from(["unknown", "limit", "x"]))] = draw(HOSTILE_TEXT)
    schema = request_schema(method, route)
    kind = draw(st.sampled_from(["valid", "valid", "schema", "schema", "bytes", "deep", "huge"]))
    if kind == "valid":
        body = json.dumps(draw(valid_for(schema))).encode() if schema else None
    elif kind == "bytes":  # invalid UTF-8, truncated JSON, anything
        body = draw(st.binary(max_size=200))
    elif kind == "deep":
        body = b"[" * draw(st.integers(1, 5000)) + b"{}" if draw(st.booleans()) else b'{"a":' * 3000
    elif kind == "huge":
        body = b'{"name": 1' + b"0" * draw(st.integers(300, 5000)) + b', "version": 1e400}'
    else:
        value = draw(from_schema(schema)) if schema else draw(st.none() | HOSTILE_VALUES)
        body = (
            json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")
            if value is not None
            else None
        )
    return method, route, path, query, body, draw(st.booleans())


def fuzz_group(context, operations_, path_values, tokens):
    contract = Contract()

    @settings(FUZZ_SETTINGS, max_examples=500)
    @given(request_=requests_for(operations_, path_values), token=tokens)
    def run(request_, token):
        method, route, path, query, body, as_text = request_
        headers = {"authorization": token} if token is not None else {}
        status, _ = request(
            contract,
            context,
            method,
            route,
            path=path,
            query=query or None,
            body=body,
            headers=headers,
            as_text=as_text,
        )
        assert status < 500

    run()
    return contract


def test_no_request_the_document_describes_gets_a_5xx_or_an_undocumented_answer_from_manage(
    context, db, clock, owner, manager
):
    # Given an app of the owner's with a rule, and another account's app
    app = make_app(db)[0]
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET owner_account_id = %s WHERE app_id = %s", (owner[0], app))
    stranger_app = make_app(db)[0]
    path_values = {
        "app_id": st.sampled_from([app, app, stranger_app, "app_nobody"])
        | st.text(min_size=1, max_size=30),
        "event_name": st.sampled_from(["checkout", "a b", "\x01", "x" * 201])
        | st.text(min_size=1, max_size=30),
        "key_id": st.uuids().map(str) | st.text(min_size=1, max_size=40),
        "event_id": st.uuids().map(str) | st.text(min_size=1, max_size=40),
    }
    tokens = st.sampled_from([f"Bearer {owner[1]}"] * 4 + [None, "Bearer nope", "Basic x", ""])
    contract = fuzz_group(context, MANAGE_OPERATIONS, path_values, tokens)
    # The run reached past the door: some 2xx and some 4xx beyond 401
    statuses = {status for _, _, status in contract.seen}
    assert {200, 201, 400, 401, 404} <= statuses, statuses


def test_no_request_for_an_apps_rejections_gets_a_5xx_or_an_undocumented_answer(
    context, db, clock, owner, manager, ingestor, store_database, sqs, queues
):
    # Given an app of the owner's with stored rejections, and another account's app
    app, key = make_app(db)
    with db.cursor() as cur:
        cur.execute("UPDATE apps SET owner_account_id = %s WHERE app_id = %s", (owner[0], app))
    stranger_app = make_app(db)[0]
    for _ in range(3):
        batch = [{"eventName": "ok"}, {"eventName": 5, "messageId": "m"}, "x"]
        ingest_app.handler(
            http_event(f"/api/logs/{app}/batch", batch, headers={"x-api-key": key}), context
        )
        clock.advance(60)
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    path_values = {
        "app_id": st.sampled_from([app, app, app, stranger_app, "app_nobody"])
        | st.text(min_size=1, max_size=30),
    }
    tokens = st.sampled_from([f"Bearer {owner[1]}"] * 4 + [None, "Bearer nope", ""])
    # When requests of every shape ask for them
    route = ("GET", "/api/apps/{app_id}/rejections")
    contract = fuzz_group(context, [route], path_values, tokens)
    # Then none gets a 5xx or an undocumented answer, and the run reached past the door
    statuses = {status for _, _, status in contract.seen}
    assert {200, 400, 401, 404} <= statuses, statuses


def test_no_request_the_document_describes_gets_a_5xx_or_an_undocumented_answer_from_accounts(
    context, db, clock, accounts
):
    contract = fuzz_group(
        context, ACCOUNTS_OPERATIONS, {}, st.sampled_from([None, "Bearer nope", "Bearer "])
    )
    statuses = {status for _, _, status in contract.seen}
    assert {202, 400, 401} <= statuses, statuses


# --- an event's state for the app's key (the manage function, no session) ---------------


def _sent_and_stored(context, sqs, queues, app_id: str, key: str | None) -> list[str]:
    """Ids in every state: queued, stored valid and invalid, a retry skipped for its row."""
    headers = {"x-api-key": key} if key else {}
    ids = []
    for event in (
        {"eventName": "checkout", "total": 1, "messageId": "m"},
        {"eventName": "checkout"},
        {"eventName": "checkout", "total": 1, "messageId": "m"},
    ):
        response = ingest_app.handler(
            http_event(f"/api/logs/{app_id}", event, headers=headers), context
        )
        ids.append(json.loads(response["body"])["event_id"])
    assert store_app.handler(sqs_event(drain(sqs, queues["events"])), context) == {
        "batchItemFailures": []
    }
    response = ingest_app.handler(
        http_event(f"/api/logs/{app_id}", {"eventName": "later"}, headers=headers), context
    )
    return [*ids, json.loads(response["body"])["event_id"]]


def test_the_keys_event_lookup_answers_only_what_the_document_says(
    context, db, database_url, clock, ingestor, store_database, manager, sqs, queues, monkeypatch
):
    contract = Contract()
    rules = {"checkout": {"type": "object", "required": ["total"]}}
    app_id, key = make_app(db, rules=rules)
    stored, invalid, duplicate, queued = _sent_and_stored(context, sqs, queues, app_id, key)
    headers = {"x-api-key": key}

    def call(status, event_id, app=app_id, **kwargs):
        kwargs.setdefault("headers", headers)
        path = {"app_id": app, "event_id": event_id}
        got, body = request(contract, context, "GET", KEY_STATUS, path=path, **kwargs)
        assert got == status, body
        return body

    assert call(200, stored)["status"] == "valid"
    assert call(200, invalid)["status"] == "invalid"
    assert call(200, duplicate)["event_id"] == stored
    assert call(200, queued)["status"] == "queued"
    call(401, stored, headers={})
    call(401, stored, headers={"authorization": "Basic x"})
    call(404, "nope")
    call(404, stored, app="app_nobody")
    # With the database gone: 503
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database
    from sluice.manage.manage import Manager

    proxy = SwitchableProxy(database_url)
    service = Manager(Database(DatabaseSettings(url=proxy.url)), clock)
    monkeypatch.setattr(manage_app, "manager", lambda: service)
    try:
        proxy.off()
        call(503, stored)
    finally:
        service.database.close()
    assert {status for _, _, status in contract.seen} == {
        int(status) for status in operation("GET", KEY_STATUS)["responses"]
    }


def test_no_request_to_the_keys_event_lookup_gets_a_5xx_or_an_undocumented_answer(
    context, db, clock, ingestor, store_database, manager, sqs, queues
):
    # Given two apps with events in every state, and a keyless app
    rules = {"checkout": {"type": "object", "required": ["total"]}}
    app_id, key = make_app(db, rules=rules)
    other_app, other_key = make_app(db, rules=rules)
    keyless, _ = make_app(db, require_key=False)
    ids = _sent_and_stored(context, sqs, queues, app_id, key)
    ids += _sent_and_stored(context, sqs, queues, other_app, other_key)
    ids += _sent_and_stored(context, sqs, queues, keyless, None)
    path_values = {
        "app_id": st.sampled_from([app_id, app_id, other_app, keyless, "app_nobody"])
        | st.text(min_size=1, max_size=30),
        "event_id": st.sampled_from(ids) | st.uuids().map(str) | st.text(min_size=1, max_size=40),
    }
    tokens = st.sampled_from(
        [f"Bearer {key}"] * 3 + [f"Bearer {other_key}", None, "Bearer nope", "Basic x", ""]
    )
    # When requests of every shape ask for them
    contract = fuzz_group(context, [("GET", KEY_STATUS)], path_values, tokens)
    # Then none gets a 5xx or an answer the document does not describe, and the run
    # reached every state: found, refused, unknown
    statuses = {status for _, _, status in contract.seen}
    assert {200, 401, 404} <= statuses, statuses
