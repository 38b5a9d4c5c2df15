"""What checking one event against its rule costs: a typical rule, the hostile
pattern of issue 9 before and after the linear-time engine, and the most errors
an event of the maximum size can bring."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import orjson
from sluice.intake.validation import ErrorBudget, InvalidRule, RuleSet, check_rule

from benchmarks.environment import TYPICAL_RULE, BenchEnvironment, typical_event

HOSTILE_PATTERN = "^(?:(?!-)[a-z0-9]+)+$"
HOSTILE_EVENT: list[str] = ["a" * 16 + "-"] * 300  # 5.7 KB of JSON


def _per_call(work: Callable[[], Any], calls: int, rounds: int) -> float:
    """Seconds per call, median of rounds."""
    figures = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            work()
        figures.append((time.perf_counter() - start) / calls)
    return statistics.median(figures)


def run(env: BenchEnvironment, *, quick: bool = False) -> None:
    rounds = 3 if quick else 7
    rules = RuleSet({"user_login": TYPICAL_RULE})
    valid = typical_event(1)
    invalid = {**valid, "userId": "one", "method": "pigeon"}
    valid_us = _per_call(lambda: rules.check("user_login", valid), 20_000, rounds) * 1e6
    invalid_us = _per_call(lambda: rules.check("user_login", invalid), 20_000, rounds) * 1e6

    # Before: the default engine (fancy-regex) backtracks on lookaround, per string.
    before = jsonschema_rs.Draft202012Validator(
        {"items": {"pattern": HOSTILE_PATTERN}}, validate_formats=True
    )
    before_ms = _per_call(lambda: list(before.iter_errors(HOSTILE_EVENT)), 1, 1) * 1e3
    try:
        check_rule({"items": {"pattern": HOSTILE_PATTERN}})
        refusal = "ACCEPTED (regression)"
    except InvalidRule:
        refusal = "refused when saved"
    linear = RuleSet({"e": {"items": {"pattern": "^(?:[a-z0-9]+)+$"}}})
    linear_ms = _per_call(lambda: linear.check("e", HOSTILE_EVENT), 50, rounds) * 1e3

    # The most errors per byte: an array of zeros against items of type string.
    max_bytes = 32 * 1024  # MAX_EVENT_BYTES's default
    zeros = {"eventName": "e", "n": [0] * ((max_bytes - 30) // 2)}
    many = RuleSet({"e": {"properties": {"n": {"items": {"type": "string"}}}}})
    text = orjson.dumps(zeros).decode()
    many_ms = (
        _per_call(lambda: many.check("e", zeros, text=text, budget=ErrorBudget()), 20, rounds) * 1e3
    )
    listed_ms = _per_call(lambda: many.check("e", zeros), 3, rounds) * 1e3

    print("4. Rule cost per event (RuleSet.check, median of rounds)")
    print(f"   typical rule, valid event:    {valid_us:8.2f} us")
    print(f"   typical rule, 2 errors:       {invalid_us:8.2f} us")
    print(f"   lookaround pattern, 300 strings, backtracking engine (before): {before_ms:8.1f} ms")
    print(f"   the same rule now:            {refusal}")
    print(f"   its linear rewrite, 300 strings: {linear_ms:8.3f} ms")
    print(
        f"   {max_bytes // 1024} KiB event, {len(zeros['n'])} failing items, first error only"
        f" (as ingest checks it): {many_ms:6.3f} ms"
    )
    print(f"   the same with every error listed (10 kept, the rest counted): {listed_ms:6.1f} ms")
