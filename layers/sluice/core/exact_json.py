"""JSON out of PostgreSQL and into answers with every number exact: the one place.

jsonb keeps every digit of a number (numeric); Python's readers do not. psycopg2 reads
jsonb with json.loads (1e-400 becomes 0.0, 3.14159265358979323846 a double) and
orjson writes no integer past 64 bits (a TypeError: a 500). So a stored JSON value
that is served (a payload, its validation errors, a rule) is read as PostgreSQL
prints it (a cursor from `exact_cursor`) and written into the answer as that text.
That is exact, and cheaper than parsing it and writing it again.

What comes in is held to the same standard: a request body whose numbers orjson
cannot hold exactly is refused (`check_exact`), never saved altered.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
import psycopg2.extensions
import psycopg2.extras
from psycopg2.extensions import cursor as Cursor

from sluice.core.errors import RequestRejected


class JsonText:
    """A JSON value as its text, written into an answer as it is (`dumps`).

    A plain class: orjson writes a dataclass or a str subclass itself, never asking.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonText) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"JsonText({self.text!r})"


def exact_cursor(conn: psycopg2.extensions.connection) -> Cursor:
    """A cursor that reads json and jsonb columns as JsonText (SQL NULL stays None)."""
    cur = conn.cursor()
    # In Lambda, X-Ray's patch of psycopg2 makes the cursor a proxy, which psycopg2's
    # C code refuses: the readers go on the cursor it wraps, the queries through the
    # proxy (so they are still traced).
    wrapped = getattr(cur, "__wrapped__", cur)
    psycopg2.extras.register_default_jsonb(wrapped, loads=JsonText)
    psycopg2.extras.register_default_json(wrapped, loads=JsonText)
    return cur


def _fragment(value: Any) -> orjson.Fragment:
    if isinstance(value, JsonText):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    raise TypeError(type(value).__name__)


def dumps(value: Any) -> bytes:
    """`value` as JSON; JsonText goes in as the JSON it holds, a Decimal as its digits."""
    return orjson.dumps(value, default=_fragment)


def loads(text: str | bytes, parse_int: Callable[[str], Any] = int) -> Any:
    """A JSON value with every number kept: integers as `parse_int` makes them, the rest
    as Decimal."""
    # orjson took up to 1,024 levels; the standard library counts each level against
    # the interpreter's recursion limit, so give it room for the same depth.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 1_100)
    try:
        return json.loads(text, parse_float=Decimal, parse_int=parse_int)
    finally:
        sys.setrecursionlimit(limit)


# A number orjson may have turned into a double that is not what was sent has
# more than 15 significant digits (a run of 16 digits and points) or an exponent
# (a digit or point before an e); an integer past 64 bits has 19 digits or more.
# Strings that look alike only send a body down the slower, exact path. The body is
# mapped to three symbols and searched for those needles: 13x cheaper than a
# regular expression (make bench).
_NUMBER_SYMBOLS = bytes(
    ord("0") if chr(byte) in "0123456789." else ord("e") if chr(byte) in "eE" else ord(" ")
    for byte in range(256)
)


def may_lose_precision(body: bytes) -> bool:
    symbols = body.translate(_NUMBER_SYMBOLS)
    return b"0" * 16 in symbols or b"0e" in symbols


def check_exact(raw: bytes, parsed: Any) -> None:
    """Raises RequestRejected unless `parsed` (orjson's reading of `raw`) is `raw` exactly.

    orjson reads a number into a double, or an int of at most 64 bits; each must be
    the number that was sent, digit for digit (a double as the shortest text that
    reads back as it, which is what orjson and json.dumps write).
    """
    if not may_lose_precision(raw):
        return
    number = _first_inexact(loads(raw), parsed)
    if number is not None:
        raise RequestRejected(
            f"The number {number} cannot be kept exactly: send numbers that fit in 64 bits"
            " (integers) or in a double (others), as the events they are checked against"
            " are read.",
            code="inexact_number",
        )


def _first_inexact(sent: Any, parsed: Any) -> str | None:
    """The first number of `sent` (in document order) that `parsed` holds differently.

    A loop, not recursion: a body may nest up to orjson's 1,024 levels.
    """
    pending = [(sent, parsed)]
    while pending:
        value, held = pending.pop()
        if isinstance(value, dict) and isinstance(held, dict):
            pending.extend((item, held.get(key)) for key, item in reversed(value.items()))
        elif isinstance(value, list) and isinstance(held, list):
            pending.extend(zip(reversed(value), reversed(held), strict=True))
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            kept = Decimal(repr(held)) if isinstance(held, float) else held
            if kept != value:
                return str(value)
    return None
