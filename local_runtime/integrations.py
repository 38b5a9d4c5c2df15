"""API Gateway's integrations straight to SQS `SendMessage`, as API Gateway runs them.

Two shapes are common in SAM templates, both in an API's `DefinitionBody`:
- a REST API's `x-amazon-apigateway-integration` of type `aws` to
  `arn:aws:apigateway:<region>:sqs:path/<account>/<queue>`: a mapping template (VTL)
  chosen by the request's Content-Type renders a form body (`Action=SendMessage&
  MessageBody=...`), sent with the Content-Type the integration's request parameters
  set; SQS's answer comes back through the integration responses, whose `default`
  maps every status (SQS's errors too) to its own;
- an HTTP API's `integrationSubtype: SQS-SendMessage`: request parameters `QueueUrl`,
  `MessageBody` and friends, each a static value or a mapping expression
  (`$request.body`, `$request.header.<name>`, ...); SQS's answer is the response.

Only part of VTL is rendered here: `$input.body`, `$input.json('$')`,
`$context.requestId` and `$util.urlEncode(...)` of those. A template that uses
anything else is named at start as not run (see `unsupported_template`) rather than
rendered wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus

# SendMessage's parameters that the local queues take from a form or request parameters.
SEND_MESSAGE_PARAMETERS = (
    "MessageBody",
    "DelaySeconds",
    "MessageGroupId",
    "MessageDeduplicationId",
)
FORM = "application/x-www-form-urlencoded"

_REFERENCES = {
    "$input.body": lambda values: values.body,
    "$input.json('$')": lambda values: values.body_as_json(),
    '$input.json("$")': lambda values: values.body_as_json(),
    "$context.requestId": lambda values: values.request_id,
}
_URL_ENCODE = "$util.urlEncode("


class SqsRefused(Exception):
    """SQS answered SendMessage with an error (its code, message and HTTP status)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


# Sends a message to a queue of the template: (queue's logical id, SendMessage's
# parameters) -> SQS's result; raises SqsRefused.
Send = Callable[[str, dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class RequestValues:
    """What a mapping template or a mapping expression can read of the request."""

    body: str
    request_id: str
    headers: dict[str, str]  # lower-cased names
    query: dict[str, str]
    path: dict[str, str]

    def body_as_json(self) -> str:
        try:
            return json.dumps(json.loads(self.body), separators=(",", ":"), ensure_ascii=False)
        except ValueError:
            return self.body


def url_encode(text: str) -> str:
    """`$util.urlEncode`: Java's URLEncoder (spaces as +, `*` kept, `~` escaped)."""
    return quote_plus(text, safe="*").replace("~", "%7E")


def _tokens(template: str) -> list[tuple[str, str]]:
    """The template as ("text", literal) and ("ref", reference) pieces; ("bad", ...) if not ours."""
    pieces: list[tuple[str, str]] = []
    index = 0
    while index < len(template):
        dollar = template.find("$", index)
        hash_ = template.find("#", index)
        if hash_ != -1 and (dollar == -1 or hash_ < dollar):
            return [("bad", template[hash_ : hash_ + 20])]  # #set, #if, #foreach, ## ...
        if dollar == -1:
            pieces.append(("text", template[index:]))
            break
        pieces.append(("text", template[index:dollar]))
        rest = template[dollar:]
        if rest.startswith(_URL_ENCODE):
            inner = next((r for r in _REFERENCES if rest[len(_URL_ENCODE) :].startswith(r)), None)
            end = len(_URL_ENCODE) + len(inner) if inner else 0
            if inner is None or rest[end : end + 1] != ")":
                return [("bad", rest[:40])]
            pieces.append(("encoded", inner))
            index = dollar + end + 1
            continue
        reference = next((r for r in _REFERENCES if rest.startswith(r)), None)
        if reference is not None:
            pieces.append(("ref", reference))
            index = dollar + len(reference)
        elif re.match(r"\$[!{A-Za-z]", rest):
            return [("bad", rest[:40])]
        else:  # a lone $ is text in VTL
            pieces.append(("text", "$"))
            index = dollar + 1
    return pieces


def unsupported_template(template: str) -> str | None:
    """Why this mapping template cannot be rendered exactly here, or None when it can."""
    pieces = _tokens(template)
    bad = next((text for kind, text in pieces if kind == "bad"), None)
    if bad is not None:
        return f"its mapping template uses {bad.split()[0]!r}, which is not rendered locally"
    # Form keys written in the template itself: SendMessage's, and nothing else.
    literal = "".join(text if kind == "text" else "x" for kind, text in pieces)
    for key, _ in parse_qsl(literal, keep_blank_values=True):
        if key not in ("Action", "Version", *SEND_MESSAGE_PARAMETERS):
            return f"its mapping template sets {key}, which the local queues do not take"
    return None


def render(template: str, values: RequestValues) -> str:
    parts = []
    for kind, text in _tokens(template):
        if kind == "text":
            parts.append(text)
        elif kind == "ref":
            parts.append(_REFERENCES[text](values))
        else:
            parts.append(url_encode(_REFERENCES[text](values)))
    return "".join(parts)


def unsupported_expression(value: str) -> str | None:
    """Why an HTTP API request parameter cannot be mapped here, or None when it can."""
    if "$" not in value or _expression(value) is not None:
        return None
    return f"its request parameter {value!r} is not mapped locally"


def _expression(value: str) -> Callable[[RequestValues], str | None] | None:
    if value == "$request.body":
        return lambda values: values.body
    if value == "$context.requestId":
        return lambda values: values.request_id
    match = re.fullmatch(r"\$request\.(header|querystring|path)\.([\w-]+)", value)
    if match is None:
        return None
    source, name = match.groups()
    if source == "header":
        return lambda values: values.headers.get(name.lower())
    if source == "querystring":
        return lambda values: values.query.get(name)
    return lambda values: values.path.get(name)


def mapped(parameters: dict[str, str], values: RequestValues) -> dict[str, str]:
    """An HTTP API's request parameters for this request (missing values are left out)."""
    found = {}
    for name, value in parameters.items():
        expression = _expression(value)
        result = expression(values) if expression is not None else value
        if result is not None:
            found[name] = result
    return found


def form_parameters(body: str) -> dict[str, str]:
    """A form body as SQS's query protocol reads it (the last value of a repeated key)."""
    return dict(parse_qsl(body, keep_blank_values=True))


def send_message_response(result: dict[str, Any], request_id: str) -> bytes:
    """SQS's SendMessage answer in the JSON API Gateway passes back."""
    return json.dumps(
        {
            "SendMessageResponse": {
                "ResponseMetadata": {"RequestId": request_id},
                "SendMessageResult": {
                    "MD5OfMessageAttributes": None,
                    "MD5OfMessageBody": result.get("MD5OfMessageBody"),
                    "MD5OfMessageSystemAttributes": None,
                    "MessageId": result.get("MessageId"),
                    "SequenceNumber": result.get("SequenceNumber"),
                },
            }
        }
    ).encode()


def error_response(code: str, message: str, request_id: str) -> bytes:
    return json.dumps(
        {
            "Error": {"Code": code, "Message": message, "Type": "Sender"},
            "RequestId": request_id,
        }
    ).encode()


def integration_status(responses: tuple[tuple[str, int], ...], status: int) -> int | None:
    """A REST integration response's status for SQS's: the first pattern that matches,
    else `default`; None when nothing matches (API Gateway then answers 500)."""
    fallback = None
    for pattern, mapped_status in responses:
        if pattern == "default":
            fallback = mapped_status
        elif re.fullmatch(pattern, str(status)):
            return mapped_status
    return fallback
