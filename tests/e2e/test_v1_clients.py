"""The libraries apps already track with, unchanged, against the /v1 intake (issue 23).

segment-analytics-python and rudder-sdk-python (gzip on and off; pinned in
requirements-dev.lock) and @segment/analytics-node (pinned in tests/clients/node,
installed by `make clients`) send to the local runtime over real HTTP with their host
set to it, as an app would. What each library put on the wire is read back from the
request it made, so the stored rows are compared with what was really sent. The
docs' lines for the Python libraries (host and write key) are run as written.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rudderstack.analytics as rudder_analytics
import segment.analytics as segment_analytics
from rudderstack.analytics import client as rudder_client
from rudderstack.analytics import request as rudder_request
from segment.analytics import client as segment_client
from segment.analytics import request as segment_request
from sluice.manage import admin

from tests.support import REPO_ROOT, make_app, wait_for

NODE_CLIENT = REPO_ROOT / "tests" / "clients" / "node"
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

# Over the 32 KB an event may weigh, under the 4 MB of a request.
OVERSIZED = {"blob": "x" * 40_000}


# ------------------------------------------------------------------- the calls sent
@dataclass(frozen=True)
class Call:
    """One library call, its arguments named as on the wire (userId, messageId...)."""

    kind: str
    args: dict[str, Any]

    @property
    def message_id(self) -> str:
        return self.args["messageId"]


def every_call_type(tag: str, **extra: Any) -> list[Call]:
    """One call of each type, with known messageIds and times an hour ago (to the ms,
    which every library keeps)."""
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    context = {"app": {"name": "shop", "version": "1.2.3"}, "locale": "fr-FR"}
    calls = [
        ("identify", {"userId": "u-1", "traits": {"email": "ada@example.com", "plan": "pro"}}),
        (
            "track",
            {
                "userId": "u-1",
                "event": "Order Completed",
                "properties": {"total": 12.5, "items": [{"sku": "a", "n": 2}], "coupon": None},
            },
        ),
        ("page", {"userId": "u-1", "category": "Docs", "name": "Pricing"}),
        ("screen", {"anonymousId": "anon-7", "name": "Home", "properties": {"tab": 2}}),
        ("group", {"userId": "u-1", "groupId": "g-42", "traits": {"name": "Acme"}}),
        ("alias", {"previousId": "anon-7", "userId": "u-1"}),
    ]
    return [
        Call(
            kind,
            {
                **args,
                "context": context,
                "messageId": f"{tag}-{kind}-{uuid.uuid4()}",
                "timestamp": base + timedelta(seconds=n, milliseconds=123),
                **extra,
            },
        )
        for n, (kind, args) in enumerate(calls)
    ]


def track(tag: str, **properties: Any) -> Call:
    return Call(
        "track",
        {
            "userId": "u-1",
            "event": "Clicked",
            "properties": properties,
            "messageId": f"{tag}-{uuid.uuid4()}",
            "timestamp": datetime.now(UTC).replace(microsecond=0),
        },
    )


# ------------------------------------------------------------- what a library saw
@dataclass
class Sent:
    requests: list[dict] = field(default_factory=list)  # each request's JSON body, as sent
    answers: list[tuple[int, Any]] = field(default_factory=list)  # (status, JSON body)
    errors: dict[str, str] = field(default_factory=dict)  # messageId: what the library said

    def items(self) -> dict[str, tuple[dict, dict]]:
        """messageId: (the item as sent, the request that carried it)."""
        return {item["messageId"]: (item, body) for body in self.requests for item in body["batch"]}


class PythonLibrary:
    """segment-analytics-python or rudder-sdk-python: the same API, each its own wire code."""

    def __init__(self, name: str, client_module, request_module, *, gzip: bool) -> None:
        self.name, self.gzip = name, gzip
        # Over 32 KB: segment's client raises; rudder's takes up to 4 MB a message.
        self.refuses_oversized = name == "segment"
        self._client, self._request = client_module, request_module

    def __repr__(self) -> str:
        return f"{self.name}-gzip-{'on' if self.gzip else 'off'}"

    def send(self, host: str, key: str, calls: list[Call], *, batched: bool = False) -> Sent:
        """Each call on its own (sync_mode: one POST per call, an error raised), or
        all as one batch by the library's own consumer thread, as an app sends them."""
        sent, errors = Sent(), []
        with self._recording(sent):
            if batched:
                client = self._client.Client(
                    key,
                    host=host,
                    gzip=self.gzip,
                    # One request as soon as every call is queued; the interval bounds
                    # how long join() waits for the idle thread to notice it should stop.
                    upload_size=len(calls),
                    upload_interval=1,
                    max_retries=0,
                    on_error=lambda error, batch: errors.append((error, batch)),
                )
                for call in calls:
                    self._call(client, call)
                client.flush()
                client.join()
                for error, batch in errors:
                    for item in batch:
                        sent.errors[item["messageId"]] = self._said(error)
            else:
                client = self._client.Client(key, host=host, gzip=self.gzip, sync_mode=True)
                for call in calls:
                    try:
                        self._call(client, call)
                    except self._request.APIError as error:
                        sent.errors[call.message_id] = self._said(error)
        return sent

    def post_batch(self, host: str, key: str, items: list[dict]) -> Sent:
        """Items as one batch through the library's own request function (what its
        consumer calls), for what its client would refuse to send (an oversized item)."""
        sent = Sent()
        with self._recording(sent):
            self._request.post(key, host, gzip=self.gzip, batch=items)
        return sent

    def _call(self, client, call: Call) -> None:
        getattr(client, call.kind)(**{_snake(name): value for name, value in call.args.items()})

    @staticmethod
    def _said(error: Exception) -> str:
        """An APIError as `401 unauthorized: ...`; anything else (a crash) as itself."""
        if isinstance(error, segment_request.APIError | rudder_request.APIError):
            return f"{error.status} {error.code}: {error.message}"
        return repr(error)

    @contextmanager
    def _recording(self, sent: Sent) -> Iterator[None]:
        """Keeps every request the library's HTTP session makes and the answer to it."""

        def keep(response, *args, **kwargs) -> None:
            body = response.request.body
            if response.request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            sent.requests.append(json.loads(body))
            try:
                sent.answers.append((response.status_code, response.json()))
            except ValueError:
                sent.answers.append((response.status_code, response.text))

        hooks = self._request._session.hooks["response"]
        hooks.append(keep)
        try:
            yield
        finally:
            hooks.remove(keep)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


