"""API Gateway (HTTP API, payload 2.0) -> owners' accounts: register, sign in, reset."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.accounts.accounts import Accounts, build_accounts
from sluice.accounts.sessions import authenticate
from sluice.core import aws_clients
from sluice.core.clock import SystemClock
from sluice.core.config import AccountsSettings
from sluice.core.errors import SluiceError
from sluice.core.http_api import error_response, json_object, json_response, request_body
from sluice.core.observability import logger, metrics, tracer

app = APIGatewayHttpResolver()
# The same words whatever the address: nothing here may tell whether it has an account.
QUEUED = "If the address can be used, an email with a code is on its way; it works for 10 minutes."
RESET_QUEUED = "If the address has an account, an email with a reset token is on its way."


@cache
def accounts() -> Accounts:
    """Built on the first invocation (the KDF's dummy hash included) and kept by the container."""
    settings = AccountsSettings.from_env()
    return build_accounts(settings, aws_clients.client("sqs", settings.aws), SystemClock())


def _fields(*names: str) -> list[Any]:
    """The named fields of the JSON object in the body (None when absent); 400/413 otherwise."""
    raw = request_body(app.current_event)
    body = json_object(raw, accounts().settings.max_body_bytes, *names)
    return [body.get(name) for name in names]


def _source() -> str:
    """The client's IP address: the hashing routes' own limit (sluice.accounts.accounts)."""
    return app.current_event.request_context.http.source_ip


def _queued(challenge_id: Any) -> Response:
    metrics.add_metric(name="EmailRequestsQueued", unit=MetricUnit.Count, value=1)
    return json_response(202, {"challenge_id": str(challenge_id), "message": QUEUED})


@app.post("/api/accounts/register")
def register() -> Response:
    email, password = _fields("email", "password")
    return _queued(accounts().register(email, password, _source()).challenge_id)


@app.post("/api/accounts/verify")
def verify() -> Response:
    challenge_id, code = _fields("challenge_id", "code")
    account_id = accounts().verify(challenge_id, code)
    return json_response(
        201, {"account_id": str(account_id), "message": "Verified: you can sign in."}
    )


@app.post("/api/accounts/sign-in")
def sign_in() -> Response:
    email, password = _fields("email", "password")
    return _queued(accounts().start_sign_in(email, password, _source()).challenge_id)


@app.post("/api/accounts/sign-in/verify")
def sign_in_code() -> Response:
    challenge_id, code = _fields("challenge_id", "code")
    session = accounts().finish_sign_in(challenge_id, code)
    return json_response(
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
    return json_response(204, None)


@app.get("/api/accounts/me")
def me() -> Response:
    service = accounts()
    session = authenticate(service.database, app.current_event.headers, service.clock)
    return json_response(200, service.whoami(session))


@app.post("/api/accounts/password-reset")
def password_reset() -> Response:
    (email,) = _fields("email")
    accounts().request_reset(email)
    metrics.add_metric(name="EmailRequestsQueued", unit=MetricUnit.Count, value=1)
    return json_response(202, {"message": RESET_QUEUED})


@app.post("/api/accounts/password-reset/confirm")
def password_reset_confirm() -> Response:
    token, password = _fields("token", "password")
    accounts().confirm_reset(token, password, _source())
    return json_response(
        200, {"message": "Password changed; every session of the account was ended."}
    )


@app.exception_handler(SluiceError)
def sluice_error(error: SluiceError) -> Response:
    return error_response(error)


@app.not_found
def route_not_found(_: Exception) -> Response:
    return json_response(404, {"error": "route_not_found", "message": "No such accounts route."})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
