"""API Gateway (HTTP API, payload 2.0) -> owners' accounts: register, sign in, reset."""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import boto3
import orjson
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.accounts import Accounts, build_accounts
from sluice.clock import SystemClock
from sluice.config import AccountsSettings
from sluice.errors import PayloadTooLarge, RateLimited, RequestRejected, SluiceError
from sluice.http_errors import http_status
from sluice.observability import logger, metrics, tracer
from sluice.sessions import authenticate

app = APIGatewayHttpResolver()
# The same words whatever the address: nothing here may tell whether it has an account.
QUEUED = "If the address can be used, an email with a code is on its way; it works for 10 minutes."
RESET_QUEUED = "If the address has an account, an email with a reset token is on its way."


@cache
def accounts() -> Accounts:
    """Built on the first invocation (the KDF's dummy hash included) and kept by the container."""
    return build_accounts(AccountsSettings.from_env(), boto3.client("sqs"), SystemClock())


def _json(
    status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=orjson.dumps(body).decode() if body is not None else "",
        headers=headers,
    )


def _fields(*names: str) -> list[Any]:
    """The named fields of the JSON object in the body (None when absent); 400/413 otherwise."""
    event = app.current_event
    raw = (
        base64.b64decode(event.body or "")
        if event.is_base64_encoded
        else (event.body or "").encode("utf-8", "surrogatepass")
    )
    if len(raw) > accounts().settings.max_body_bytes:
        raise PayloadTooLarge(f"The body is over {accounts().settings.max_body_bytes} bytes.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestRejected("The body is not JSON in UTF-8.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise RequestRejected(f"The body must be a JSON object with {', '.join(names)}.")
    return [body.get(name) for name in names]


def _queued(challenge_id: Any) -> Response:
    metrics.add_metric(name="EmailRequestsQueued", unit=MetricUnit.Count, value=1)
    return _json(202, {"challenge_id": str(challenge_id), "message": QUEUED})


@app.post("/api/accounts/register")
def register() -> Response:
    email, password = _fields("email", "password")
    return _queued(accounts().register(email, password).challenge_id)


@app.post("/api/accounts/verify")
def verify() -> Response:
    challenge_id, code = _fields("challenge_id", "code")
    account_id = accounts().verify(challenge_id, code)
    return _json(201, {"account_id": str(account_id), "message": "Verified: you can sign in."})


@app.post("/api/accounts/sign-in")
def sign_in() -> Response:
    email, password = _fields("email", "password")
    return _queued(accounts().start_sign_in(email, password).challenge_id)


@app.post("/api/accounts/sign-in/verify")
def sign_in_code() -> Response:
    challenge_id, code = _fields("challenge_id", "code")
    session = accounts().finish_sign_in(challenge_id, code)
    return _json(
        200,
        {
            "session_token": session.token,
            "token_type": "Bearer",
            "expires_at": session.expires_at.isoformat(),
        },
    )


@app.post("/api/accounts/sign-out")
def sign_out() -> Response:
    service = accounts()
    service.sign_out(authenticate(service.database, app.current_event.headers, service.clock))
    return _json(204, None)


@app.get("/api/accounts/me")
def me() -> Response:
    service = accounts()
    session = authenticate(service.database, app.current_event.headers, service.clock)
    return _json(200, service.whoami(session))


@app.post("/api/accounts/password-reset")
def password_reset() -> Response:
    (email,) = _fields("email")
    accounts().request_reset(email)
    metrics.add_metric(name="EmailRequestsQueued", unit=MetricUnit.Count, value=1)
    return _json(202, {"message": RESET_QUEUED})


@app.post("/api/accounts/password-reset/confirm")
def password_reset_confirm() -> Response:
    token, password = _fields("token", "password")
    accounts().confirm_reset(token, password)
    return _json(200, {"message": "Password changed; every session of the account was ended."})


@app.exception_handler(SluiceError)
def sluice_error(error: SluiceError) -> Response:
    status = http_status(error)
    headers = None
    if isinstance(error, RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    if status >= 500:
        logger.warning("request failed", error=error.code)
    return _json(status, {"error": error.code, "message": error.message}, headers)


@app.not_found
def route_not_found(_: Exception) -> Response:
    return _json(404, {"error": "route_not_found", "message": "No such accounts route."})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
