"""Passwords and addresses: what is accepted, and how a password is kept.

The KDF is scrypt from the standard library (no extra dependency, memory-hard). Its
parameters are stored with each hash, so they can be raised later: a hash made with
weaker ones still verifies, and is replaced at the next successful sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sluice.core.errors import RequestRejected

MIN_PASSWORD_LENGTH = 10
# Long enough for any passphrase or manager; bounds what one request makes the KDF read.
MAX_PASSWORD_LENGTH = 256
# zxcvbn refuses to look at more (its matching is quadratic); the rest adds strength.
_STRENGTH_PREFIX = 72
# zxcvbn's 0-4 scale: 3 is "safely unguessable" against an online attack with
# throttling and a slow hash offline. Its dictionaries hold the 30,000 commonest
# passwords from breaches, and it scores their variants (P@ssw0rd1) as low as the originals.
MIN_STRENGTH = 3

MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces or
# control characters (PostgreSQL cannot store NUL). Whether the mailbox exists is the
# verification code's job, not a pattern's.
_EMAIL = re.compile(r"[^\s@\x00-\x1f\x7f]+@[^\s@\x00-\x1f\x7f]+\.[^\s@\x00-\x1f\x7f.]+")


def normalise_email(raw: object) -> str:
    """The address as stored and compared: trimmed and lower-cased; 400 when it is not one."""
    if not isinstance(raw, str):
        raise RequestRejected("email must be a string.", code="invalid_email")
    email = raw.strip().lower()
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(email):
        raise RequestRejected("email is not an email address.", code="invalid_email")
    return email


def password_text(raw: object) -> str:
    """A password as given at sign-in: any string of a bounded length (no strength rule)."""
    if not isinstance(raw, str) or not raw:
        raise RequestRejected("password must be a non-empty string.", code="invalid_password")
    if len(raw) > MAX_PASSWORD_LENGTH:
        raise RequestRejected(
            f"password is longer than {MAX_PASSWORD_LENGTH} characters.", code="invalid_password"
        )
    return raw


def check_new_password(raw: object, email: str | None = None) -> str:
    """A password chosen at registration or reset: long enough and not a common one."""
    password = password_text(raw)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise RequestRejected(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters.", code="weak_password"
        )
    from zxcvbn import zxcvbn  # imported on first use: the sign-in path never needs it

    inputs = ["sluice"] + ([email, email.split("@")[0]] if email else [])
    verdict = zxcvbn(password[:_STRENGTH_PREFIX], user_inputs=inputs)
    if verdict["score"] < MIN_STRENGTH:
        hint = verdict["feedback"]["warning"] or "It is too easy to guess."
        raise RequestRejected(
            f"password is too easy to guess: {hint} Use a longer phrase of unrelated words.",
            code="weak_password",
        )
    return password


@dataclass(frozen=True, slots=True)
class ScryptParameters:
    # OWASP's recommendation for scrypt: n=2^17 (128 MiB), r=8, p=1.
    n: int = 2**17
    r: int = 8
    p: int = 1

    @property
    def memory(self) -> int:
        return 128 * self.n * self.r * self.p


_SCHEME = "scrypt"
_SALT_BYTES = 16
_KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class PasswordHasher:
    """scrypt with parameters chosen once per function (PASSWORD_SCRYPT_N and friends)."""

    def __init__(self, parameters: ScryptParameters | None = None) -> None:
        self.parameters = parameters or ScryptParameters()
        # Checked against when an address has no account, so a sign-in does the same
        # work whether or not it has one. Made at cold start, not on first use.
        self._dummy = self.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        salt = secrets.token_bytes(_SALT_BYTES)
        return self._format(self.parameters, salt, self._derive(password, salt, self.parameters))

    def verify(self, password: str, stored: str | None) -> bool:
        """Whether `password` matches `stored`; with no stored hash, runs the KDF anyway."""
        if stored is None:
            self._check(password, self._dummy)
            return False
        return self._check(password, stored)

    def needs_rehash(self, stored: str) -> bool:
        return _parse(stored)[0] != self.parameters

    def _check(self, password: str, stored: str) -> bool:
        parameters, salt, expected = _parse(stored)
        return hmac.compare_digest(self._derive(password, salt, parameters), expected)

    @staticmethod
    def _derive(password: str, salt: bytes, parameters: ScryptParameters) -> bytes:
        return hashlib.scrypt(
            password.encode("utf-8", "surrogatepass"),
            salt=salt,
            n=parameters.n,
            r=parameters.r,
            p=parameters.p,
            maxmem=parameters.memory + 16 * 1024 * 1024,
            dklen=_KEY_BYTES,
        )

    @staticmethod
    def _format(parameters: ScryptParameters, salt: bytes, key: bytes) -> str:
        return "$".join(
            (
                _SCHEME,
                str(parameters.n),
                str(parameters.r),
                str(parameters.p),
                _b64(salt),
                _b64(key),
            )
        )


def _parse(stored: str) -> tuple[ScryptParameters, bytes, bytes]:
    scheme, n, r, p, salt, key = stored.split("$")
    if scheme != _SCHEME:
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    return ScryptParameters(int(n), int(r), int(p)), base64.b64decode(salt), base64.b64decode(key)
