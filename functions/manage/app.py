"""API Gateway (HTTP API, payload 2.0) -> an owner's apps, keys, rules and events."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext
from sluice.accounts.sessions import Session, authenticate
from sluice.core.clock import SystemClock
from sluice.core.config import ManageSettings
from sluice.core.db import Database
from sluice.core.errors import RequestRejected, SluiceError
from sluice.core.http_api import error_response, json_object, json_response, request_body
from sluice.core.observability import logger, metrics, tracer
from sluice.intake.keys import api_key_from_headers
from sluice.manage.manage import PARAMETERS as STATS_PARAMETERS
from sluice.manage.manage import Manager

# Lambda (and the local runtime) import this file as `app`, from its folder on the path,
# with query.py copied beside it (Makefile, build-ManageFunction); the tests, mypy and
# the benchmarks import it as functions.manage.app. The sibling module follows either way.
if __package__:
    from . import query
else:
    import query  # type: ignore[import-not-found, no-redef]

app = APIGatewayHttpResolver()
# The whole HTTP API's OpenAPI document, built next to this file (Makefile:
# build-ManageFunction); read at cold start, so a build without it fails at once.
OPENAPI = (Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")


@cache
def manager() -> Manager:
    """Built on the first invocation and kept by the warm container."""
    settings = ManageSettings.from_env()
    return Manager(
        Database(settings.database, settings.aws),
        SystemClock(),
        settings.max_body_bytes,
        ingest_cache=settings.ingest_cache,
    )


def _session() -> Session:
    service = manager()
    return authenticate(service.database, app.current_event.headers, service.clock)


def _body(*, exact: bool = False) -> dict[str, Any]:
    """The JSON object in the body; 400/413 otherwise (see json_object for `exact`)."""
    return json_object(request_body(app.current_event), manager().max_body_bytes, exact=exact)


def _only(body: dict[str, Any], *names: str) -> list[Any]:
    unknown = set(body) - set(names)
    if unknown:
        raise RequestRejected(
            f"Unknown fields: {', '.join(sorted(unknown))}; this route takes {', '.join(names)}."
        )
    return [body.get(name) for name in names]


# --- the API's description (no session: it holds nothing an owner owns)


@app.get("/api/openapi.json")
def openapi() -> Response:
    return Response(status_code=200, content_type="application/json", body=OPENAPI)


# --- apps


@app.post("/api/apps")
def create_app() -> Response:
    (name,) = _only(_body(), "name")
    return json_response(201, manager().create_app(_session().account_id, name))


@app.get("/api/apps")
def list_apps() -> Response:
    return json_response(200, {"apps": manager().list_apps(_session().account_id)})


@app.get("/api/apps/<app_id>")
def get_app(app_id: str) -> Response:
    return json_response(200, manager().get_app(_session().account_id, app_id))


@app.patch("/api/apps/<app_id>")
def change_app(app_id: str) -> Response:
    owner = _session().account_id
    return json_response(200, manager().change_app(owner, app_id, _body()))


@app.delete("/api/apps/<app_id>")
def delete_app(app_id: str) -> Response:
    return json_response(200, manager().delete_app(_session().account_id, app_id))


# --- keys


@app.get("/api/apps/<app_id>/keys")
def list_keys(app_id: str) -> Response:
    return json_response(200, {"keys": manager().list_keys(_session().account_id, app_id)})


@app.post("/api/apps/<app_id>/keys")
def create_key(app_id: str) -> Response:
    return json_response(201, manager().create_key(_session().account_id, app_id))


@app.delete("/api/apps/<app_id>/keys/<key_id>")
def revoke_key(app_id: str, key_id: str) -> Response:
    return json_response(200, manager().revoke_key(_session().account_id, app_id, key_id))


# --- rules (event names arrive percent-encoded in the path)


@app.get("/api/apps/<app_id>/rules")
def list_rules(app_id: str) -> Response:
    return json_response(200, {"rules": manager().list_rules(_session().account_id, app_id)})


@app.get("/api/apps/<app_id>/rules/<event_name>")
def get_rule(app_id: str, event_name: str) -> Response:
    return json_response(
        200, manager().get_rule(_session().account_id, app_id, unquote(event_name))
    )


@app.put("/api/apps/<app_id>/rules/<event_name>")
def put_rule(app_id: str, event_name: str) -> Response:
    owner = _session().account_id
    # Saved as it is and enforced by ingest: refused unless every number is kept exactly.
    (schema,) = _only(_body(exact=True), "schema")
    return json_response(200, manager().put_rule(owner, app_id, unquote(event_name), schema))


@app.delete("/api/apps/<app_id>/rules/<event_name>")
def delete_rule(app_id: str, event_name: str) -> Response:
    return json_response(
        200, manager().delete_rule(_session().account_id, app_id, unquote(event_name))
    )


@app.get("/api/apps/<app_id>/rules/<event_name>/versions")
def rule_history(app_id: str, event_name: str) -> Response:
    owner = _session().account_id
    return json_response(
        200, {"versions": manager().rule_history(owner, app_id, unquote(event_name))}
    )


@app.post("/api/apps/<app_id>/rules/<event_name>/restore")
def restore_rule(app_id: str, event_name: str) -> Response:
    owner = _session().account_id
    (version,) = _only(_body(), "version")
    return json_response(200, manager().restore_rule(owner, app_id, unquote(event_name), version))


# --- events


@app.get("/api/apps/<app_id>/events")
def list_events(app_id: str) -> Response:
    owner = _session().account_id
    query = dict(app.current_event.query_string_parameters or {})
    return json_response(200, manager().list_events(owner, app_id, query))


@app.get("/api/apps/<app_id>/rejections")
def list_rejections(app_id: str) -> Response:
    owner = _session().account_id
    query = dict(app.current_event.query_string_parameters or {})
    return json_response(200, manager().list_rejections(owner, app_id, query))


@app.get("/api/apps/<app_id>/events/<event_id>")
def get_event(app_id: str, event_id: str) -> Response:
    return json_response(200, manager().get_event(_session().account_id, app_id, event_id))


# --- an event's state for the app's API key (no session): the replaced design's task
# status, for clients that hold only the key


@app.get("/api/logs/<app_id>/events/<event_id>")
def event_status(app_id: str, event_id: str) -> Response:
    api_key = api_key_from_headers(app.current_event.headers)
    return json_response(200, manager().event_status(app_id, api_key, event_id))


# --- stats (the raw query string: repeated parameters are refused, not comma-joined)


@app.get("/api/apps/<app_id>/stats")
def app_stats(app_id: str) -> Response:
    owner = _session().account_id
    given = query.parameters(app.current_event.raw_query_string or "", STATS_PARAMETERS)
    return json_response(200, manager().stats(owner, app_id, given))


@app.exception_handler(SluiceError)
def sluice_error(error: SluiceError) -> Response:
    return error_response(error)


@app.not_found
def route_not_found(_: Exception) -> Response:
    # Also every path under /api/ no other route serves (template.yaml: UnmatchedRoute).
    return json_response(
        404,
        {
            "error": "route_not_found",
            "message": "No such route; GET /api/openapi.json lists every route.",
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
