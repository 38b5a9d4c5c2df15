"""The accounts and email handlers together, as API Gateway and SQS call them.

Real PostgreSQL, moto's SQS and SES, the manual clock: a request goes through the
accounts handler, its message through the email queue to the email handler, and the
mail into moto's SES, where the test reads the code an owner would read.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import timedelta

import pytest
from moto.ses.models import ses_backends
from sluice.accounts.accounts import Accounts
from sluice.accounts.passwords import PasswordHasher

import functions.accounts.app as accounts_app
import functions.email.app as email_app
from tests.handlers.conftest import SENDER
from tests.handlers.test_correlation import emitted
from tests.support import drain, http_event, sqs_event

PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a test password
NEW_PASSWORD = "lantern-Basalt-71-mango"  # noqa: S105


def call(
    context,
    path: str,
    body=None,
    *,
    method: str = "POST",
    token: str | None = None,
    source: str = "192.0.2.1",
):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    event = http_event(path, body, method=method, headers=headers)
    event["requestContext"]["http"]["sourceIp"] = source
    response = accounts_app.handler(event, context)
    data = json.loads(response["body"]) if response.get("body") else None
    return response["statusCode"], data, response.get("headers", {})


def sent_mail() -> list:
    return list(ses_backends["123456789012"]["us-east-1"].sent_messages)


def mail_to(address: str) -> list:
    address = address.strip().lower()
    return [m for m in sent_mail() if address in m.destinations["ToAddresses"]]


def secret_in(message) -> str:
    """The code (6 digits) or the reset token (<uuid>.<secret>) an email carries."""
    token = re.search(r"[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}", message.body)
    if token:
        return token.group(0)
    return re.search(r"\b\d{6}\b", message.subject).group(0)


def deliver(sqs, email_queue, context, *, times: int = 1) -> list[str]:
    """Runs the email handler on everything queued (`times` deliveries of each message)."""
    bodies = drain(sqs, email_queue)
    for _ in range(times):
        result = email_app.handler(sqs_event(bodies), context)
        assert result == {"batchItemFailures": []}
    return bodies


def register(context, sqs, email_queue, address: str, password: str = PASSWORD) -> str:
    status, body, _ = call(
        context, "/api/accounts/register", {"email": address, "password": password}
    )
    assert status == 202, body
    deliver(sqs, email_queue, context)
    code = secret_in(mail_to(address)[-1])
    status, body, _ = call(
        context, "/api/accounts/verify", {"challenge_id": body["challenge_id"], "code": code}
    )
    assert status == 201, body
    return body["account_id"]


def sign_in(context, sqs, email_queue, clock, address: str, password: str = PASSWORD) -> str:
    clock.advance(61)  # past the one-a-minute limit of the previous mail
    status, body, _ = call(
        context, "/api/accounts/sign-in", {"email": address, "password": password}
    )
    assert status == 202, body
    deliver(sqs, email_queue, context)
    code = secret_in(mail_to(address)[-1])
    status, body, _ = call(
        context,
        "/api/accounts/sign-in/verify",
        {"challenge_id": body["challenge_id"], "code": code},
    )
    assert status == 200, body
    return body["session_token"]


@pytest.fixture
def flows(db, accounts, mailer, sqs, email_queue, context, clock):
    return {"sqs": sqs, "email_queue": email_queue, "context": context, "clock": clock}


# --- the flows --------------------------------------------------------------------


def test_register_verify_sign_in_and_sign_out(flows, context, sqs, email_queue, clock):
    account_id = register(context, sqs, email_queue, "Owner@Example.com ")
    token = sign_in(context, sqs, email_queue, clock, "owner@example.com")

    status, me, _ = call(context, "/api/accounts/me", method="GET", token=token)
    assert (status, me["account_id"], me["email"]) == (200, account_id, "owner@example.com")

    status, _, _ = call(context, "/api/accounts/sign-out", token=token)
    assert status == 204
    status, body, _ = call(context, "/api/accounts/me", method="GET", token=token)
    assert (status, body["error"]) == (401, "unauthorized")


def test_each_email_is_plain_text_and_html_from_the_sender_with_the_product_name(
    flows, context, sqs, email_queue
):
    call(context, "/api/accounts/register", {"email": "a@example.com", "password": PASSWORD})
    deliver(sqs, email_queue, context)

    (message,) = mail_to("a@example.com")
    assert message.source == SENDER
    assert "Sluice" in message.subject
    assert message.body.startswith("<!doctype html>")  # moto keeps the HTML part
    assert "<img" not in message.body and "http" not in message.body  # nothing that tracks


def test_a_wrong_password_sends_no_code_and_no_code_opens_its_challenge(
    flows, context, sqs, email_queue, clock
):
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    mails = len(sent_mail())

    status, body, _ = call(
        context,
        "/api/accounts/sign-in",
        {"email": "owner@example.com", "password": "not-it-at-all"},
    )
    deliver(sqs, email_queue, context)

    assert status == 202
    assert len(sent_mail()) == mails
    status, answer, _ = call(
        context,
        "/api/accounts/sign-in/verify",
        {"challenge_id": body["challenge_id"], "code": "123456"},
    )
    assert (status, answer["error"]) == (400, "invalid_code")


def test_a_session_expires_after_12_hours(flows, context, sqs, email_queue, clock):
    register(context, sqs, email_queue, "owner@example.com")
    token = sign_in(context, sqs, email_queue, clock, "owner@example.com")

    clock.advance(12 * 3600 - 1)
    assert call(context, "/api/accounts/me", method="GET", token=token)[0] == 200
    clock.advance(1)
    assert call(context, "/api/accounts/me", method="GET", token=token)[0] == 401


def test_password_reset_ends_every_session_and_the_old_password(
    flows, context, sqs, email_queue, clock, db
):
    register(context, sqs, email_queue, "owner@example.com")
    first = sign_in(context, sqs, email_queue, clock, "owner@example.com")
    second = sign_in(context, sqs, email_queue, clock, "owner@example.com")
    clock.advance(61)

    status, body, _ = call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})
    assert status == 202 and set(body) == {"message"}
    deliver(sqs, email_queue, context)
    token = secret_in(mail_to("owner@example.com")[-1])
    status, body, _ = call(
        context, "/api/accounts/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )

    assert status == 200, body
    for session in (first, second):
        assert call(context, "/api/accounts/me", method="GET", token=session)[0] == 401
    # The token is single-use.
    status, body, _ = call(
        context, "/api/accounts/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )
    assert (status, body["error"]) == (400, "token_used")
    # The old password no longer gets a code; the new one does.
    clock.advance(3600)  # past the five-an-hour limit
    mails = len(sent_mail())
    call(context, "/api/accounts/sign-in", {"email": "owner@example.com", "password": PASSWORD})
    deliver(sqs, email_queue, context)
    assert len(sent_mail()) == mails
    assert sign_in(context, sqs, email_queue, clock, "owner@example.com", NEW_PASSWORD)


def test_a_sign_in_code_issued_before_a_reset_opens_no_session_after_it(
    flows, context, sqs, email_queue, clock, db
):
    """The sequence of issue 21: reset asked, a code issued with the old password, reset
    confirmed ("every session ended"), then the old code. It must not mint a session."""
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})
    deliver(sqs, email_queue, context)
    reset_token = secret_in(mail_to("owner@example.com")[-1])
    clock.advance(61)
    status, started, _ = call(
        context, "/api/accounts/sign-in", {"email": "owner@example.com", "password": PASSWORD}
    )
    assert status == 202
    deliver(sqs, email_queue, context)
    old_code = secret_in(mail_to("owner@example.com")[-1])

    status, body, _ = call(
        context,
        "/api/accounts/password-reset/confirm",
        {"token": reset_token, "password": NEW_PASSWORD},
    )
    assert status == 200, body
    status, body, _ = call(
        context,
        "/api/accounts/sign-in/verify",
        {"challenge_id": started["challenge_id"], "code": old_code},
    )

    assert (status, body["error"]) == (400, "code_expired")
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM sessions WHERE ended_at IS NULL")
        assert cur.fetchone() == (0,)


def test_a_reset_ends_every_other_pending_challenge_of_the_account(
    flows, context, sqs, email_queue, clock
):
    register(context, sqs, email_queue, "owner@example.com")
    tokens = []
    for _ in range(2):
        clock.advance(61)
        call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})
        deliver(sqs, email_queue, context)
        tokens.append(secret_in(mail_to("owner@example.com")[-1]))
    # One more, asked for but not mailed yet: its row names the address, not the account.
    clock.advance(61)
    call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})

    status, _, _ = call(
        context,
        "/api/accounts/password-reset/confirm",
        {"token": tokens[1], "password": NEW_PASSWORD},
    )
    assert status == 200
    status, body, _ = call(
        context,
        "/api/accounts/password-reset/confirm",
        {"token": tokens[0], "password": "quiver-Marble-44-falcon"},
    )
    mails = len(sent_mail())
    deliver(sqs, email_queue, context)

    assert (status, body["error"]) == (400, "token_expired")
    assert len(sent_mail()) == mails  # the late one is not mailed: it could only fail


class PausingHasher(PasswordHasher):
    """The real scrypt hasher, which waits after checking a password until it is let go:
    a sign-in paused between its password check and its challenge's commit."""

    def __init__(self, parameters) -> None:
        super().__init__(parameters)
        self.checked = threading.Event()
        self.go_on = threading.Event()

    def verify(self, password, stored):
        right = super().verify(password, stored)
        self.checked.set()
        assert self.go_on.wait(10)
        return right


