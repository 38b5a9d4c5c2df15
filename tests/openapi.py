"""The OpenAPI document as a test oracle: is this (route, status, body) one the document allows?

Handler tests, the fuzz and the e2e suite all check real answers through `Contract`,
so the document cannot claim a status or a shape the functions never give, nor
miss one they do give.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema_rs

from tests.support import REPO_ROOT

DOCUMENT = REPO_ROOT / "functions" / "manage" / "openapi.json"
METHODS = {"get", "put", "post", "patch", "delete"}


@cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text(encoding="utf-8"))


def operations() -> list[tuple[str, str]]:
    """Every (METHOD, path template) the document describes."""
    return [
        (method.upper(), path)
        for path, item in document()["paths"].items()
        for method in item
        if method in METHODS
    ]


def operation(method: str, route: str) -> dict[str, Any]:
    return document()["paths"][route][method.lower()]


def parameters(method: str, route: str) -> list[dict[str, Any]]:
    return [
        *document()["paths"][route].get("parameters", []),
        *operation(method, route).get("parameters", []),
    ]


def request_schema(method: str, route: str) -> dict[str, Any] | None:
    body = operation(method, route).get("requestBody")
    return body["content"]["application/json"]["schema"] if body else None


@cache
def _validator(method: str, route: str, status: int):
    response = operation(method, route)["responses"][str(status)]
    content = response.get("content")
    if content is None:
        return None  # a status without a body (204)
    # The response's schema with the document's components beside it, so its
    # "#/components/schemas/..." references resolve as they do in the document.
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": document()["components"],
        **content["application/json"]["schema"],
    }
    return jsonschema_rs.validator_for(schema, validate_formats=True)


@dataclass
class Contract:
    """Checks answers against the document and remembers which (route, status) it saw."""

    seen: set[tuple[str, str, int]] = field(default_factory=set)

    def check(self, method: str, route: str, status: int, body: str | bytes | None) -> Any:
        responses = operation(method, route)["responses"]
        assert str(status) in responses, (
            f"{method} {route} answered {status}, which the document does not list: {body!r}"
        )
        validator = _validator(method, route, status)
        if validator is None:
            assert not body, f"{method} {route} {status} has no body in the document: {body!r}"
            data = None
        else:
            data = json.loads(body or "")
            errors = [e.message for e in validator.iter_errors(data)]
            assert not errors, f"{method} {route} {status}: {errors} in {data!r}"
        self.seen.add((method, route, status))
        return data
