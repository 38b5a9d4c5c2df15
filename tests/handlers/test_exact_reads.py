"""Every exit serves what ingest accepted: the management API's events and rules, the
local console and the archive give back each JSON value as stored, numbers exact.

PostgreSQL's jsonb keeps every digit; the readers must too. Answers are parsed here
with every number as a Decimal (tests.handlers.test_door.exact), so a comparison is
digit for digit (1e-400 equals the 0.000…1 jsonb prints).
"""

from __future__ import annotations

import json
import time
from datetime import date
from types import SimpleNamespace

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sluice.core.config import DatabaseSettings
from sluice.core.db import Database
from sluice.retention import partitions
from sluice.retention.archive import ArchiveBucket, object_key

import functions.manage.app as manage_app
from local_runtime.console import Console
from local_runtime.console import _json as console_json
from tests.handlers.test_door import exact
from tests.handlers.test_manage import call
from tests.handlers.test_properties import (
    CLIENT_ERRORS,
    PROPERTY_SETTINGS,
    events,
    send,
    to_json,
)
from tests.handlers.test_store import failed_ids, store
from tests.support import drain, http_event, make_owner

BIG_INTEGERS = '{"eventName": "x", "n": 18446744073709551616, "m": -9223372036854775809}'
LONG_NUMBERS = (
    '{"eventName": "x", "tiny": 1e-400, "pi": 3.14159265358979323846,'
    ' "big": 12345678901234567890123.5, "list": [1E+2, -0.0, 99999999999999999999e-5]}'
)
RULE = {"type": "object", "required": ["x"]}


def read(context, path: str, token: str):
    """A GET of the management API, its answer parsed with numbers exact."""
    path, _, query = path.partition("?")
    event = http_event(path, None, method="GET", headers={"authorization": f"Bearer {token}"})
    if query:
        event["rawQueryString"] = query
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    response = manage_app.handler(event, context)
    return response["statusCode"], exact(response["body"])


@pytest.fixture
def owned(db, clock, context, manager, ingestor, store_database, sqs, queues):
    """An app made through the API (its owner can read it), and a way to send and store."""
    _, token = make_owner(db, clock)
    status, app = call(context, "POST", "/api/apps", {"name": "Exact"}, token=token)
    assert status == 201, app
    app_id, key = app["app_id"], app["api_key"]["key"]
    status, _ = call(context, "PUT", f"/api/apps/{app_id}/rules/e", {"schema": RULE}, token=token)
    assert status == 200

    def send_and_store(route: str, body: str):
        status, answer = send(context, f"/api/logs/{app_id}{route}", key, body)
        assert status < 500, answer
        response, _ = store(context, drain(sqs, queues["events"]))
        assert failed_ids(response) == [], "an acknowledged event was not stored"
        return status, answer

    return SimpleNamespace(app_id=app_id, token=token, send=send_and_store)


@pytest.mark.parametrize("body", [BIG_INTEGERS, LONG_NUMBERS], ids=["past-64-bits", "long"])
def test_the_events_list_and_the_lookup_give_back_every_number_as_stored(context, owned, body):
    # Given an event ingest accepted and stored, its numbers beyond a double
    status, answer = owned.send("", body)
    assert status == 202, answer
    base = f"/api/apps/{owned.app_id}/events"
    # When the owner lists the app's events and looks the event up
    listed = read(context, base, owned.token)
    found = read(context, f"{base}/{answer['event_id']}", owned.token)
    # Then both answer 200 with the payload exactly as sent
    assert listed[0] == 200, listed
    assert [e["payload"] for e in listed[1]["events"]] == [exact(body)]
    assert found[0] == 200, found
    assert found[1]["payload"] == exact(body)


def test_a_page_with_one_such_event_still_lists_the_others(context, owned):
    for body in ('{"eventName": "before"}', BIG_INTEGERS, '{"eventName": "after"}'):
        assert owned.send("", body)[0] == 202
    status, page = read(context, f"/api/apps/{owned.app_id}/events?limit=2", owned.token)
    assert status == 200, page
    assert [e["event_name"] for e in page["events"]] == ["after", "x"]
    status, rest = read(
        context,
        f"/api/apps/{owned.app_id}/events?limit=2&cursor={page['next_cursor']}",
        owned.token,
    )
    assert [e["event_name"] for e in rest["events"]] == ["before"]