class NodeLibrary:
    """@segment/analytics-node, run by tests/clients/node/send.js: always one batch."""

    gzip = False  # the Node library never compresses
    refuses_oversized = False

    def __repr__(self) -> str:
        return "analytics-node"

    def send(self, host: str, key: str, calls: list[Call], *, batched: bool = True) -> Sent:
        """All the calls as one batch (the library has no other way to send)."""
        if shutil.which("node") is None or not (NODE_CLIENT / "node_modules").is_dir():
            pytest.fail(
                "@segment/analytics-node is not installed: `make clients` installs it"
                " (it needs node 20 or newer and npm; `make test` runs it first)"
            )
        calls_in = [[c.kind, {**c.args, "timestamp": _iso(c.args["timestamp"])}] for c in calls]
        done = subprocess.run(  # noqa: S603 - our own script, its input ours
            ["node", str(NODE_CLIENT / "send.js")],  # noqa: S607 - the node on PATH, checked above
            input=json.dumps({"host": host, "writeKey": key, "calls": calls_in}),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        return Sent(
            requests=[json.loads(r["request"]) for r in out["responses"]],
            answers=[(r["status"], _json_or_text(r["body"])) for r in out["responses"]],
            errors={r["messageId"]: r["error"] for r in out["results"] if r["error"]},
        )


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


LIBRARIES = [
    PythonLibrary("segment", segment_client, segment_request, gzip=False),
    PythonLibrary("segment", segment_client, segment_request, gzip=True),
    PythonLibrary("rudder", rudder_client, rudder_request, gzip=False),
    PythonLibrary("rudder", rudder_client, rudder_request, gzip=True),
    NodeLibrary(),
]


# --------------------------------------------------------------------- what was kept
@dataclass(frozen=True)
class Row:
    message_id: str
    payload: dict
    event_name: str
    client_timestamp: datetime | None
    sent_at: datetime | None
    occurred_at: datetime
    received_at: datetime


def rows(db, app_id: str) -> list[Row]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT message_id, payload, event_name, client_timestamp, sent_at, occurred_at,"
            " received_at FROM events WHERE app_id = %s",
            (app_id,),
        )
        return [Row(*row) for row in cur.fetchall()]


def stored(db, app_id: str, message_ids: list[str]) -> dict[str, list[Row]]:
    """Waits until each messageId has a row; returns every row of each."""

    def all_there() -> dict[str, list[Row]]:
        found: dict[str, list[Row]] = {}
        for row in rows(db, app_id):
            found.setdefault(row.message_id, []).append(row)
        return found if all(m in found for m in message_ids) else {}

    return wait_for(all_there)


