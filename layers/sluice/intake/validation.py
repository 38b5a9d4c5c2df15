"""An app's rules: one JSON Schema per event name, compiled once per cache period.

What checking an event may cost is bounded, whatever rule its app saved:
- patterns run on a linear-time engine (the `regex` crate: no lookaround, no
  backreferences); a rule that needs more is refused when saved;
- a rule fetches nothing: a `$ref` to anything outside the rule itself (http, file,
  any URI) makes it fail to compile. The standard meta-schemas are built in;
- a verdict keeps at most MAX_ISSUES issues, each cut to a bounded length, and
  counts the rest, so what is queued and answered for one event has a ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any

import jsonschema_rs

from sluice.queued_events import ValidationIssue

MAX_ISSUES = 10
# How many values may have every error listed: in one event, and in one request.
# Past either, events are checked up to their first error (RuleSet.check), which
# bounds what listing errors can cost a request to about 40 ms.
MAX_LISTED_VALUES_PER_EVENT = 1_000
MAX_LISTED_VALUES_PER_REQUEST = 10_000


class ErrorBudget:
    """Which events of one request may have every error listed."""

    def __init__(self) -> None:
        self._left = MAX_LISTED_VALUES_PER_REQUEST

    def list_all(self, event_text: str) -> bool:
        # Every value but the first follows a comma: a bound (commas inside strings
        # only raise it) that costs one pass in C.
        values = event_text.count(",") + 1
        if values > MAX_LISTED_VALUES_PER_EVENT or values > self._left:
            return False
        self._left -= values
        return True


# Messages quote the failing value, and paths are made of the event's own keys:
# both are as long as the client likes until cut.
MAX_MESSAGE_CHARS = 200
MAX_PATH_CHARS = 200
MAX_KEYWORD_CHARS = 64

# The issue that stands for the ones not kept, last in the stored list: it keeps
# validation_errors a plain list of {path, message, keyword}. No JSON Schema
# keyword has this name.
OMITTED_KEYWORD = "omitted"
# The one issue of an event whose rule exists but cannot be compiled (saved before
# the checks below, or by an older validator).
UNUSABLE_RULE_KEYWORD = "rule"


class InvalidRule(ValueError):
    """A schema Sluice will not run: not a valid JSON Schema, or outside its limits."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an event fares against its rule: the first issues found, and how many more."""

    issues: tuple[ValidationIssue, ...] = ()
    omitted: int = 0
    # False when only the first issue was looked for (see RuleSet.check): the
    # event may have more, uncounted.
    counted: bool = True

    @property
    def valid(self) -> bool:
        return not self.issues

    def stored(self) -> list[ValidationIssue] | None:
        """The issues as queued and stored; a last issue counts those not kept."""
        if not self.issues:
            return None
        if not self.counted:
            more = ValidationIssue(
                path="",
                message="the event has too many values for every error to be looked for;"
                " only the first was",
                keyword=OMITTED_KEYWORD,
            )
            return [*self.issues, more]
        if not self.omitted:
            return list(self.issues)
        more = ValidationIssue(
            path="",
            message=f"{self.omitted} more errors were found and not kept",
            keyword=OMITTED_KEYWORD,
        )
        return [*self.issues, more]


VALID = Verdict()
UNUSABLE_RULE = Verdict(
    (
        ValidationIssue(
            path="",
            message=(
                "The app's rule for this event name cannot be applied (it does not compile);"
                " events are stored as invalid until the rule is saved again."
            ),
            keyword=UNUSABLE_RULE_KEYWORD,
        ),
    )
)


