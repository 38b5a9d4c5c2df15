"""Every accounts route against hostile input and a database that goes away: 4xx or 503, never 500.

Fixed seed, a few hundred cases per route, through the real handler as API Gateway
calls it; the email function eats what they queue with the same discipline.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st
from sluice.accounts import accounts_data as data
from sluice.accounts.email_queue import EmailQueue
from sluice.accounts.limits import HASH_SLOT_LEASE
from sluice.core.db import Database

import functions.accounts.app as accounts_app
import functions.email.app as email_app
from tests.handlers.test_fuzz import FUZZ_SETTINGS
from tests.support import SwitchableProxy, drain, http_event, sqs_event

ROUTES = [
    ("POST", "/api/accounts/register", ("email", "password")),
    ("POST", "/api/accounts/verify", ("challenge_id", "code")),
    ("POST", "/api/accounts/sign-in", ("email", "password")),
    ("POST", "/api/accounts/sign-in/verify", ("challenge_id", "code")),
    ("POST", "/api/accounts/sign-out", ()),
    ("GET", "/api/accounts/me", ()),
    ("POST", "/api/accounts/password-reset", ("email",)),
    ("POST", "/api/accounts/password-reset/confirm", ("token", "password")),
]

SPECIALS = st.sampled_from(
    [
        "",
        " ",
        "a@b.c",
        "A@B.CO ",
        "x\x00y@z.io",
        "a@b.c\u0000",
        "@@@",
        "\ud800",
        "owner@example.com" + "m" * 300,
        "00000000-0000-0000-0000-000000000000",
        "00000000-0000-0000-0000-000000000000.abc",
        "123456",
        "tidal-Orbit-93-quince",
        "x" * 5000,
    ]
)
odd_strings = st.one_of(
    SPECIALS,
    st.text(max_size=80),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    # address-like text with anything inside: control characters, NUL, surrogates
    st.tuples(st.text(max_size=8), st.text(max_size=8)).map(lambda t: f"{t[0]}@{t[1]}.io"),
)
values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        odd_strings,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def bodies(draw, fields: tuple[str, ...]):
    kind = draw(st.sampled_from(["object", "object", "object", "raw", "broken", "deep"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return b"[" * draw(st.integers(1, 5000)) + b"{}"
    obj = {name: draw(st.one_of(odd_strings, values)) for name in fields}
    text = json.dumps(obj, allow_nan=False) if draw(st.booleans()) else json.dumps(obj)
    raw = text.encode("utf-8", "surrogatepass")
    if kind == "broken":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=3)) + raw[at:]
    return raw


def call(context, method: str, path: str, body: bytes, headers: dict, as_text: bool):
    event = http_event(path, body, headers=headers, method=method, base64_body=True)
    if as_text:
        event["isBase64Encoded"] = False
        event["body"] = body.decode("utf-8", "surrogateescape")
    response = accounts_app.handler(event, context)
    return response["statusCode"], response["body"]


@pytest.mark.parametrize(("method", "path", "fields"), ROUTES, ids=[r[1] for r in ROUTES])
def test_no_request_to_an_accounts_route_gets_a_5xx(db, accounts, context, method, path, fields):
    @FUZZ_SETTINGS
    @given(
        body=bodies(fields),
        authorization=st.one_of(st.none(), odd_strings, odd_strings.map(lambda s: "Bearer " + s)),
        as_text=st.booleans(),
    )
    def fuzz(body, authorization, as_text):
        headers = {"authorization": authorization} if authorization is not None else {}
        status, answer = call(context, method, path, body, headers, as_text)
        assert status < 500, answer
        if status >= 400:
            # Every throttle also says its wait in the body (and in Retry-After).
            throttled = {"retry_after"} if status == 429 else set()
            assert set(json.loads(answer)) == {"error", "message"} | throttled, answer

    fuzz()


HASHING_ROUTES = [route for route in ROUTES if "password" in route[2]]
PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a test password


@pytest.mark.parametrize(
    ("method", "path", "fields"), HASHING_ROUTES, ids=[r[1] for r in HASHING_ROUTES]
)
def test_a_hashing_route_with_its_slots_busy_or_its_source_walled_gets_no_5xx(
    db, accounts, context, clock, method, path, fields
):
    """Issue 24: the slots and the source's count answer before the hash; with any of
    them refusing, from any source API Gateway could name, never a 5xx."""
    slots = accounts.hash_slots

    # Hostile bodies, and well-formed ones that would reach the hash.
    wellformed = st.fixed_dictionaries(
        {
            name: (
                st.uuids().map(lambda u: f"{u}.{'s' * 43}")
                if name == "token"
                else st.just(PASSWORD)
                if name == "password"
                else st.from_regex(r"[a-z0-9]{1,12}@[a-z]{1,8}\.io", fullmatch=True)
            )
            for name in fields
        }
    ).map(lambda fields: json.dumps(fields).encode())

    @FUZZ_SETTINGS
    @given(
        body=st.one_of(bodies(fields), wellformed),
        source=st.one_of(st.ip_addresses().map(str), st.sampled_from(["198.51.100.7"])),
        busy=st.integers(0, len(slots)),
        later=st.sampled_from([0, 1, 10, 61]),
    )
    def fuzz(body, source, busy, later):
        clock.advance(later)
        now = clock.now()
        taken = accounts.database.run(
            lambda conn: [
                data.take_hash_slot(conn, slots, now, HASH_SLOT_LEASE) for _ in range(busy)
            ]
        )
        event = http_event(path, body, method=method, base64_body=True)
        event["requestContext"]["http"]["sourceIp"] = source
        response = accounts_app.handler(event, context)
        for key in taken:
            if key is not None:
                accounts.database.run(lambda conn, key=key: data.free_hash_slot(conn, key, now))
        status, answer = response["statusCode"], response["body"]
        assert status < 500, answer
        if status == 429:
            retry = json.loads(answer)["retry_after"]
            assert response["headers"]["Retry-After"] == str(retry)
        if busy == len(slots):
            # A 2xx here hashed a password, which takes a slot: none was free.
            assert status >= 400, answer

    fuzz()


def test_whatever_is_queued_the_email_function_answers_without_failing(
    db, accounts, mailer, sqs, email_queue, context
):
    """Hostile addresses that got through the door reach SES or are recorded, not retried."""

    @FUZZ_SETTINGS
    @given(email=odd_strings.map(lambda s: s[:40] + "@example.com"))
    def fuzz(email):
        call(
            context,
            "POST",
            "/api/accounts/password-reset",
            json.dumps({"email": email}).encode(),
            {},
            False,
        )
        bodies = drain(sqs, email_queue)
        if bodies:
            assert email_app.handler(sqs_event(bodies), context) == {"batchItemFailures": []}

    fuzz()


# --- outages: 503, never 500, and nothing half done ---------------------------------


@pytest.fixture
def proxy(database_url):
    proxy = SwitchableProxy(database_url)
    proxy.on()
    yield proxy
    proxy.off()


REQUESTS = [
    (
        "POST",
        "/api/accounts/register",
        {"email": "a@example.com", "password": "tidal-Orbit-93-quince"},
    ),
    (
        "POST",
        "/api/accounts/verify",
        {"challenge_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "code": "1"},
    ),
    ("POST", "/api/accounts/sign-in", {"email": "a@example.com", "password": "x"}),
    (
        "POST",
        "/api/accounts/sign-in/verify",
        {"challenge_id": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "code": "1"},
    ),
    ("POST", "/api/accounts/sign-out", {}),
    ("GET", "/api/accounts/me", None),
    ("POST", "/api/accounts/password-reset", {"email": "a@example.com"}),
    (
        "POST",
        "/api/accounts/password-reset/confirm",
        {"token": "7d444840-9dc0-11d1-b245-5ffdce74fad2.x", "password": "lantern-Basalt-71-mango"},
    ),
]


def test_a_database_that_goes_away_and_comes_back_is_503_then_served(
    db, accounts, proxy, context, monkeypatch
):
    # The accounts service, reconnecting through a proxy that can be switched off.
    accounts.database = Database(type(accounts.settings.database)(url=proxy.url))
    headers = {"authorization": "Bearer some-session-token"}
    assert (
        call(
            context,
            "POST",
            "/api/accounts/password-reset",
            b'{"email": "b@example.com"}',
            {},
            False,
        )[0]
        == 202
    )

    proxy.off()  # a restart: every connection dropped, none accepted
    answers = [
        call(
            context,
            method,
            path,
            json.dumps(body).encode() if body is not None else b"",
            headers,
            False,
        )
        for method, path, body in REQUESTS
    ]
    proxy.on()

    assert [(status, json.loads(body)["error"]) for status, body in answers] == [
        (503, "database_unavailable")
    ] * len(REQUESTS)
    status, _ = call(
        context, "POST", "/api/accounts/password-reset", b'{"email": "c@example.com"}', {}, False
    )
    assert status == 202


def test_a_request_sqs_refused_is_503_and_counts_no_send(db, accounts, sqs, email_queue, context):
    class DownSqs:
        def send_message(self, QueueUrl, MessageBody):  # boto3's names
            raise EndpointConnectionError(endpoint_url=QueueUrl)

    accounts.queue = EmailQueue(DownSqs(), email_queue)
    body = b'{"email": "a@example.com"}'
    status, answer = call(context, "POST", "/api/accounts/password-reset", body, {}, False)
    assert (status, json.loads(answer)["error"]) == (503, "queue_unavailable")

    accounts.queue = EmailQueue(sqs, email_queue)
    assert call(context, "POST", "/api/accounts/password-reset", body, {}, False)[0] == 202
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM email_challenges")
        assert cur.fetchone() == (1,)