def duplicates(db, app_id: str, count: int) -> int:
    """Waits until the store has skipped `count` copies of the app's events."""

    def skipped() -> int:
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM event_duplicates WHERE app_id = %s", (app_id,))
            found = cur.fetchone()[0]
        return found if found >= count else 0

    return wait_for(skipped)


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def assert_kept(row: Row, item: dict, request: dict) -> None:
    """The row holds what the library sent, and the time corrected by its sentAt."""
    for name, value in item.items():
        # null means absent (the libraries send "userId": null); timestamp is the
        # client's time, kept in its own column.
        if value is not None and name != "timestamp":
            assert row.payload[name] == value, (name, row.payload)
    if item["type"] == "track":
        assert row.event_name == item["event"]
    original, sent_at = _time(item["timestamp"]), _time(request["sentAt"])
    assert (row.client_timestamp, row.sent_at) == (original, sent_at)
    assert row.occurred_at == row.received_at - (sent_at - original)


def success(answer: tuple[int, Any]) -> bool:
    status, body = answer
    return status == 200 and isinstance(body, dict) and body.get("success") is True


# ------------------------------------------------------------------------ the tests
@pytest.fixture
def app(db) -> tuple[str, str]:
    return make_app(db)


@pytest.mark.parametrize("library", LIBRARIES, ids=repr)
def test_every_call_type_is_stored_once_with_its_fields_and_corrected_time(
    sluice, db, app, library
):
    # Given an app and a library whose host is the local runtime
    app_id, key = app
    calls = every_call_type(repr(library))

    # When the app makes one call of each type
    sent = library.send(sluice.api_url, key, calls)

    # Then every request was answered 200 {"success": true}, and no call failed
    assert sent.errors == {}
    assert sent.answers and all(success(answer) for answer in sent.answers), sent.answers
    # and each event is stored once, as sent, at its corrected time
    found = stored(db, app_id, [c.message_id for c in calls])
    assert sorted(found) == sorted(c.message_id for c in calls)
    items = sent.items()
    for message_id, copies in found.items():
        assert len(copies) == 1, copies
        assert_kept(copies[0], *items[message_id])


@pytest.mark.parametrize("library", LIBRARIES, ids=repr)
def test_a_resent_batch_stores_nothing_new(sluice, db, app, library):
    # Given a batch of every call type, sent and stored
    app_id, key = app
    calls = every_call_type(repr(library))
    first = library.send(sluice.api_url, key, calls, batched=True)
    assert len(first.requests) == 1 and len(first.requests[0]["batch"]) == len(calls)
    stored(db, app_id, [c.message_id for c in calls])

    # When the library sends the same batch again (a retry, a restart that resends)
    again = library.send(sluice.api_url, key, calls, batched=True)

    # Then it is answered as a success, the store skips every copy, and nothing new is kept
    assert (again.errors, [success(a) for a in again.answers]) == ({}, [True])
    assert [i["messageId"] for i in again.requests[0]["batch"]] == [c.message_id for c in calls]
    duplicates(db, app_id, len(calls))
    assert sorted(r.message_id for r in rows(db, app_id)) == sorted(c.message_id for c in calls)


@pytest.mark.parametrize("library", LIBRARIES, ids=repr)
def test_a_bad_key_gets_401_and_stores_nothing(sluice, db, app, library):
    # Given a key no app has, and a key its app revoked
    app_id, key = app
    revoked_app, revoked = make_app(db)
    admin.revoke_api_key(db, revoked_app, revoked.rsplit("_", 1)[0])

    refused = []
    for name, bad_key in [("wrong", "sk_nothing1_" + "x" * 32), ("revoked", revoked)]:
        # When the library sends with it
        calls = [track(f"{repr(library)}-{name}")]
        sent = library.send(sluice.api_url, bad_key, calls)

        # Then it got 401 with a JSON body the library could read (code and message)
        ((status, body),) = sent.answers
        assert status == 401 and isinstance(body, dict) and body["code"] and body["message"]
        # and said so: the Python libraries raise an APIError with that code and message
        # (in sync_mode), the Node one fails the call's callback with the status
        said = (
            f"401 {body['code']}: {body['message']}"
            if isinstance(library, PythonLibrary)
            else "[401] Unauthorized"
        )
        assert sent.errors == {calls[0].message_id: said}
        refused.append(calls[0].message_id)

    # and nothing was stored: an event sent after them with the good key is, alone
    good = track(repr(library))
    assert library.send(sluice.api_url, key, [good]).errors == {}
    stored(db, app_id, [good.message_id])
    with db.cursor() as cur:
        cur.execute("SELECT app_id FROM events WHERE message_id = ANY(%s)", (refused,))
        assert cur.fetchall() == []
    assert [r.message_id for r in rows(db, app_id) + rows(db, revoked_app)] == [good.message_id]


