"""API keys: how they are made, carried and stored.

A key is `sk_` + 8 visible characters + `_` + 32 secret ones, about 190 random
bits in all. With that much entropy a single SHA-256 is the right hash: a slow
password hash protects guessable secrets and would cost every request
milliseconds, while nobody can search a 2^190 space however fast the hash is.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sluice.core.errors import Unauthorized

KEY_SCHEME = "sk_"
_PREFIX_LENGTH = 8
_SECRET_LENGTH = 32
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True, slots=True)
class NewApiKey:
    plaintext: str  # shown once, to its owner, never stored
    prefix: str
    key_hash: bytes


def _random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_api_key() -> NewApiKey:
    prefix = KEY_SCHEME + _random_text(_PREFIX_LENGTH)
    plaintext = f"{prefix}_{_random_text(_SECRET_LENGTH)}"
    return NewApiKey(plaintext=plaintext, prefix=prefix, key_hash=hash_api_key(plaintext))


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def unauthorized() -> Unauthorized:
    """The answer to any key that does not open the app (ingest, and the key's event lookup).

    One answer for a missing, wrong, revoked or foreign key: which one it was would
    tell a prober what to try next.
    """
    return Unauthorized(
        "A valid API key for this app is required, in X-Api-Key or Authorization: Bearer."
    )


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The key from `X-Api-Key` or `Authorization: Bearer <key>`; header names lower-cased.

    None only when neither header is sent. Credentials that are sent but cannot be
    a key (a blank X-Api-Key, another Authorization scheme) are refused rather
    than ignored, even by a keyless app: whoever sent them meant to authenticate,
    and should learn that it did not work.
    """
    if "x-api-key" in headers:
        key = headers["x-api-key"].strip()
        if not key:
            raise Unauthorized("X-Api-Key is empty; send the app's API key in it.")
        return key
    if "authorization" in headers:
        scheme, _, credentials = headers["authorization"].strip().partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise Unauthorized("Authorization must be 'Bearer <API key>'.")
        return credentials.strip()
    return None