def test_a_sign_in_whose_password_was_checked_before_a_reset_gets_no_code_after_it(
    flows, accounts, accounts_settings, context, sqs, email_queue, clock, db
):
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})
    deliver(sqs, email_queue, context)
    reset_token = secret_in(mail_to("owner@example.com")[-1])
    clock.advance(61)
    hasher = PausingHasher(accounts.hasher.parameters)
    paused = Accounts(accounts_settings, accounts.database, accounts.queue, clock, hasher)
    outcome = {}
    sign_in = threading.Thread(
        target=lambda: outcome.update(queued=paused.start_sign_in("owner@example.com", PASSWORD))
    )

    sign_in.start()  # checks the old password, which is still right...
    assert hasher.checked.wait(10)
    status, _, _ = call(  # ...the reset commits...
        context,
        "/api/accounts/password-reset/confirm",
        {"token": reset_token, "password": NEW_PASSWORD},
    )
    hasher.go_on.set()  # ...then the sign-in writes its challenge.
    sign_in.join(10)
    mails = len(sent_mail())
    deliver(sqs, email_queue, context)

    assert status == 200
    assert "queued" in outcome  # the same answer as always
    assert len(sent_mail()) == mails  # but no code: the password it checked is gone
    with db.cursor() as cur:
        cur.execute(
            "SELECT account_id FROM email_challenges WHERE challenge_id = %s",
            (outcome["queued"].challenge_id,),
        )
        assert cur.fetchone() == (None,)


