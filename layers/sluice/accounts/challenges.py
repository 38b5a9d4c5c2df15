"""The secrets mailed to owners (6-digit codes, reset tokens) and the rules they live by.

A challenge is one row of email_challenges. The email function makes its secret with
`secrets`, stores only a hash and mails the plaintext; the accounts function checks
what the owner types against that hash. Plain Python: the rules are tested with a
ManualClock, no database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sluice.core.errors import ChallengeFailed

CODE_LIFETIME = timedelta(minutes=10)
TOKEN_LIFETIME = timedelta(minutes=30)
MAX_FAILED_TRIES = 5

KINDS = ("register", "sign_in", "password_reset")


def new_code() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(challenge_id: uuid.UUID, secret: str) -> bytes:
    """SHA-256 of the secret bound to its challenge.

    A fast hash is enough: a code lives 10 minutes and allows 5 tries, a token holds
    256 random bits. Binding the challenge id means one table of precomputed code
    hashes does not fit every row.
    """
    return hashlib.sha256(challenge_id.bytes + secret.encode("utf-8", "surrogatepass")).digest()


def reset_token(challenge_id: uuid.UUID, secret: str) -> str:
    """What a reset email carries: the challenge, so wrong tries can be counted, and the secret."""
    return f"{challenge_id}.{secret}"


def parse_reset_token(token: object) -> tuple[uuid.UUID, str]:
    if isinstance(token, str):
        challenge, _, secret = token.partition(".")
        try:
            return uuid.UUID(challenge), secret
        except ValueError:
            pass
    raise ChallengeFailed("The token is not one Sluice sent.", code="invalid_token")


def parse_challenge_id(raw: object) -> uuid.UUID:
    if isinstance(raw, str):
        try:
            return uuid.UUID(raw)
        except ValueError:
            pass
    raise ChallengeFailed("challenge_id is not one Sluice gave.", code="invalid_code")


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge_id: uuid.UUID
    kind: str
    email: str
    account_id: uuid.UUID | None
    password_hash: str | None
    secret_hash: bytes | None
    expires_at: datetime
    failed_tries: int
    used_at: datetime | None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What checking a secret found: accepted, or the error to answer; whether to count a try."""

    accepted: bool
    error: ChallengeFailed | None = None
    count_failure: bool = False
    exhausted: bool = False  # tried too often: dead, whatever is typed


def check_secret(
    challenge: Challenge | None, secret: object, now: datetime, *, token: bool
) -> Verdict:
    """Whether `secret` opens `challenge` now.

    A challenge with no secret (nothing was mailed: an unknown address, a wrong
    password) fails like a wrong code, counts the try and expires like any other, so
    nothing tells it apart. Its lifetime runs from the request (expires_at is set when
    the row is made), not from when the mail went out.
    """
    noun = "token" if token else "code"
    wrong = "invalid_token" if token else "invalid_code"
    if challenge is None:
        return Verdict(False, ChallengeFailed(f"The {noun} is wrong.", code=wrong))
    if challenge.used_at is not None:
        return Verdict(False, ChallengeFailed(f"The {noun} was already used.", code=f"{noun}_used"))
    if challenge.failed_tries >= MAX_FAILED_TRIES:
        return Verdict(
            False,
            ChallengeFailed(
                f"The {noun} was tried {MAX_FAILED_TRIES} times; ask for a new one.",
                code="too_many_attempts",
            ),
            exhausted=True,
        )
    if now >= challenge.expires_at:
        return Verdict(
            False,
            ChallengeFailed(f"The {noun} has expired; ask for a new one.", code=f"{noun}_expired"),
        )
    if not isinstance(secret, str) or challenge.secret_hash is None:
        return Verdict(False, ChallengeFailed(f"The {noun} is wrong.", code=wrong), True)
    if not hmac.compare_digest(secret_hash(challenge.challenge_id, secret), challenge.secret_hash):
        return Verdict(False, ChallengeFailed(f"The {noun} is wrong.", code=wrong), True)
    return Verdict(True)
