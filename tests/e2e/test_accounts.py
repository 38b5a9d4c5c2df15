"""Owners' accounts over real HTTP on the local runtime: the accounts function, the email
queue, the email function and moto's SES, as `make dev` runs them.
"""

from __future__ import annotations

import json
import re
import uuid

from local_runtime.runtime import Runtime
from tests.local_runtime.conftest import http
from tests.support import wait_for
from toolkit.mail import captured

PASSWORD = "tidal-Orbit-93-quince"  # noqa: S105 - a test password
NEW_PASSWORD = "lantern-Basalt-71-mango"  # noqa: S105


def address() -> str:
    return f"owner-{uuid.uuid4().hex[:8]}@example.com"


def call(sluice: Runtime, path: str, body=None, *, method="POST", token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    status, response_headers, raw = http(method, sluice.api_url + path, data, headers)
    return status, (json.loads(raw) if raw else None), response_headers


def mail_to(sluice: Runtime, to: str, count: int) -> list[dict]:
    """Waits until `count` emails reached `to` in moto's SES; returns them."""

    def arrived() -> list[dict]:
        mails = [
            m for m in captured(sluice.aws_endpoint_url) if to in m["destinations"]["ToAddresses"]
        ]
        return mails if len(mails) >= count else []

    return wait_for(arrived, timeout=20)


def secret(mail: dict) -> str:
    token = re.search(r"[0-9a-f-]{36}\.[A-Za-z0-9_-]{43}", mail["body"])
    return token.group(0) if token else re.search(r"\b\d{6}\b", mail["subject"]).group(0)


def register(sluice, owner: str) -> str:
    status, body, _ = call(sluice, "/api/accounts/register", {"email": owner, "password": PASSWORD})
    assert status == 202, body
    code = secret(mail_to(sluice, owner, 1)[-1])
    status, verified, _ = call(
        sluice, "/api/accounts/verify", {"challenge_id": body["challenge_id"], "code": code}
    )
    assert status == 201, verified
    return verified["account_id"]


def sign_in(sluice, owner: str, mails_before: int, password: str = PASSWORD) -> str:
    status, body, _ = call(sluice, "/api/accounts/sign-in", {"email": owner, "password": password})
    assert status == 202, body
    code = secret(mail_to(sluice, owner, mails_before + 1)[-1])
    status, session, _ = call(
        sluice, "/api/accounts/sign-in/verify", {"challenge_id": body["challenge_id"], "code": code}
    )
    assert status == 200, session
    return session["session_token"]


def test_register_verify_sign_in_code_session_sign_out(sluice, db):
    owner = address()
    account_id = register(sluice, owner)
    token = sign_in(sluice, owner, mails_before=1)

    status, me, _ = call(sluice, "/api/accounts/me", method="GET", token=token)
    assert (status, me["account_id"], me["email"]) == (200, account_id, owner)

    assert call(sluice, "/api/accounts/sign-out", token=token)[0] == 204
    status, body, _ = call(sluice, "/api/accounts/me", method="GET", token=token)
    assert (status, body["error"]) == (401, "unauthorized")


def test_password_reset_end_to_end_ends_the_old_sessions(sluice, db):
    owner = address()
    register(sluice, owner)
    session = sign_in(sluice, owner, mails_before=1)

    assert call(sluice, "/api/accounts/password-reset", {"email": owner})[0] == 202
    token = secret(mail_to(sluice, owner, 3)[-1])
    status, body, _ = call(
        sluice, "/api/accounts/password-reset/confirm", {"token": token, "password": NEW_PASSWORD}
    )

    assert status == 200, body
    assert call(sluice, "/api/accounts/me", method="GET", token=session)[0] == 401
    fresh = sign_in(sluice, owner, mails_before=3, password=NEW_PASSWORD)
    assert call(sluice, "/api/accounts/me", method="GET", token=fresh)[0] == 200


def test_a_sign_in_code_from_before_a_reset_opens_nothing_after_it(sluice, db):
    owner = address()
    register(sluice, owner)
    assert call(sluice, "/api/accounts/password-reset", {"email": owner})[0] == 202
    reset_token = secret(mail_to(sluice, owner, 2)[-1])
    status, started, _ = call(
        sluice, "/api/accounts/sign-in", {"email": owner, "password": PASSWORD}
    )
    assert status == 202
    old_code = secret(mail_to(sluice, owner, 3)[-1])

    status, body, _ = call(
        sluice,
        "/api/accounts/password-reset/confirm",
        {"token": reset_token, "password": NEW_PASSWORD},
    )
    assert status == 200, body
    status, body, _ = call(
        sluice,
        "/api/accounts/sign-in/verify",
        {"challenge_id": started["challenge_id"], "code": old_code},
    )

    assert (status, body["error"]) == (400, "code_expired")


def test_over_the_limit_the_answer_is_429_with_retry_after(sluice, db):
    owner = address()  # the test settings allow five mails a minute per address
    statuses = [call(sluice, "/api/accounts/password-reset", {"email": owner})[0] for _ in range(5)]

    status, body, headers = call(sluice, "/api/accounts/password-reset", {"email": owner})

    assert statuses == [202] * 5
    assert (status, body["error"]) == (429, "rate_limited")
    assert 1 <= int(headers["retry-after"][0]) <= 60
    assert body["retry_after"] == int(headers["retry-after"][0])


def _work(db, email: str) -> list[tuple]:
    """What a request left behind once the email function was done with it."""

    def settled() -> list[tuple]:
        with db.cursor() as cur:
            cur.execute(
                "SELECT c.kind, d.state IS NOT NULL FROM email_challenges c"
                " LEFT JOIN email_deliveries d USING (challenge_id) WHERE c.email = %s"
                " ORDER BY c.created_at",
                (email,),
            )
            rows = cur.fetchall()
        return rows if rows and all(done for _, done in rows) else []

    return wait_for(settled, timeout=20)


def test_known_and_unknown_addresses_answer_the_same_and_do_the_same_work(sluice, db):
    owner, stranger = address(), address()
    register(sluice, owner)
    requests = [
        ("/api/accounts/register", {"password": NEW_PASSWORD}),
        ("/api/accounts/sign-in", {"password": PASSWORD}),
        ("/api/accounts/password-reset", {}),
    ]
    for path, body in requests:
        answers = []
        for email in (owner, stranger):
            status, answer, headers = call(sluice, path, {**body, "email": email})
            answers.append(
                (status, sorted(answer), answer["message"], sorted(set(headers) - {"date"}))
            )
        assert answers[0] == answers[1], path
    # One challenge per request, each taken up by the email function, for both addresses.
    owner_work = _work(db, owner)[1:]  # after the owner's own registration
    assert owner_work == _work(db, stranger)
    assert [kind for kind, _ in owner_work] == ["register", "sign_in", "password_reset"]
    # The owner got a sign-in code, a notice and a reset token; the stranger a verification code.
    subjects = sorted(m["subject"].split(":")[0] for m in mail_to(sluice, owner, 4)[1:])
    assert subjects == [
        "Reset your Sluice password",
        "Someone tried to create a Sluice account with your address",
        "Your Sluice sign-in code",
    ]
    assert [m["subject"].split(":")[0] for m in mail_to(sluice, stranger, 1)] == [
        "Your Sluice verification code"
    ]