# --- rules: kept exactly, or refused before anything is saved -----------------------


def rule_rows(db, app_id: str) -> tuple[int, int]:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM rules WHERE app_id = %s AND event_name = 'n'", (app_id,))
        (rules,) = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM rule_versions WHERE app_id = %s AND event_name = 'n'", (app_id,)
        )
        return rules, cur.fetchone()[0]


def put_rule_text(context, app_id: str, token: str, schema_text: str):
    event = http_event(
        f"/api/apps/{app_id}/rules/n",
        f'{{"schema": {schema_text}}}'.encode(),
        method="PUT",
        headers={"authorization": f"Bearer {token}"},
        base64_body=True,
    )
    response = manage_app.handler(event, context)
    return response["statusCode"], exact(response["body"])


@pytest.mark.parametrize(
    "number", ["18446744073709551616", "-9223372036854775809", "3.14159265358979323846", "1e-400"]
)
def test_a_rule_with_a_number_it_cannot_keep_exactly_is_refused_and_nothing_is_saved(
    context, owned, db, number
):
    base = f"/api/apps/{owned.app_id}/rules"
    schema = f'{{"type": "object", "properties": {{"n": {{"maximum": {number}}}}}}}'
    # When the owner saves a rule holding a number ingest's checks cannot hold exactly
    status, answer = put_rule_text(context, owned.app_id, owned.token, schema)
    # Then it is a 400 that names the number, and neither the rule nor a version is saved
    assert (status, answer["error"]) == (400, "inexact_number"), answer
    assert number.lower() in answer["message"].lower()
    assert rule_rows(db, owned.app_id) == (0, 0)
    # And every read of the rules still answers
    assert read(context, base, owned.token)[0] == 200
    assert read(context, f"{base}/n", owned.token)[0] == 404
    assert read(context, f"{base}/n/versions", owned.token)[0] == 404


def test_a_deeply_nested_rule_with_such_a_number_is_refused_too(context, owned, db):
    # Deeper than orjson writes (255 levels): the check walks, it does not write
    depth = 300
    schema = '{"allOf": [' * depth + '{"maximum": 3.14159265358979323846}' + "]}" * depth
    status, answer = put_rule_text(context, owned.app_id, owned.token, schema)
    assert (status, answer["error"]) == (400, "inexact_number"), answer
    assert rule_rows(db, owned.app_id) == (0, 0)


def test_a_rule_with_numbers_a_double_or_64_bits_hold_is_kept_exactly(context, owned, db):
    schema = (
        '{"type": "object", "properties": {"n": {"maximum": 18446744073709551615,'
        ' "minimum": -9223372036854775808, "multipleOf": 0.1, "exclusiveMaximum": 1e300}}}'
    )
    status, saved = put_rule_text(context, owned.app_id, owned.token, schema)
    assert status == 200, saved
    assert saved["schema"] == exact(schema)
    base = f"/api/apps/{owned.app_id}/rules"
    assert read(context, f"{base}/n", owned.token)[1]["schema"] == exact(schema)
    assert read(context, f"{base}/n/versions", owned.token)[1]["versions"][0]["schema"] == exact(
        schema
    )
    assert rule_rows(db, owned.app_id) == (1, 1)


def test_a_rule_saved_with_a_big_number_before_is_still_read_exactly(context, owned, db, clock):
    # Given a rule an older version saved with a number past 64 bits (straight in the tables)
    schema = '{"properties": {"n": {"maximum": 18446744073709551616, "minimum": 1e-400}}}'
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO rules (app_id, event_name, schema, updated_at)"
            " VALUES (%s, 'n', %s::jsonb, %s)",
            (owned.app_id, schema, clock.now()),
        )
        cur.execute(
            "INSERT INTO rule_versions (app_id, event_name, version, schema, created_at)"
            " VALUES (%s, 'n', 1, %s::jsonb, %s)",
            (owned.app_id, schema, clock.now()),
        )
    base = f"/api/apps/{owned.app_id}/rules"
    # Then the list, the rule and its versions answer 200 with it exactly
    status, rules = read(context, base, owned.token)
    assert status == 200, rules
    assert {r["event_name"]: r["schema"] for r in rules["rules"]}["n"] == exact(schema)
    assert read(context, f"{base}/n", owned.token)[1]["schema"] == exact(schema)
    status, versions = read(context, f"{base}/n/versions", owned.token)
    assert status == 200, versions
    assert versions["versions"][0]["schema"] == exact(schema)
    # And restoring it keeps it as it was
    status, restored = call(context, "POST", f"{base}/n/restore", {"version": 1}, token=owned.token)
    assert status == 200, restored
    assert read(context, f"{base}/n", owned.token)[1]["schema"] == exact(schema)


