"""App owners' accounts: register, verify, sign in with a password and a mailed code, reset.

No answer tells whether an address has an account, by construction: register, sign-in
and reset each write one challenge row and queue one email request whatever the
address, run the same KDF, and answer the same. The email function decides later
what the request becomes (a code, a notice to the real owner, or nothing).
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sluice import accounts_data as data
from sluice import challenges, sessions
from sluice.challenges import CODE_LIFETIME, TOKEN_LIFETIME, Challenge, ChallengeFailed
from sluice.clock import Clock
from sluice.config import AccountsSettings
from sluice.db import Connection, Database
from sluice.email_queue import EmailQueue, EmailRequest
from sluice.errors import AlreadyRegistered, RateLimited
from sluice.observability import logger
from sluice.passwords import (
    PasswordHasher,
    ScryptParameters,
    check_new_password,
    normalise_email,
    password_text,
)
from sluice.sessions import NewSession

T = TypeVar("T")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# The longest a send counts against its address (the hourly limit). A rate-limit row
# with no send this recent limits nothing: the maintain function deletes it.
LIMIT_WINDOW = HOUR


def limit_key(email: str) -> bytes:
    """The rate-limit key of an address. One address per account, so it is the account's too."""
    return hashlib.sha256(b"address:" + email.encode()).digest()


def retry_after(sent: list[datetime], now: datetime, per_minute: int, per_hour: int) -> int | None:
    """Seconds until another send is allowed, or None when one is allowed now."""
    recent = sorted(t for t in sent if t > now - LIMIT_WINDOW)
    waits = []
    last_minute = [t for t in recent if t > now - MINUTE]
    if len(last_minute) >= per_minute:
        waits.append(last_minute[-per_minute] + MINUTE - now)
    if len(recent) >= per_hour:
        waits.append(recent[-per_hour] + HOUR - now)
    if not waits:
        return None
    return max(1, math.ceil(max(waits).total_seconds()))


@dataclass(frozen=True, slots=True)
class Queued:
    """The answer to register and sign-in: the same shape whatever the address."""

    challenge_id: uuid.UUID