def test_a_reset_token_expires_after_30_minutes(flows, context, sqs, email_queue, clock):
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})
    deliver(sqs, email_queue, context)
    token = secret_in(mail_to("owner@example.com")[-1])

    clock.advance(30 * 60)
    status, body, _ = call(
        context, "/api/accounts/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )
    assert (status, body["error"]) == (400, "token_expired")


# --- codes: tries and expiry ------------------------------------------------------


def _registration(context, sqs, email_queue, address="owner@example.com"):
    status, body, _ = call(
        context, "/api/accounts/register", {"email": address, "password": PASSWORD}
    )
    assert status == 202
    deliver(sqs, email_queue, context)
    return body["challenge_id"], secret_in(mail_to(address)[-1])


def test_a_code_dies_after_5_wrong_tries(flows, context, sqs, email_queue):
    challenge_id, code = _registration(context, sqs, email_queue)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    answers = [
        call(context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": wrong})[1][
            "error"
        ]
        for _ in range(5)
    ]
    status, body, _ = call(
        context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": code}
    )

    assert answers == ["invalid_code"] * 5
    assert (status, body["error"]) == (429, "too_many_attempts")


def test_a_code_expires_after_10_minutes(flows, context, sqs, email_queue, clock):
    challenge_id, code = _registration(context, sqs, email_queue)

    clock.advance(10 * 60)
    status, body, _ = call(
        context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": code}
    )

    assert (status, body["error"]) == (400, "code_expired")


def test_a_code_works_once(flows, context, sqs, email_queue):
    challenge_id, code = _registration(context, sqs, email_queue)
    assert (
        call(context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": code})[0]
        == 201
    )

    status, body, _ = call(
        context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": code}
    )
    assert (status, body["error"]) == (400, "code_used")


# --- rate limits ------------------------------------------------------------------


def test_a_second_mail_within_a_minute_is_refused_with_retry_after(flows, context, clock):
    first = call(context, "/api/accounts/password-reset", {"email": "x@example.com"})
    clock.advance(20)
    status, body, headers = call(
        context, "/api/accounts/password-reset", {"email": "x@example.com"}
    )

    assert first[0] == 202
    assert (status, body["error"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "40"
    clock.advance(40)
    assert call(context, "/api/accounts/password-reset", {"email": "x@example.com"})[0] == 202


def test_five_mails_an_hour_per_address_and_kind(flows, context, clock):
    register_ = ("/api/accounts/register", {"email": "x@example.com", "password": PASSWORD})
    statuses = []
    for _ in range(5):
        statuses.append(call(context, *register_)[0])
        clock.advance(60)

    status, body, headers = call(context, *register_)

    assert statuses == [202] * 5
    assert (status, body["error"]) == (429, "rate_limited")
    assert headers["Retry-After"] == str(3600 - 5 * 60)
    # Another kind, and another address, are not held up by them.
    assert call(context, "/api/accounts/password-reset", {"email": "x@example.com"})[0] == 202
    assert call(context, "/api/accounts/password-reset", {"email": "y@example.com"})[0] == 202


def test_wrong_passwords_from_anywhere_never_lock_the_owner_out(
    flows, context, sqs, email_queue, clock
):
    """Issue 21: five wrong passwords, one a minute, from anywhere, gave the owner
    `429 Retry-After: 2959` on sign-in and on password reset."""
    register(context, sqs, email_queue, "owner@example.com")
    for n in range(5):
        clock.advance(60)
        status, _, _ = call(
            context,
            "/api/accounts/sign-in",
            {"email": "owner@example.com", "password": f"wrong-guess-{n}"},
            source=f"198.51.100.{n}",
        )
        assert status == 202

    clock.advance(60)
    signed_in = call(
        context,
        "/api/accounts/sign-in",
        {"email": "owner@example.com", "password": PASSWORD},
        source="203.0.113.7",
    )
    reset = call(
        context,
        "/api/accounts/password-reset",
        {"email": "owner@example.com"},
        source="203.0.113.7",
    )

    assert signed_in[0] == 202, signed_in
    assert reset[0] == 202, reset


def guess_for_an_hour(context, clock, address: str) -> tuple[int, list[int]]:
    """Guesses `address`'s password as fast as the answers allow, a new source each time.
    The guesses that got through and every Retry-After met."""
    start, through, waits, n = clock.now(), 0, [], 0
    while clock.now() - start < timedelta(hours=1):
        n += 1
        status, _, headers = call(
            context,
            "/api/accounts/sign-in",
            {"email": address, "password": f"guess-{n}"},
            source=f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
        )
        if status == 202:
            through += 1
        else:
            assert status == 429
            waits.append(int(headers["Retry-After"]))
            clock.advance(waits[-1])
    return through, waits


def test_guessing_an_address_from_many_sources_is_slowed_never_walled(flows, context, clock):
    through, waits = guess_for_an_hour(context, clock, "owner@example.com")

    # Five free, then 1, 2, 4 ... 32 s apart, then one a minute: about 70 in the hour.
    assert 60 <= through <= 75
    assert waits and max(waits) <= 60
    # The owner, coming now, waits a minute at most, and a reset not at all.
    status, _, headers = call(
        context, "/api/accounts/sign-in", {"email": "owner@example.com", "password": PASSWORD}
    )
    assert status == 202 or int(headers["Retry-After"]) <= 60
    assert call(context, "/api/accounts/password-reset", {"email": "owner@example.com"})[0] == 202


def test_one_source_is_walled_off_over_every_address(flows, context, clock):
    answers = [
        call(
            context,
            "/api/accounts/sign-in",
            {"email": f"owner{n}@example.com", "password": PASSWORD},
            source="198.51.100.9",
        )
        for n in range(11)
    ]

    assert [status for status, _, _ in answers] == [202] * 10 + [429]
    assert answers[-1][2]["Retry-After"] == "60"
    # Another source is not held up by it.
    status, _, _ = call(
        context,
        "/api/accounts/sign-in",
        {"email": "owner0@example.com", "password": PASSWORD},
        source="198.51.100.10",
    )
    assert status == 202


def test_every_throttle_answers_alike(flows, context, sqs, email_queue, clock):
    challenge_id, code = _registration(context, sqs, email_queue)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(6):
        exhausted = call(
            context, "/api/accounts/verify", {"challenge_id": challenge_id, "code": wrong}
        )
    mails = call(
        context, "/api/accounts/register", {"email": "owner@example.com", "password": PASSWORD}
    )
    for n in range(11):
        source = call(
            context,
            "/api/accounts/sign-in",
            {"email": f"x{n}@example.com", "password": PASSWORD},
            source="198.51.100.9",
        )

    for status, body, headers in (exhausted, mails, source):
        assert status == 429
        assert set(body) == {"error", "message", "retry_after"}
        assert body["retry_after"] >= 1
        assert headers["Retry-After"] == str(body["retry_after"])
    assert exhausted[1]["error"] == "too_many_attempts"
    # The wait until a new code may be asked for: the registration's minute.
    assert exhausted[1]["retry_after"] == 60
    assert (mails[1]["error"], source[1]["error"]) == ("rate_limited", "rate_limited")


# --- no enumeration ---------------------------------------------------------------


def _shape(value):
    """The JSON's shape: keys and types, with the values that must differ (ids) left out."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/accounts/register", {"password": "plover-Quartz-58-ember"}),
        ("/api/accounts/sign-in", {"password": PASSWORD}),
        ("/api/accounts/password-reset", {}),
    ],
)
def test_a_known_and_an_unknown_address_get_the_same_answer_and_queue_the_same(
    flows, context, sqs, email_queue, clock, path, body
):
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    answers, queued = [], []
    for address in ("owner@example.com", "nobody@example.com"):
        status, answer, headers = call(context, path, {**body, "email": address})
        answers.append((status, _shape(answer), answer.get("message"), headers))
        (message,) = drain(sqs, email_queue)
        queued.append(_shape(json.loads(message)) | {"kind": json.loads(message)["kind"]})

    assert answers[0] == answers[1]
    assert answers[0][0] == 202
    assert queued[0] == queued[1]
    assert "@" not in json.dumps(queued)  # no address travels through the queue


def test_what_the_email_function_makes_of_known_and_unknown_addresses(
    flows, context, sqs, email_queue, clock
):
    register(context, sqs, email_queue, "owner@example.com")
    clock.advance(61)
    before = len(sent_mail())
    for address in ("owner@example.com", "nobody@example.com"):
        call(context, "/api/accounts/register", {"email": address, "password": NEW_PASSWORD})
        call(context, "/api/accounts/sign-in", {"email": address, "password": "wrong-password-1"})
    clock.advance(61)
    for address in ("owner@example.com", "nobody@example.com"):
        call(context, "/api/accounts/password-reset", {"email": address})
    deliver(sqs, email_queue, context)

    subjects = sorted((m.destinations["ToAddresses"][0], m.subject) for m in sent_mail()[before:])
    # The owner hears that someone tried to register, and gets a reset token; the unknown
    # address gets a verification code (it may become an account); wrong passwords get nothing.
    assert [(to, s.split(":")[0]) for to, s in subjects] == [
        ("nobody@example.com", "Your Sluice verification code"),
        ("owner@example.com", "Reset your Sluice password"),
        ("owner@example.com", "Someone tried to create a Sluice account with your address"),
    ]


# --- the email function: dedup, throttling, rejection ------------------------------


def test_a_redelivered_and_a_producer_retried_message_send_one_email(
    flows, context, sqs, email_queue, db
):
    call(context, "/api/accounts/password-reset", {"email": "x@example.com"})
    register_status, body, _ = call(
        context, "/api/accounts/register", {"email": "new@example.com", "password": PASSWORD}
    )
    (message,) = [m for m in drain(sqs, email_queue) if body["challenge_id"] in m]

    # The same message delivered twice (SQS at least once), then a second message with
    # the same request (the producer retried a SendMessage whose answer it lost).
    for _ in range(2):
        assert email_app.handler(sqs_event([message]), context) == {"batchItemFailures": []}
    assert email_app.handler(sqs_event([message]), context) == {"batchItemFailures": []}

    assert register_status == 202
    assert len(mail_to("new@example.com")) == 1
    with db.cursor() as cur:
        cur.execute("SELECT state, attempts FROM email_deliveries")
        assert cur.fetchall() == [("sent", 1)]


def printed_metrics(output: str) -> dict[str, float]:
    """Metric name -> value, from the EMF lines a handler printed."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return emitted(lines)


class ThrottlingSes:
    """moto's SES behind a door that answers TooManyRequestsException the first `times` sends."""

    def __init__(self, client, times: int, code: str = "TooManyRequestsException") -> None:
        self.client = client
        self.times = times
        self.code = code
        self.calls = 0

    def send_email(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls <= self.times:
            raise ClientError({"Error": {"Code": self.code, "Message": "slow down"}}, "SendEmail")
        return self.client.send_email(**kwargs)


def test_ses_throttling_comes_back_as_a_batch_item_failure_and_is_then_sent(
    db, accounts, make_mailer, ses, sqs, email_queue, context, capsys
):
    throttled = ThrottlingSes(ses, times=1)
    make_mailer(throttled)
    call(context, "/api/accounts/register", {"email": "new@example.com", "password": PASSWORD})
    bodies = drain(sqs, email_queue)
    event = sqs_event(bodies)
    capsys.readouterr()

    first = email_app.handler(event, context)
    first_metrics = printed_metrics(capsys.readouterr().out)
    second = email_app.handler(event, context)  # SQS hands it out again
    second_metrics = printed_metrics(capsys.readouterr().out)

    assert first == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert second == {"batchItemFailures": []}
    assert len(mail_to("new@example.com")) == 1
    assert throttled.calls == 2
    # What EmailDeliveryFailingAlarm watches, zeros included.
    assert (first_metrics["EmailsThrottled"], first_metrics["EmailsSent"]) == (1, 0)
    assert (second_metrics["EmailsThrottled"], second_metrics["EmailsSent"]) == (0, 1)


def test_a_permanent_rejection_is_recorded_and_not_retried(
    db, accounts, make_mailer, ses, sqs, email_queue, context
):
    # SES refusing this message (an unverified identity is a misconfiguration instead:
    # tests/handlers/test_email_errors.py).
    make_mailer(ThrottlingSes(ses, times=99, code="MessageRejected"))
    call(context, "/api/accounts/register", {"email": "new@example.com", "password": PASSWORD})
    bodies = drain(sqs, email_queue)

    assert email_app.handler(sqs_event(bodies), context) == {"batchItemFailures": []}
    assert email_app.handler(sqs_event(bodies), context) == {"batchItemFailures": []}
    assert mail_to("new@example.com") == []
    with db.cursor() as cur:
        cur.execute("SELECT state, reason, attempts FROM email_deliveries")
        assert cur.fetchall() == [("rejected", "MessageRejected", 1)]


def test_a_bad_address_rejected_by_ses_is_recorded(
    db, accounts, make_mailer, ses, sqs, email_queue, context
):
    make_mailer(ThrottlingSes(ses, times=99, code="BadRequestException"))
    call(context, "/api/accounts/register", {"email": "new@example.com", "password": PASSWORD})

    deliver(sqs, email_queue, context)

    with db.cursor() as cur:
        cur.execute("SELECT state, reason FROM email_deliveries")
        assert cur.fetchall() == [("rejected", "BadRequestException")]


def test_a_malformed_message_fails_alone(flows, context, sqs, email_queue, capsys):
    call(context, "/api/accounts/password-reset", {"email": "x@example.com"})
    good = drain(sqs, email_queue)
    event = sqs_event(["not json", *good])
    capsys.readouterr()

    result = email_app.handler(event, context)

    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert printed_metrics(capsys.readouterr().out)["EmailRequestsFailed"] == 1


# --- logs -------------------------------------------------------------------------


def test_no_address_code_or_password_reaches_the_logs(
    flows, context, sqs, email_queue, clock, caplog
):
    from sluice.core.observability import logger

    level = logger.log_level
    logger.setLevel("DEBUG")  # every record the functions make, not only warnings
    caplog.set_level(logging.DEBUG)
    try:
        account = register(context, sqs, email_queue, "secret.owner@example.com")
        token = sign_in(context, sqs, email_queue, clock, "secret.owner@example.com")
        clock.advance(61)
        call(context, "/api/accounts/password-reset", {"email": "secret.owner@example.com"})
        deliver(sqs, email_queue, context)
    finally:
        logger.setLevel(level)
    codes = [secret_in(m) for m in sent_mail()]
    # What the functions and Powertools log; botocore's DEBUG request dumps are not
    # emitted in Lambda (nothing lowers the root logger there).
    logs = "\n".join(
        record.getMessage() + repr(record.__dict__)
        for record in caplog.records
        if not record.name.startswith(("botocore", "urllib3", "moto", "boto3"))
    )

    assert account and token and len(codes) == 3
    assert "email sent" in logs  # the functions did log
    for secret in ["secret.owner", PASSWORD, token, *codes]:
        assert secret not in logs


def test_the_local_printout_shows_codes_only_when_switched_on(
    db, accounts, make_mailer, sqs, email_queue, context, capfd
):
    make_mailer(local_echo=True)
    call(context, "/api/accounts/register", {"email": "new@example.com", "password": PASSWORD})
    deliver(sqs, email_queue, context)

    code = secret_in(mail_to("new@example.com")[-1])
    printed = capfd.readouterr().err
    assert "[local mail] verify for challenge" in printed and code in printed
    assert "new@example.com" not in printed
