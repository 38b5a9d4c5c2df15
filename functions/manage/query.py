"""The raw query string read strictly, for the routes that take one parameter once."""

from __future__ import annotations

from urllib.parse import parse_qsl

from sluice.core.errors import RequestRejected


def parameters(raw_query: str, known: tuple[str, ...]) -> dict[str, str]:
    """Each parameter once, decoded strictly as UTF-8.

    Read from the raw query string: API Gateway joins a repeated parameter's values
    with commas in queryStringParameters and decodes broken percent-escapes leniently.
    """
    try:
        pairs = parse_qsl(raw_query, keep_blank_values=True, errors="strict")
        for name, value in pairs:
            # Unescaped text passes parse_qsl as it came, lone surrogates and all.
            name.encode("utf-8")
            value.encode("utf-8")
    except (UnicodeError, ValueError):
        raise RequestRejected(
            "The query string is not percent-encoded UTF-8.", code="invalid_query"
        ) from None
    names = [name for name, _ in pairs]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise RequestRejected(
            f"Unknown query parameters: {', '.join(map(repr, unknown))};"
            f" this route takes {', '.join(known)}.",
            code="invalid_query",
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RequestRejected(
            f"Give each parameter once: {', '.join(repeated)} is repeated.", code="invalid_query"
        )
    return dict(pairs)
