"""Requests to events and results to responses, without a server: routing and payload 1.0."""

from __future__ import annotations

import base64

import pytest

from local_runtime.api import CompiledRoute, Request, response_from_result, rest_api_event
from local_runtime.template import Route


def _request(path: str = "/items/7", query: str = "", body: bytes = b"") -> Request:
    return Request(
        method="GET",
        raw_path=path,
        raw_query=query,
        headers=[("Accept", "a"), ("Accept", "b"), ("Content-Type", "application/json")],
        body=body,
        source_ip="127.0.0.1",
        protocol="HTTP/1.1",
    )


def _route(path: str, method: str = "GET") -> Route:
    return Route(method, path, "Fn", "1.0", "Api", "Api")


def test_the_most_specific_route_wins():
    routes = sorted(
        (
            CompiledRoute(_route(p, m))
            for p, m in [
                ("/{proxy+}", "ANY"),
                ("/items/{id}", "ANY"),
                ("/items/{id}", "GET"),
                ("/items/special", "GET"),
            ]
        ),
        key=lambda c: c.rank,
    )

    def winner(path: str, method: str = "GET") -> str:
        route = next(c.route for c in routes if c.match(method, path) is not None)
        return f"{route.method} {route.path}"

    assert winner("/items/special") == "GET /items/special"
    assert winner("/items/7") == "GET /items/{id}"
    assert winner("/items/7", "DELETE") == "ANY /items/{id}"
    assert winner("/other/deep/path") == "ANY /{proxy+}"


def test_a_rest_api_event_keeps_every_value_of_repeated_names():
    event = rest_api_event(_request(query="a=1&a=2"), _route("/items/{id}"), {"id": "7"}, 3000)

    assert event["resource"] == "/items/{id}"
    assert event["httpMethod"] == "GET"
    assert event["multiValueHeaders"]["Accept"] == ["a", "b"]
    assert event["queryStringParameters"] == {"a": "2"}  # the last, as API Gateway does
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert event["pathParameters"] == {"id": "7"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("result", "version", "status", "body"),
    [
        ({"statusCode": 201, "body": "made"}, "1.0", 201, b"made"),
        (
            {
                "statusCode": 200,
                "body": base64.b64encode(b"\x00").decode(),
                "isBase64Encoded": True,
            },
            "2.0",
            200,
            b"\x00",
        ),
        ({"hello": "world"}, "2.0", 200, b'{"hello": "world"}'),
        ("just text", "2.0", 200, b"just text"),
        ({"hello": "world"}, "1.0", 502, b'{"message": "Internal Server Error"}'),
        ({"statusCode": "nope"}, "2.0", 500, b'{"message": "Internal Server Error"}'),
    ],
)
def test_results_become_responses_as_api_gateway_reads_them(result, version, status, body):
    response = response_from_result(result, version)

    assert (response.status, response.body) == (status, body)