@pytest.mark.parametrize("library", LIBRARIES, ids=repr)
def test_an_oversized_item_in_a_batch_is_rejected_alone(sluice, db, app, library):
    # Given a batch whose middle item is over 32 KB
    app_id, key = app
    calls = [
        track(repr(library), n=1),
        track(repr(library), **OVERSIZED),
        track(repr(library), n=3),
    ]
    small = [calls[0].message_id, calls[2].message_id]

    if library.refuses_oversized:
        # (segment-analytics-python refuses such an event before sending it...
        with pytest.raises(RuntimeError, match="Message exceeds"):
            library.send(sluice.api_url, key, [calls[1]])
        # ...so the batch goes through its request function, as its consumer sends)
        sent = library.post_batch(sluice.api_url, key, [_wire_item(c) for c in calls])
    else:
        # (rudder-sdk-python allows 4 MB a message, and analytics-node measures one in
        # escapes, not bytes: each sends this batch as it is)
        sent = library.send(sluice.api_url, key, calls, batched=True)
        assert [len(request["batch"]) for request in sent.requests] == [3]

    # When the batch arrives, then it succeeds, with the one item counted as rejected
    assert sent.errors == {}
    ((status, body),) = sent.answers
    assert (status, body["success"], body["rejected"]) == (200, True, 1), body
    # and the two others are stored, the big one not
    stored(db, app_id, small)
    assert sorted(r.message_id for r in rows(db, app_id)) == sorted(small)


def _wire_item(call: Call) -> dict:
    """The item as the Python libraries put it on the wire."""
    return {
        **call.args,
        "type": call.kind,
        "timestamp": call.args["timestamp"].isoformat(),
        "context": {"library": {"name": "analytics-python"}},
    }


def test_the_node_library_is_pinned_by_integrity_with_no_registry_named():
    """package-lock.json pins every package by version and hash, and (its folder's .npmrc)
    names no registry, so `npm ci` takes them from whichever registry npm is set to."""
    lock = json.loads((NODE_CLIENT / "package-lock.json").read_text())
    packages = {name: entry for name, entry in lock["packages"].items() if name}

    assert lock["packages"][""]["dependencies"] == {"@segment/analytics-node": "3.1.0"}
    assert packages["node_modules/@segment/analytics-node"]["version"] == "3.1.0"
    assert all(entry["integrity"].startswith("sha512-") for entry in packages.values())
    assert [name for name, entry in packages.items() if "resolved" in entry] == []


def documented_settings(library: str) -> list[tuple[str, str]]:
    """(setting, value) of each line the docs' table ("Sending from Segment or RudderStack
    libraries") says a Python app changes: `analytics.host = "https://<api>"`."""
    for document in DOCUMENTS:
        for line in document.read_text().splitlines():
            if line.startswith(f"| Python, `{library}`"):
                code = re.findall(r"`([^`]+)`", line.split("|")[2])
                settings = [re.fullmatch(r'\w+\.(\w+) = "([^"]*)"', c) for c in code]
                assert all(settings), code
                return [(m.group(1), m.group(2)) for m in settings if m]
    pytest.fail(f"no document says what {library} needs changed")


@pytest.mark.parametrize(
    ("library", "module"),
    [("segment-analytics-python", segment_analytics), ("rudder-sdk-python", rudder_analytics)],
    ids=["segment", "rudder"],
)
def test_the_documented_lines_are_all_a_python_app_changes(
    sluice, db, app, monkeypatch, library, module
):
    # Given an app using the library's module-level client (its default_client, made on
    # the first call), with only the documented settings changed (monkeypatch restores
    # them); sync_mode only so that a failure raises here
    app_id, key = app
    monkeypatch.setattr(module, "default_client", None)
    monkeypatch.setattr(module, "sync_mode", True)
    for setting, value in documented_settings(library):
        value = value.replace("sk_...", key).replace("https://<api>", sluice.api_url)
        monkeypatch.setattr(module, setting, value)

    # When the app tracks as it always did
    message_id = f"documented-{uuid.uuid4()}"
    module.track(user_id="u-1", event="Signed Up", message_id=message_id)

    # Then the event is in Sluice
    ((row,),) = stored(db, app_id, [message_id]).values()
    assert row.event_name == "Signed Up"