# --- the console and the archive ----------------------------------------------------


@pytest.fixture
def console(database_url):
    """The local console's data, read from the test database (no runtime around it)."""
    console = Console(SimpleNamespace(database_url=database_url))
    yield console
    console.close()


def console_payloads(console) -> dict[str, object]:
    """What the console's data says each recent event holds, in the console's own encoding."""
    data = json.loads(console_json(200, console.stored(time.time())).body)
    return {e["event_id"]: exact(e["payload"]) for e in data["events"] if "payload" in e}


def test_the_console_shows_each_recent_events_payload_exactly(owned, console):
    status, answer = owned.send("", LONG_NUMBERS)
    assert status == 202
    assert console_payloads(console) == {answer["event_id"]: exact(LONG_NUMBERS)}


@pytest.fixture
def archive(database_url, aws):
    """Archives a day as maintain does (its role, its lines, moto's S3) and reads it back."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="exact-archive")
    bucket = ArchiveBucket(s3, "exact-archive")
    maintainer = Database(DatabaseSettings(url=database_url, user="sluice_maintain"))

    def archived(app_id: str, day: date) -> dict[str, object]:
        for key in bucket.keys(f"events/app_id={app_id}/"):
            s3.delete_object(Bucket="exact-archive", Key=key)
        lines = maintainer.run(
            lambda conn: list(partitions.archive_lines(conn, app_id, day, detached=False))
        )
        bucket.write(object_key(app_id, day, 0), lines)
        read_back = [exact(line) for line in bucket.read(app_id, day)]
        return {line["event_id"]: exact(line["payload"]) for line in read_back}

    yield archived
    maintainer.close()


def test_the_archive_keeps_every_number(owned, archive, clock):
    status, answer = owned.send("", LONG_NUMBERS)
    assert status == 202
    assert archive(owned.app_id, clock.now().date()) == {answer["event_id"]: exact(LONG_NUMBERS)}


# --- the property: ingest -> every read path ----------------------------------------


def api_payloads(context, owned) -> dict[str, object]:
    """Every event of the app through the list (page after page) and through its lookup."""
    base = f"/api/apps/{owned.app_id}/events"
    listed: dict[str, object] = {}
    cursor = None
    while True:
        status, page = read(
            context, base + "?limit=3" + (f"&cursor={cursor}" if cursor else ""), owned.token
        )
        assert status == 200, page
        listed.update({e["event_id"]: e["payload"] for e in page["events"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    for event_id, payload in listed.items():
        status, found = read(context, f"{base}/{event_id}", owned.token)
        assert status == 200, found
        assert found["payload"] == payload, event_id
    return listed


# Each example sends, stores and reads through four paths: fewer than ingest's own 200.
READ_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=40)


@READ_SETTINGS
@given(batch=st.lists(events(), min_size=1, max_size=6))
def test_every_event_ingest_accepts_reads_back_as_the_same_value_everywhere(
    context, owned, db, console, archive, clock, batch
):
    with db.cursor() as cur:
        cur.execute("TRUNCATE events, event_dedup")  # each example afresh, its messageIds too
    body = "[" + ",".join(to_json(event) for event in batch) + "]"
    status, answer = owned.send("/batch", body)
    if "results" not in answer:  # refused whole: not an array of events
        assert (status, answer["error"]) in {(400, "invalid_json"), (413, "payload_too_large")}
        return
    accepted: dict[str, object] = {}
    message_ids = set()
    for result, event in zip(answer["results"], batch, strict=True):
        if result["status"] not in ("valid", "invalid"):
            assert result["error"] in CLIENT_ERRORS, result
        elif event.get("messageId") not in message_ids:  # a repeated messageId adds no row
            accepted[result["event_id"]] = exact(to_json(event))
            if event.get("messageId") is not None:
                message_ids.add(event["messageId"])
    # The management API (list and lookup), the console and the archive all agree
    assert api_payloads(context, owned) == accepted
    assert console_payloads(console) == accepted
    assert archive(owned.app_id, clock.now().date()) == accepted
