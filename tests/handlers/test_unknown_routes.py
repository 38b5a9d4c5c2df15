"""A path under /api/ that no route serves: `404 route_not_found`, from whichever function gets it.

In AWS the HTTP API's catch-all route (ANY /api/{proxy+}, template.yaml) sends any
other method and path to the manage function; ingest and accounts answer the same
for a path of theirs they do not serve. tests/e2e/test_manage.py checks the whole
way over real HTTP.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functions.accounts.app as accounts_app
import functions.ingest.app as ingest_app
import functions.manage.app as manage_app
from tests.openapi import document
from tests.support import http_event

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# First segments no documented route starts with.
segments = st.text(st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=12)
unknown_paths = st.tuples(
    segments.filter(lambda s: s not in ("logs", "accounts", "apps", "openapi.json")),
    st.lists(segments, max_size=4),
).map(lambda parts: "/api/" + "/".join([parts[0], *parts[1]]))


def answer(handler, context, method: str, path: str) -> tuple[int, dict]:
    event = http_event(path, b"{}", method=method)
    response = handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def route_not_found(status: int, body: dict) -> bool:
    return (
        status == 404
        and body["error"] == "route_not_found"
        and set(body)
        == {
            "error",
            "message",
        }
    )


@settings(
    derandomize=True,
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(method=st.sampled_from(METHODS), path=unknown_paths)
def test_the_catch_all_answers_route_not_found_for_any_unknown_path(context, method, path):
    # The catch-all's function needs no database for it: nothing is set up here.
    status, body = answer(manage_app.handler, context, method, path)
    assert route_not_found(status, body), (method, path, status, body)


@pytest.mark.parametrize(
    ("handler", "method", "path"),
    [
        (ingest_app.handler, "GET", "/api/logs/app_x"),
        (ingest_app.handler, "POST", "/api/logs/app_x/batch/more"),
        (accounts_app.handler, "GET", "/api/accounts/register"),
        (accounts_app.handler, "POST", "/api/accounts/nope"),
        (manage_app.handler, "PUT", "/api/apps"),
        (manage_app.handler, "GET", "/api/apps/app_x/keys/k/more"),
        (manage_app.handler, "POST", "/api/openapi.json"),
    ],
)
def test_each_http_function_answers_route_not_found_for_a_path_it_does_not_serve(
    context, handler, method, path
):
    assert route_not_found(*answer(handler, context, method, path))


def test_the_document_names_the_catch_all_and_its_answer():
    unmatched = document()["x-unmatched-routes"]
    assert unmatched["path"] == "/api/{proxy+}"
    body = unmatched["responses"]["404"]["content"]["application/json"]["schema"]
    assert body["properties"]["error"]["enum"] == ["route_not_found"]
