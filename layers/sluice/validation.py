"""An app's rules: one JSON Schema per event name, compiled once per cache period."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema_rs

from sluice.messages import ValidationIssue


class InvalidRule(ValueError):
    """A schema that is not a valid JSON Schema."""


def compile_rule(schema: Any) -> jsonschema_rs.Validator:
    """Draft 2020-12 unless the schema names another in `$schema`; formats are asserted."""
    try:
        if isinstance(schema, dict) and "$schema" in schema:
            return jsonschema_rs.validator_for(schema, validate_formats=True)
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    except (jsonschema_rs.ValidationError, ValueError, TypeError) as exc:
        raise InvalidRule(str(exc).splitlines()[0]) from None


def check_rule(schema: Any) -> None:
    """Raises InvalidRule unless `schema` is an object that compiles."""
    if not isinstance(schema, dict):
        raise InvalidRule("a rule must be a JSON Schema object")
    compile_rule(schema)


def json_pointer(path: list[str | int]) -> str:
    """RFC 6901: '' for the whole event, '/a/0' for its field a's first item."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _keyword(schema_path: list[str | int]) -> str:
    for part in reversed(schema_path):
        if isinstance(part, str):
            return part
    return ""


class RuleSet:
    """The compiled rules of one app."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self._validators: dict[str, jsonschema_rs.Validator] = {}
        # A rule that no longer compiles (written around sluice.admin, or by an older
        # validator) must not take the app's other event names down: it is skipped
        # and named here for the caller to log.
        self.broken: list[str] = []
        for name, schema in schemas.items():
            try:
                self._validators[name] = compile_rule(schema)
            except InvalidRule:
                self.broken.append(name)

    def __len__(self) -> int:
        return len(self._validators)

    def check(self, event_name: str, event: Any) -> list[ValidationIssue]:
        """Every way `event` breaks its rule; empty when it has none or keeps it."""
        validator = self._validators.get(event_name)
        if validator is None or validator.is_valid(event):
            return []
        return [
            ValidationIssue(
                path=json_pointer(error.instance_path),
                message=error.message,
                keyword=_keyword(error.schema_path),
            )
            for error in validator.iter_errors(event)
        ]
