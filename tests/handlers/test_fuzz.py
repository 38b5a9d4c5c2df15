"""Fuzzing every ingest route: hostile requests of every shape get a 4xx, never a 5xx.

Fixed seed, a few hundred cases per route, through the real handler as API
Gateway calls it (tests/e2e drives the same routes over real HTTP).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functions.ingest.app as ingest_app
from tests.handlers.test_properties import events, to_json
from tests.support import http_event, make_app

FUZZ_SETTINGS = settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_texts = st.one_of(
    events().map(to_json),
    st.lists(events(), max_size=5).map(lambda batch: "[" + ",".join(map(to_json, batch)) + "]"),
    st.lists(events(), max_size=3).map(lambda b: '{"events": [' + ",".join(map(to_json, b)) + "]}"),
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    # valid JSON with a few bytes broken: invalid UTF-8 and truncations inside events
    st.tuples(json_texts, st.binary(min_size=1, max_size=3), st.integers(0, 200)).map(
        lambda t: (lambda raw: raw[: t[2]] + t[1] + raw[t[2] :])(
            t[0].encode("utf-8", "surrogatepass")
        )
    ),
    st.sampled_from(
        [b"", b"null", b"[]", b"{}", b"[" * 5_000, b'{"events": 5}', b"\xef\xbb\xbf{}"]
    ),
)
header_values = st.one_of(
    st.text(max_size=40), st.sampled_from(["", " ", "Bearer", "Bearer  ", "Basic x"])
)


@pytest.fixture
def app_and_key(db):
    return make_app(db, rules={"e": {"type": "object", "properties": {"x": {"pattern": "^a+$"}}}})


def call(context, path: str, body: bytes, headers: dict, base64_body: bool, method: str = "POST"):
    event = http_event(path, body, headers=headers, method=method, base64_body=True)
    if not base64_body:
        # As text, bytes that are not UTF-8 reach the handler as lone surrogates.
        event["isBase64Encoded"] = False
        event["body"] = body.decode("utf-8", "surrogateescape")
    response = ingest_app.handler(event, context)
    return response["statusCode"], response["body"]


@st.composite
def requests(draw, key: str):
    headers = {
        "content-type": draw(
            st.sampled_from(
                [
                    "application/json",
                    "text/plain",
                    "application/octet-stream",
                    "",
                    "application/json; charset=latin-1",
                ]
            )
        )
    }
    credential = draw(st.sampled_from(["key", "x-api-key", "authorization", "none"]))
    if credential == "key":
        headers["x-api-key"] = key
    elif credential != "none":
        headers[credential] = draw(header_values)
    return draw(bodies), headers, draw(st.booleans())


@pytest.mark.parametrize("route", ["", "/batch"])
def test_no_request_to_an_ingest_route_gets_a_5xx(ingestor, app_and_key, context, route):
    app_id, key = app_and_key

    @FUZZ_SETTINGS
    @given(request=requests(key))
    def fuzz(request):
        body, headers, base64_body = request
        status, answer = call(context, f"/api/logs/{app_id}{route}", body, headers, base64_body)
        assert status < 500, answer
        assert "error" in json.loads(answer) or status == 202, answer

    fuzz()


def test_no_path_or_method_gets_a_5xx(ingestor, app_and_key, context):
    app_id, key = app_and_key

    @FUZZ_SETTINGS
    @given(
        path=st.one_of(
            st.text(max_size=30).map(lambda s: "/" + s),
            st.text(max_size=70).map(lambda s: f"/api/logs/{s}"),
            st.text(max_size=10).map(lambda s: f"/api/logs/{app_id}/{s}"),
        ),
        method=st.sampled_from(["POST", "GET", "PUT", "DELETE", "OPTIONS"]),
        body=bodies,
    )
    def fuzz(path, method, body):
        status, answer = call(context, path, body, {"x-api-key": key}, True, method)
        assert status < 500, answer

    fuzz()
