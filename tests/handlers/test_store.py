"""The store handler against the test database: what ingest queued ends up as rows, once."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import orjson
import psycopg2
import pytest
from psycopg2 import sql
from psycopg2.extras import RealDictCursor
from sluice.store.events_data import copy_events, insert_events
from sluice.store.events_table import WRITTEN, names
from uuid_utils.compat import uuid7

import functions.store.app as store_app
from tests.handlers.test_ingest import LOGIN_RULE, post
from tests.support import SwitchableProxy, drain, drain_events, make_app, sqs_event


def store(context, bodies: list[str]) -> tuple[dict, list[str]]:
    """Invokes the handler; returns its response and the SQS ids of the records it got."""
    event = sqs_event(bodies)
    response = store_app.handler(event, context)
    return response, [record["messageId"] for record in event["Records"]]


def failed_ids(response: dict) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def rows(db, *columns: str) -> list[tuple]:
    with db.cursor() as cur:
        cur.execute(f"SELECT {', '.join(columns)} FROM events ORDER BY event_id")  # noqa: S608
        return cur.fetchall()


def ingested_bodies(context, sqs, queues, app_id, key, events) -> list[str]:
    for event in events:
        assert post(context, f"/api/logs/{app_id}", event, key)[0] in (202, 422)
    return drain(sqs, queues["events"])


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"user_login": LOGIN_RULE})


def test_queued_events_become_rows(ingestor, store_database, db, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    bodies = ingested_bodies(
        context,
        sqs,
        queues,
        app_id,
        key,
        [
            {
                "eventName": "user_login",
                "userId": 1,
                "messageId": "m-1",
                "timestamp": "2025-12-31T23:59:00Z",
                "sentAt": "2026-01-01T00:00:30Z",
            },
            {"eventName": "user_login", "userId": "one"},
        ],
    )
    response, _ = store(context, bodies)

    assert failed_ids(response) == []
    stored = rows(
        db,
        "app_id",
        "event_name",
        "status",
        "validation_errors",
        "message_id",
        "client_timestamp",
        "sent_at",
        "occurred_at",
        "received_at",
        "payload",
        "stored_at IS NOT NULL",
    )
    assert len(stored) == 2
    valid, invalid = stored
    assert valid[:5] == (app_id, "user_login", "valid", None, "m-1")
    assert valid[5].isoformat() == "2025-12-31T23:59:00+00:00"
    assert valid[6].isoformat() == "2026-01-01T00:00:30+00:00"
    # Sent 90 s after it happened, by the client's clock: it happened 90 s before
    # it arrived, by ours (the manual clock's 2026-01-01T00:00:00Z).
    assert valid[7].isoformat() == "2025-12-31T23:58:30+00:00"
    assert valid[8].isoformat() == "2026-01-01T00:00:00+00:00"
    assert valid[9]["userId"] == 1
    assert valid[10] is True
    assert invalid[2] == "invalid"
    assert invalid[3] == [
        {"path": "/userId", "message": '"one" is not of type "integer"', "keyword": "type"}
    ]


def test_the_copy_and_the_insert_path_write_each_value_into_its_column(db):
    # Given two events in their wire form, each column given a value no other could hold
    def wire() -> dict:
        event_id = str(uuid7())
        return {
            "event_id": event_id,
            "app_id": "app_columns",
            "event_name": "checkout",
            "status": "invalid",
            "payload": '{"eventName": "checkout", "total": "x"}',
            "validation_errors": [{"path": "/total", "message": "bad", "keyword": "type"}],
            "message_id": f"m-{event_id}",
            "client_timestamp": "2026-01-01T00:00:01+00:00",
            "sent_at": "2026-01-01T00:00:02+00:00",
            "occurred_at": "2026-01-01T00:00:03+00:00",
            "received_at": "2026-01-01T00:00:04+00:00",
        }

    copied, inserted = wire(), wire()

    # When one is stored by the fast path's COPY and the other by INSERT ... ON CONFLICT
    conn = psycopg2.connect(db.dsn)
    try:
        with conn:
            assert copy_events(conn, [copied]) == 1
        with conn:
            assert insert_events(conn, [inserted]) == 1
    finally:
        conn.close()

    # Then each row holds its event's values, each in its own column
    with db.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(sql.SQL("SELECT {} FROM events").format(names(WRITTEN)))
        stored = {str(row["event_id"]): dict(row) for row in cur.fetchall()}
    for event in (copied, inserted):
        assert stored[event["event_id"]] == {
            **event,
            "event_id": uuid.UUID(event["event_id"]),
            "payload": json.loads(event["payload"]),
            **{
                name: datetime.fromisoformat(event[name])
                for name in ("client_timestamp", "sent_at", "occurred_at", "received_at")
            },
        }


def test_repeated_message_id_makes_one_row(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    event = {"eventName": "page_view", "messageId": "client-retry-1"}
    first = ingested_bodies(context, sqs, queues, app_id, key, [event])
    second = ingested_bodies(context, sqs, queues, app_id, key, [event])
    store(context, first)
    store(context, second)
    store(context, first + second)  # and both in one batch
    assert rows(db, "message_id") == [("client-retry-1",)]


def test_same_message_id_in_two_apps_is_two_rows(
    ingestor, store_database, db, context, sqs, queues
):
    bodies = []
    for _ in range(2):
        app_id, key = make_app(db)
        bodies += ingested_bodies(
            context, sqs, queues, app_id, key, [{"eventName": "x", "messageId": "m"}]
        )
    store(context, bodies)
    assert len(rows(db, "event_id")) == 2


def test_redelivered_message_makes_no_second_row(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    app_id, key = app_and_key
    bodies = ingested_bodies(
        context, sqs, queues, app_id, key, [{"eventName": "a"}, {"eventName": "b"}]
    )
    assert failed_ids(store(context, bodies)[0]) == []
    assert failed_ids(store(context, bodies)[0]) == []
    assert failed_ids(store(context, bodies + bodies)[0]) == []
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b"]


@pytest.mark.parametrize(
    "poison",
    [
        "not json at all",
        '{"version": 1, "events": [{"event_id": "not-a-uuid"}]}',
        '{"version": 99, "events": []}',
        "",
    ],
)
def test_poison_message_fails_alone(
    ingestor, store_database, db, app_and_key, context, sqs, queues, poison
):
    app_id, key = app_and_key
    good = ingested_bodies(
        context, sqs, queues, app_id, key, [{"eventName": "a"}, {"eventName": "b"}]
    )
    response, ids = store(context, [good[0], poison, good[1]])
    assert failed_ids(response) == [ids[1]]
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b"]


def test_nul_character_never_reaches_the_store(ingestor, app_and_key, context, sqs, queues):
    app_id, key = app_and_key
    status, body = post(context, f"/api/logs/{app_id}", b'{"eventName": "a", "x": "\\u0000"}', key)
    assert (status, body["error"]) == (400, "unstorable_value")
    status, body = post(
        context, f"/api/logs/{app_id}/batch", b'[{"eventName": "a", "x": "\\u0000"}]', key
    )
    assert body["results"][0]["error"] == "unstorable_value"
    assert drain_events(sqs, queues["events"]) == []


def forged(body: str, **changes) -> str:
    """A message that fits the model but holds a value Postgres refuses."""
    message = json.loads(body)
    message["events"][0].update(changes)
    return json.dumps(message)


@pytest.mark.parametrize(
    "changes",
    [
        {"payload": {"eventName": "a", "x": "\u0000"}},  # jsonb refuses U+0000
        {"status": "pending"},  # breaks the status check constraint
    ],
)
def test_row_postgres_refuses_fails_alone(
    ingestor, store_database, db, app_and_key, context, sqs, queues, changes
):
    app_id, key = app_and_key
    bodies = ingested_bodies(
        context, sqs, queues, app_id, key, [{"eventName": n} for n in "abcdefg"]
    )
    bad = forged(bodies[3], **changes)
    batch = bodies[:3] + [bad] + bodies[4:]
    response, ids = store(context, batch)
    assert failed_ids(response) == [ids[3]]
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b", "c", "e", "f", "g"]


def test_database_down_fails_the_whole_batch_until_it_is_back(
    ingestor, db, database_url, app_and_key, context, sqs, queues, monkeypatch
):
    from sluice.core.config import DatabaseSettings
    from sluice.core.db import Database

    app_id, key = app_and_key
    bodies = ingested_bodies(
        context, sqs, queues, app_id, key, [{"eventName": "a"}, {"eventName": "b"}]
    )
    proxy = SwitchableProxy(database_url)
    proxy.on()
    database = Database(DatabaseSettings(url=proxy.url))
    monkeypatch.setattr(store_app, "database", lambda: database)
    try:
        assert failed_ids(store(context, [])[0]) == []  # warm: the connection is open
        proxy.off()
        response, ids = store(context, bodies)
        assert failed_ids(response) == ids
        assert rows(db, "event_name") == []

        proxy.on()
        response, _ = store(context, bodies)
        assert failed_ids(response) == []
        assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b"]
    finally:
        proxy.off()
        database.close()


def test_poison_message_reaches_the_dlq_after_its_retries(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    """What Lambda's SQS trigger does with the handler's answers, against moto's queues."""
    app_id, key = app_and_key
    assert post(context, f"/api/logs/{app_id}", {"eventName": "good"}, key)[0] == 202
    sqs.send_message(QueueUrl=queues["events"], MessageBody="poison")

    for _ in range(8):  # more receives than maxReceiveCount (5)
        messages = sqs.receive_message(
            QueueUrl=queues["events"], MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            break
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                }
                for m in messages
            ]
        }
        failed = set(failed_ids(store_app.handler(event, context)))
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(
                    QueueUrl=queues["events"], ReceiptHandle=message["ReceiptHandle"]
                )

    assert drain(sqs, queues["dlq"]) == ["poison"]
    assert drain(sqs, queues["events"]) == []
    assert rows(db, "event_name") == [("good",)]


