"""What SQS checks and computes for one message: allowed characters, size, attributes, MD5s."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from decimal import Decimal, InvalidOperation
from typing import Any

from local_queue import errors

# SQS accepts XML's characters only:
# #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF.
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INVALID_ASCII = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z0-9_\-.]{1,256}$")
MAX_ATTRIBUTES = 10


def check_characters(text: str) -> None:
    match = (_INVALID_ASCII if text.isascii() else _INVALID).search(text)
    if match:
        raise errors.invalid_message_contents(match.group())


def body_md5(body: str) -> str:
    return hashlib.md5(body.encode("utf-8", "surrogatepass"), usedforsecurity=False).hexdigest()


def _binary(value: dict[str, Any]) -> bytes:
    return base64.b64decode(value["BinaryValue"])


def attributes_md5(attributes: dict[str, dict[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: each attribute, sorted by name, length-prefixed."""
    md5 = hashlib.md5(usedforsecurity=False)

    def put(data: bytes) -> None:
        md5.update(struct.pack("!I", len(data)))
        md5.update(data)

    for name in sorted(attributes):
        value = attributes[name]
        put(name.encode())
        put(value["DataType"].encode())
        if "StringValue" in value:
            md5.update(b"\x01")
            put(value["StringValue"].encode())
        else:
            md5.update(b"\x02")
            put(_binary(value))
    return md5.hexdigest()


def check_attributes(attributes: dict[str, Any]) -> int:
    """Checks message attributes as SQS does; returns the bytes they add to the message size."""
    if not isinstance(attributes, dict):
        raise errors.invalid_parameter("MessageAttributes must be a map.")
    if len(attributes) > MAX_ATTRIBUTES:
        raise errors.invalid_parameter(
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum "
            f"[{MAX_ATTRIBUTES}]."
        )
    size = 0
    for name, value in attributes.items():
        if (
            not _ATTRIBUTE_NAME.match(name)
            or name.startswith((".", "AWS.", "Amazon."))
            or name.endswith(".")
            or ".." in name
        ):
            raise errors.invalid_parameter(
                f"The message attribute name '{name}' is invalid. "
                "Attribute name can contain A-Z, a-z, "
                "0-9, underscore (_), hyphen (-), and period (.) characters."
            )
        data_type = value.get("DataType") or ""
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise errors.invalid_parameter(
                f"The message attribute '{name}' has an invalid message attribute type, the set of "
                "supported type prefixes is Binary, Number, and String."
            )
        if value.get("StringListValues") or value.get("BinaryListValues"):
            raise errors.invalid_parameter(
                f"Message attribute list values in SendMessage operation are not supported. "
                f"Attribute '{name}'."
            )
        if base == "Binary":
            raw = value.get("BinaryValue")
            try:
                data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
            except binascii.Error:
                data = b""
            if not data or "StringValue" in value:
                raise errors.invalid_parameter(
                    f"The message attribute '{name}' with type 'Binary' must use field 'Binary'."
                )
            length = len(data)
        else:
            text = value.get("StringValue")
            if not isinstance(text, str) or not text or "BinaryValue" in value:
                raise errors.invalid_parameter(
                    f"The message attribute '{name}' with type '{base}' must use field 'String'."
                )
            check_characters(text)
            if base == "Number":
                try:
                    Decimal(text)
                except InvalidOperation:
                    raise errors.invalid_parameter(
                        f"Can't cast the value of message (user) attribute '{name}' to a number."
                    ) from None
            length = len(text.encode())
        size += len(name.encode()) + len(data_type.encode()) + length
    return size


def stored_attributes(attributes: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Only the fields SQS returns on receive (list values are not implemented by SQS)."""
    kept = {}
    for name, value in attributes.items():
        entry = {"DataType": value["DataType"]}
        if "StringValue" in value:
            entry["StringValue"] = value["StringValue"]
        else:
            entry["BinaryValue"] = value["BinaryValue"]
        kept[name] = entry
    return kept


def select_attributes(attributes: dict[str, Any], requested: list[str]) -> dict[str, Any]:
    """MessageAttributeNames: names, `All`, `.*`, or prefixes ending in `.*`."""
    if not attributes or not requested:
        return {}
    if "All" in requested or ".*" in requested:
        return attributes
    prefixes = tuple(name[:-1] for name in requested if name.endswith(".*"))
    names = set(requested)
    return {
        name: value
        for name, value in attributes.items()
        if name in names or (prefixes and name.startswith(prefixes))
    }