class Accounts:
    def __init__(
        self,
        settings: AccountsSettings,
        database: Database,
        queue: EmailQueue,
        clock: Clock,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.queue = queue
        self.clock = clock
        self.hasher = hasher or PasswordHasher(
            ScryptParameters(settings.scrypt_n, settings.scrypt_r, settings.scrypt_p)
        )

    # --------------------------------------------------------------- register
    def register(self, email: object, password: object) -> Queued:
        address = normalise_email(email)
        chosen = check_new_password(password, address)
        self._refuse_if_limited(address)
        password_hash = self.hasher.hash(chosen)
        # Whether the address has an account is not looked at here: the email function
        # sends a code, or tells the owner someone tried, from this same row.
        return self._queue("register", address, CODE_LIFETIME, password_hash=password_hash)

    def verify(self, challenge_id: object, code: object) -> uuid.UUID:
        """Opens the account a registration's code was for; its id."""
        challenge_key = challenges.parse_challenge_id(challenge_id)
        now = self.clock.now()

        def work(conn: Connection) -> uuid.UUID | ChallengeFailed | None:
            challenge = data.lock_challenge(conn, challenge_key, "register")
            failure = self._check(conn, challenge, code, now, token=False)
            if failure is not None:
                return failure
            assert challenge is not None and challenge.password_hash is not None
            data.use_challenge(conn, challenge.challenge_id, now)
            return data.create_account(conn, challenge.email, challenge.password_hash, now)

        outcome = self.database.run(work)
        if isinstance(outcome, ChallengeFailed):
            raise outcome
        if outcome is None:
            raise AlreadyRegistered(
                "This address already has an account: sign in, or reset its password."
            )
        return outcome

    # ---------------------------------------------------------------- sign in
    def start_sign_in(self, email: object, password: object) -> Queued:
        address = normalise_email(email)
        given = password_text(password)
        self._refuse_if_limited(address)
        account = self.database.run(lambda conn: data.find_account(conn, address))
        # The KDF runs either way: against the account's hash or a dummy one.
        right = self.hasher.verify(given, account[1] if account else None)
        new_hash = None
        if account and right and self.hasher.needs_rehash(account[1]):
            new_hash = self.hasher.hash(given)

        def bind(conn: Connection) -> uuid.UUID | None:
            """The account the code will open, decided under the account row's lock.

            A password reset that committed since the check above changed the hash: the
            password checked opens nothing any more, and no code is sent.
            """
            if account is None or not right:
                return None
            if data.lock_password_hash(conn, account[0]) != account[1]:
                return None
            if new_hash is not None:
                data.set_password(conn, account[0], new_hash, self.clock.now())
            return account[0]

        return self._queue("sign_in", address, CODE_LIFETIME, bind_account=bind)

    def finish_sign_in(self, challenge_id: object, code: object) -> NewSession:
        challenge_key = challenges.parse_challenge_id(challenge_id)
        now = self.clock.now()

        def work(conn: Connection) -> NewSession | ChallengeFailed:
            challenge = data.lock_challenge(conn, challenge_key, "sign_in")
            failure = self._check(conn, challenge, code, now, token=False)
            if failure is not None:
                return failure
            assert challenge is not None and challenge.account_id is not None
            data.use_challenge(conn, challenge.challenge_id, now)
            return sessions.open_session(conn, challenge.account_id, now)

        return self._raise_failure(self.database.run(work))

    def sign_out(self, session: sessions.Session) -> None:
        now = self.clock.now()
        self.database.run(lambda conn: sessions.end_session(conn, session.session_id, now))

    def whoami(self, session: sessions.Session) -> dict:
        email = self.database.run(lambda conn: data.account_email(conn, session.account_id))
        return {
            "account_id": str(session.account_id),
            "email": email,
            "session_expires_at": session.expires_at.isoformat(),
        }

    # --------------------------------------------------------- password reset
    def request_reset(self, email: object) -> None:
        address = normalise_email(email)
        self._refuse_if_limited(address)
        self._queue("password_reset", address, TOKEN_LIFETIME)

    def confirm_reset(self, token: object, password: object) -> None:
        """Sets the new password and ends every pending challenge and session of the account.

        In this order, in one transaction: the account row first (a sign-in that checked
        the old password waits on it, then finds the hash changed), then the challenges
        (a code being verified holds its row's lock: its session is committed before
        this goes on, or it finds its challenge expired), then the sessions.
        """
        challenge_key, secret = challenges.parse_reset_token(token)
        chosen = check_new_password(password)
        password_hash = self.hasher.hash(chosen)
        now = self.clock.now()

        def work(conn: Connection) -> ChallengeFailed | None:
            challenge = data.lock_challenge(conn, challenge_key, "password_reset")
            failure = self._check(conn, challenge, secret, now, token=True)
            if failure is not None:
                return failure
            assert challenge is not None and challenge.account_id is not None
            data.use_challenge(conn, challenge.challenge_id, now)
            data.set_password(conn, challenge.account_id, password_hash, now)
            data.expire_pending_challenges(conn, challenge.email, now)
            sessions.end_all_sessions(conn, challenge.account_id, now)
            return None

        self._raise_failure(self.database.run(work))

    # ---------------------------------------------------------------- helpers
    @staticmethod
    def _check(
        conn: Connection, challenge: Challenge | None, secret: object, now: datetime, *, token: bool
    ) -> ChallengeFailed | None:
        verdict = challenges.check_secret(challenge, secret, now, token=token)
        if verdict.count_failure and challenge is not None:
            # Returned, not raised: the transaction must commit to keep the count.
            data.count_failed_try(conn, challenge.challenge_id)
        return verdict.error

    @staticmethod
    def _raise_failure(outcome: T | ChallengeFailed) -> T:
        if isinstance(outcome, ChallengeFailed):
            raise outcome
        return outcome

    def _limited(self, sent: list[datetime], now: datetime) -> RateLimited | None:
        wait = retry_after(sent, now, self.settings.sends_per_minute, self.settings.sends_per_hour)
        if wait is None:
            return None
        return RateLimited(
            f"Too many emails for this address; try again in {wait} s.", retry_after=wait
        )

    def _refuse_if_limited(self, address: str) -> None:
        """A cheap look before the KDF, so a limited request costs no hashing.

        `_queue` decides for good, under the row's lock.
        """
        sent = self.database.run(lambda conn: data.read_send_times(conn, limit_key(address)))
        limited = self._limited(sent, self.clock.now())
        if limited is not None:
            raise limited

    def _queue(
        self,
        kind: str,
        address: str,
        lifetime: timedelta,
        *,
        password_hash: str | None = None,
        bind_account: Callable[[Connection], uuid.UUID | None] | None = None,
    ) -> Queued:
        """Counts the send, writes the challenge, commits, then queues the request.

        Queued after the commit, so the email function always finds the row. If SQS
        then refuses, the row and the counted send are taken back and the client is
        told to retry (503).
        """
        now = self.clock.now()
        key = limit_key(address)

        def work(conn: Connection) -> uuid.UUID | RateLimited:
            sent = data.lock_send_times(conn, key)
            limited = self._limited(sent, now)
            if limited is not None:
                return limited
            recent = sorted(t for t in sent if t > now - LIMIT_WINDOW)
            data.save_send_times(conn, key, (recent + [now])[-self.settings.sends_per_hour :])
            return data.insert_challenge(
                conn,
                kind=kind,
                email=address,
                account_id=bind_account(conn) if bind_account else None,
                password_hash=password_hash,
                now=now,
                expires_at=now + lifetime,
            )

        challenge_id = self.database.run(work)
        if isinstance(challenge_id, RateLimited):
            raise challenge_id
        try:
            self.queue.send(EmailRequest(kind=kind, challenge_id=challenge_id))
        except Exception:
            self._take_back(key, challenge_id, now)
            raise
        return Queued(challenge_id=challenge_id)

    def _take_back(self, key: bytes, challenge_id: uuid.UUID, at: datetime) -> None:
        def work(conn: Connection) -> None:
            sent = data.lock_send_times(conn, key)
            if at in sent:
                sent.remove(at)
            data.save_send_times(conn, key, sent)
            data.delete_challenge(conn, challenge_id)

        try:
            self.database.run(work)
        except Exception as exc:  # the queue's error is the one to answer with
            logger.warning("could not take back an unqueued challenge", error=type(exc).__name__)


def build_accounts(settings: AccountsSettings, sqs_client: object, clock: Clock) -> Accounts:
    return Accounts(
        settings,
        Database(settings.database),
        EmailQueue(sqs_client, settings.email_queue_url),
        clock,
    )