def test_message_bodies_reach_postgres_unchanged(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    """The store inserts message bodies as they came; the payload must survive exactly."""
    app_id, key = app_and_key
    payload = {
        "eventName": "tab\there\\back\nline",
        "messageId": "m\\1\t\r",
        "unicode": "héllo ✓ 𝄞",
        "nested": {"list": [1, 2.5, None, True], "k\tey": "v\\"},
        "quote": "\"'\\",
    }
    [body] = ingested_bodies(context, sqs, queues, app_id, key, [payload])
    store(context, [body])
    assert rows(db, "payload", "event_name", "message_id") == [
        (orjson.loads(orjson.dumps(payload)), payload["eventName"], payload["messageId"])
    ]


def one_message(context, sqs, queues, app_id, key, names) -> str:
    """Events sent as one batch travel packed in one message; returns its body."""
    status, _ = post(context, f"/api/logs/{app_id}/batch", [{"eventName": n} for n in names], key)
    assert status == 202
    [body] = drain(sqs, queues["events"])
    return body


def test_a_batch_that_fails_mid_copy_is_read_whole_on_the_insert_path(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # The store checks messages while the COPY streams them. Here the COPY fails on the
    # redelivered event, first of 600: the INSERT path must still get every message
    # the stream had read, down to the poison last, and skip only the stored event.
    app_id, key = app_and_key
    redelivered = one_message(context, sqs, queues, app_id, key, ["early"])
    assert failed_ids(store(context, [redelivered])[0]) == []
    names = [[f"e{m:02}-{n}" for n in range(10)] for m in range(60)]
    bodies = [one_message(context, sqs, queues, app_id, key, batch) for batch in names]

    response, ids = store(context, [redelivered, *bodies, "not json at all"])

    assert failed_ids(response) == [ids[-1]]
    stored = sorted(name for (name,) in rows(db, "event_name"))
    assert stored == sorted(["early", *(name for batch in names for name in batch)])


def test_a_batch_read_on_a_connection_that_died_is_read_again_whole_on_the_next(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # The store's kept connection dies between invocations (RDS Proxy's idle timeout, a
    # restart): the batch, read lazily as its COPY streams, is read again from its first
    # message on the new connection, and every event of it is stored once.
    app_id, key = app_and_key
    assert (
        failed_ids(store(context, [one_message(context, sqs, queues, app_id, key, "a")])[0]) == []
    )
    with db.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
    names = [[f"e{m:02}-{n}" for n in range(10)] for m in range(30)]
    bodies = [one_message(context, sqs, queues, app_id, key, batch) for batch in names]
    dead = store_database.connection()

    response, _ = store(context, bodies)

    assert failed_ids(response) == []
    assert dead.closed and store_database.connection() is not dead
    stored = sorted(name for (name,) in rows(db, "event_name"))
    assert stored == sorted(["a", *(name for batch in names for name in batch)])


@pytest.mark.parametrize(
    "changes",
    [
        {"payload": '{"eventName": "c", "broken": '},  # not JSON: jsonb refuses the text
        {"payload": '{"eventName": "c", "x": "\\u0000"}'},  # jsonb refuses U+0000
        {"status": "pending"},  # breaks the status check constraint
    ],
)
def test_an_event_postgres_refuses_fails_alone_not_its_message_mates(
    ingestor, store_database, db, app_and_key, context, sqs, queues, changes
):
    app_id, key = app_and_key
    body = one_message(context, sqs, queues, app_id, key, "abcde")
    message = json.loads(body)
    message["events"][2].update(changes)
    bad = json.dumps(message)

    response, ids = store(context, [bad])
    # The message goes back (and in the end to the DLQ, for its bad event)...
    assert failed_ids(response) == ids
    # ...while the events packed with it are stored, once, however often it returns.
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b", "d", "e"]
    response, ids = store(context, [bad])
    assert failed_ids(response) == ids
    assert len(rows(db, "event_name")) == 4


@pytest.mark.parametrize(
    "changes",
    [
        {"event_id": "not-a-uuid"},
        {"status": 5},
        {"occurred_at": 1_700_000_000},
        {"payload": [1, 2]},
        # Texts PostgreSQL would take, that the model refuses: a date alone (pydantic's
        # lax mode takes it as midnight), infinity (no API could return it unchanged).
        {"occurred_at": "2026-03-01"},
        {"received_at": "infinity"},
        {"client_timestamp": "-infinity"},
    ],
)
def test_an_event_that_does_not_fit_the_model_fails_alone_in_its_message(
    ingestor, store_database, db, app_and_key, context, sqs, queues, changes
):
    app_id, key = app_and_key
    body = one_message(context, sqs, queues, app_id, key, "abc")
    message = json.loads(body)
    message["events"][1].update(changes)
    good_neighbour = one_message(context, sqs, queues, app_id, key, "xy")

    response, ids = store(context, [json.dumps(message), good_neighbour])

    assert failed_ids(response) == [ids[0]]
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "c", "x", "y"]


def test_a_message_the_model_accepts_is_stored_whatever_json_it_carries_beside(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # NaN and 1e400 in a key the model ignores: pydantic's JSON reads them, orjson does
    # not. The store once read the body a second time with orjson, and its refusal
    # failed the whole batch; the one read takes the message as the model does.
    app_id, key = app_and_key
    body = one_message(context, sqs, queues, app_id, key, "ab")
    odd = body[:-1] + ', "note": [NaN, 1e400]}'

    response, _ = store(context, [odd])

    assert failed_ids(response) == []
    assert sorted(name for (name,) in rows(db, "event_name")) == ["a", "b"]


def test_version_1_messages_are_still_stored(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # Queued before the payload travelled as text: in flight or in the DLQ across a deploy.
    app_id, key = app_and_key
    message = json.loads(one_message(context, sqs, queues, app_id, key, "ab"))
    message["version"] = 1
    for event in message["events"]:
        event["payload"] = json.loads(event["payload"])
    for path in ("copy", "insert"):  # COPY, and INSERT after a redelivery's conflict
        if path == "insert":
            message["events"].append({**message["events"][0], "event_id": str(uuid7())})
        response, _ = store(context, [json.dumps(message)])
        assert failed_ids(response) == []
    assert rows(db, "payload") == [
        ({"eventName": "a"},),
        ({"eventName": "b"},),
        ({"eventName": "a"},),
    ]


# --- rejection records (the refused items of a batch, for the owner) -------------------------


def rejection_records(db) -> list[tuple]:
    with db.cursor() as cur:
        cur.execute("SELECT item_index, message_id, code, message FROM rejections ORDER BY 1")
        return cur.fetchall()


def test_a_bad_rejection_record_is_dropped_and_never_fails_the_batch(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # Given a batch with a refused item: its events and its rejection record queued
    app_id, key = app_and_key
    status, _ = post(context, f"/api/logs/{app_id}/batch", [{"eventName": "a"}, {}, {}], key)
    assert status == 202
    bodies = drain(sqs, queues["events"])
    [records] = [b for b in bodies if '"kind":"rejections"' in b]
    message = json.loads(records)
    # And one record that does not fit the model, one too long with a NUL (Postgres
    # refuses a NUL in text)
    message["rejections"][0]["index"] = "one"
    message["rejections"][1]["message"] = "\x00" + "m" * 5_000
    events = [b for b in bodies if b != records]

    # When the store takes them with the events
    response, _ = store(context, [*events, json.dumps(message)])

    # Then no message goes back, the events are stored, the unfit record is dropped and
    # the other is kept, cut and cleaned
    assert failed_ids(response) == []
    assert [name for (name,) in rows(db, "event_name")] == ["a"]
    [(index, message_id, code, text)] = rejection_records(db)
    assert (index, message_id, code) == (2, None, "invalid_event_name")
    assert text == "\ufffd" + "m" * 999


def test_a_message_without_kind_is_still_read_as_events(
    ingestor, store_database, db, app_and_key, context, sqs, queues
):
    # Old messages (before rejection records) and events messages carry no "kind"
    app_id, key = app_and_key
    [body] = ingested_bodies(context, sqs, queues, app_id, key, [{"eventName": "a"}])
    assert "kind" not in json.loads(body)
    assert failed_ids(store(context, [body])[0]) == []
    assert rows(db, "event_name") == [("a",)]
    assert rejection_records(db) == []


@pytest.mark.parametrize("kind", ["version 1, NaN in a payload", "NaN beside validation errors"])
def test_a_message_whose_json_no_column_can_hold_fails_alone(
    ingestor, store_database, db, app_and_key, context, sqs, queues, kind
):
    # pydantic's JSON reads NaN and 1e400, so the model accepts these messages; but the
    # store reads them again with orjson, which refuses them (a version-1 payload is an
    # object in the body; an event with validation errors is written as the body has
    # it). Once that refusal failed the whole batch, good neighbours with it.
    app_id, key = app_and_key
    message = json.loads(one_message(context, sqs, queues, app_id, key, "ab"))
    if kind.startswith("version 1"):
        message["version"] = 1
        for event in message["events"]:
            event["payload"] = json.loads(event["payload"])
        odd = json.dumps(message).replace('"eventName": "b"', '"eventName": "b", "x": NaN')
    else:
        message["events"][0]["status"] = "invalid"
        issue = {"path": "/method", "message": "is not one of ['a']", "keyword": "enum"}
        message["events"][0]["validation_errors"] = [issue]
        odd = json.dumps(message)[:-1] + ', "note": [NaN, 1e400]}'
    assert "NaN" in odd
    good_neighbour = one_message(context, sqs, queues, app_id, key, "xy")

    response, ids = store(context, [odd, good_neighbour])

    assert failed_ids(response) == [ids[0]]
    assert sorted(name for (name,) in rows(db, "event_name")) == ["x", "y"]