class _RefusingRetriever:
    """Refuses every external resource, and remembers which was asked for."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, uri: str) -> Any:
        self.refused = self.refused or uri
        raise LookupError(f"Sluice does not fetch {uri}")


def compile_rule(schema: Any) -> jsonschema_rs.Validator:
    """Draft 2020-12 unless the schema names another in `$schema`; formats are asserted."""
    retriever = _RefusingRetriever()
    options: dict[str, Any] = {
        "validate_formats": True,
        "retriever": retriever,
        # The `regex` crate matches in time linear in the input. The default
        # (fancy-regex) backtracks once a pattern has lookaround: 20-65 ms a string,
        # seconds for an event holding a few hundred of them.
        "pattern_options": jsonschema_rs.RegexOptions(),
    }
    try:
        if isinstance(schema, dict) and "$schema" in schema:
            return jsonschema_rs.validator_for(schema, **options)
        return jsonschema_rs.Draft202012Validator(schema, **options)
    except jsonschema_rs.ValidationError as exc:
        raise InvalidRule(_explain(exc, retriever.refused)) from None
    except (ValueError, TypeError) as exc:
        raise InvalidRule(str(exc).splitlines()[0]) from None


def _explain(exc: jsonschema_rs.ValidationError, refused: str | None) -> str:
    if refused is not None:
        return (
            f"a rule may not refer to {refused!r}: Sluice fetches nothing a rule names."
            " Put shared parts under $defs and refer to them as #/$defs/..."
        )
    kind = exc.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "regex":
        where = json_pointer(list(exc.instance_path))
        if _is_ecma_regex(exc.instance):
            return (
                f"the pattern {exc.instance!r} at {where} uses lookaround or a backreference,"
                " which is not supported: patterns run on a linear-time engine."
                " Rewrite it without (?=, (?!, (?<=, (?<! and \\1"
            )
        return f"the pattern {exc.instance!r} at {where} is not a valid regular expression"
    return exc.message.splitlines()[0]


def _is_ecma_regex(pattern: Any) -> bool:
    """Whether the backtracking engine, which knows lookaround, would take the pattern."""
    try:
        jsonschema_rs.Draft202012Validator(
            {"pattern": pattern}, pattern_options=jsonschema_rs.FancyRegexOptions()
        )
    except (jsonschema_rs.ValidationError, ValueError, TypeError):
        return False
    return True


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


def _cut(text: str, limit: int) -> str:
    if "\ufffe" in text or "\uffff" in text:
        # A message may quote the rule, which may hold characters SQS refuses: the
        # event is fine, so its issue must not keep it from being queued.
        text = text.replace("\ufffe", "\ufffd").replace("\uffff", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _issue(error: jsonschema_rs.ValidationError) -> ValidationIssue:
    return ValidationIssue(
        path=_cut(json_pointer(error.instance_path), MAX_PATH_CHARS),
        message=_cut(error.message, MAX_MESSAGE_CHARS),
        keyword=_cut(_keyword(error.schema_path), MAX_KEYWORD_CHARS),
    )


class RuleSet:
    """The compiled rules of one app."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        # None for a rule that no longer compiles: its events are judged invalid
        # (never waved through), and the app's other event names keep working.
        self._validators: dict[str, jsonschema_rs.Validator | None] = {}
        self.broken: list[str] = []  # for the caller to log
        for name, schema in schemas.items():
            try:
                self._validators[name] = compile_rule(schema)
            except InvalidRule:
                self._validators[name] = None
                self.broken.append(name)

    def __len__(self) -> int:
        return len(self._validators)

    def __contains__(self, event_name: object) -> bool:
        return event_name in self._validators

    def check(
        self, event_name: str, event: Any, *, text: str = "", budget: ErrorBudget | None = None
    ) -> Verdict:
        """How `event` fares against its rule; VALID when it has none or keeps it.

        Given the event's JSON `text` and its request's `budget`, an event the budget
        does not cover is checked up to its first error only: the binding builds
        every error before the first can be read, about 4 us each, and a 32 KiB event
        can hold 16,000 failing values (65-190 ms to list them).
        """
        if event_name not in self._validators:
            return VALID
        validator = self._validators[event_name]
        if validator is None:
            return UNUSABLE_RULE
        if budget is not None and not budget.list_all(text):
            try:
                validator.validate(event)  # stops at the first error
            except jsonschema_rs.ValidationError as error:
                return Verdict((_issue(error),), counted=False)
            return VALID
        # One pass, no is_valid first: on a valid event iter_errors costs about as
        # much (0.8 against 0.5 us), and an invalid event is not evaluated twice.
        # The binding gathers every error before the first is read, so stopping
        # early would save little: the rest are counted, only the kept become issues.
        errors = validator.iter_errors(event)
        kept = tuple(_issue(error) for error in islice(errors, MAX_ISSUES))
        if not kept:
            return VALID
        return Verdict(kept, sum(1 for _ in errors))
