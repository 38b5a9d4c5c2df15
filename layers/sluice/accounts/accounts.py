"""App owners' accounts: register, verify, sign in with a password and a mailed code, reset.

No answer tells whether an address has an account, by construction: register, sign-in
and reset each write one challenge row and queue one email request whatever the
address, run the same KDF, and answer the same. The email function decides later
what the request becomes (a code, a notice to the real owner, or nothing).

No request hashes a password before it passed two limits no choice of address dodges
(`_hashing`): its source's count, and one of the function's hashing slots.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sluice.accounts import accounts_data as data
from sluice.accounts import challenges, sessions
from sluice.accounts.challenges import CODE_LIFETIME, TOKEN_LIFETIME, Challenge
from sluice.accounts.email_queue import EmailQueue, EmailRequest
from sluice.accounts.limits import (
    HASH_SLOT_LEASE,
    Backoff,
    Window,
    hash_slot_keys,
    limit_key,
    seconds,
)
from sluice.accounts.passwords import (
    PasswordHasher,
    ScryptParameters,
    check_new_password,
    normalise_email,
    password_text,
)
from sluice.accounts.sessions import NewSession
from sluice.core.clock import Clock
from sluice.core.config import AccountsSettings
from sluice.core.db import Connection, Database
from sluice.core.errors import AlreadyRegistered, RateLimited, SluiceError, TooManyAttempts
from sluice.core.observability import logger

T = TypeVar("T")
# What a refusal says was too many, per kind of email.
_MAILS = {
    "register": "registrations mailed to this address",
    "password_reset": "password resets mailed to this address",
}


@dataclass(frozen=True, slots=True)
class Limit:
    """One rule over one key's recent requests; `what` names them in the refusal."""

    key: bytes
    rule: Window | Backoff
    what: str


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
        # Half the function's reserved concurrency hashes; the other half stays free to
        # answer everything else (refusals, codes, sessions) while the slots are full.
        self.hash_slots = hash_slot_keys(max(1, settings.reserved_concurrency // 2))

    # --------------------------------------------------------------- register
    def register(self, email: object, password: object, source: str | None = None) -> Queued:
        """`source` is the client's IP address (API Gateway's sourceIp), for its own limit."""
        address = normalise_email(email)
        chosen = check_new_password(password, address)
        limits = self._limits("register", address)
        self._refuse_if_limited(limits)
        with self._hashing(source):
            password_hash = self.hasher.hash(chosen)
        # Whether the address has an account is not looked at here: the email function
        # sends a code, or tells the owner someone tried, from this same row.
        return self._queue("register", address, CODE_LIFETIME, limits, password_hash=password_hash)

    def verify(self, challenge_id: object, code: object) -> uuid.UUID:
        """Opens the account a registration's code was for; its id."""
        challenge_key = challenges.parse_challenge_id(challenge_id)
        now = self.clock.now()

        def work(conn: Connection) -> uuid.UUID | SluiceError | None:
            challenge = data.lock_challenge(conn, challenge_key, "register")
            failure = self._check(conn, challenge, code, now, token=False)
            if failure is not None:
                return failure
            assert challenge is not None and challenge.password_hash is not None
            data.use_challenge(conn, challenge.challenge_id, now)
            return data.create_account(conn, challenge.email, challenge.password_hash, now)

        outcome = self.database.run(work)
        if isinstance(outcome, SluiceError):
            raise outcome
        if outcome is None:
            raise AlreadyRegistered(
                "This address already has an account: sign in, or reset its password."
            )
        return outcome

    # ---------------------------------------------------------------- sign in
    def start_sign_in(self, email: object, password: object, source: str | None = None) -> Queued:
        """`source` is the client's IP address (API Gateway's sourceIp), for its own limit."""
        address = normalise_email(email)
        given = password_text(password)
        limits = self._limits("sign_in", address)
        self._refuse_if_limited(limits)
        account = self.database.run(lambda conn: data.find_sign_in(conn, address))
        with self._hashing(source):
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

        return self._queue("sign_in", address, CODE_LIFETIME, limits, bind_account=bind)

    def finish_sign_in(self, challenge_id: object, code: object) -> NewSession:
        challenge_key = challenges.parse_challenge_id(challenge_id)
        now = self.clock.now()

        def work(conn: Connection) -> NewSession | SluiceError:
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
        # Its own limit: no number of sign-ins, right or wrong, ever stands in its way.
        limits = self._limits("password_reset", address)
        self._refuse_if_limited(limits)
        self._queue("password_reset", address, TOKEN_LIFETIME, limits)

    def confirm_reset(self, token: object, password: object, source: str | None = None) -> None:
        """Sets the new password and ends every pending challenge and session of the account.

        In this order, in one transaction: the account row first (a sign-in that checked
        the old password waits on it, then finds the hash changed), then the challenges
        (a code being verified holds its row's lock: its session is committed before
        this goes on, or it finds its challenge expired), then the sessions.
        """
        challenge_key, secret = challenges.parse_reset_token(token)
        chosen = check_new_password(password)
        with self._hashing(source):
            password_hash = self.hasher.hash(chosen)
        now = self.clock.now()

        def work(conn: Connection) -> SluiceError | None:
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
    def _check(
        self,
        conn: Connection,
        challenge: Challenge | None,
        secret: object,
        now: datetime,
        *,
        token: bool,
    ) -> SluiceError | None:
        verdict = challenges.check_secret(challenge, secret, now, token=token)
        if verdict.count_failure and challenge is not None:
            # Returned, not raised: the transaction must commit to keep the count.
            data.count_failed_try(conn, challenge.challenge_id)
        if verdict.exhausted and challenge is not None and verdict.error is not None:
            # A throttle like the others (429, Retry-After): when a new one may be asked for.
            wait = self._limited(
                self._limits(challenge.kind, challenge.email), self._read_times, conn, now
            )
            retry = wait.retry_after if wait is not None else 1
            return TooManyAttempts(
                f"{verdict.error.message} A new one may be asked for in {retry} s.",
                retry_after=retry,
            )
        return verdict.error

    @staticmethod
    def _raise_failure(outcome: T | SluiceError) -> T:
        if isinstance(outcome, SluiceError):
            raise outcome
        return outcome

    def _limits(self, kind: str, address: str) -> list[Limit]:
        """The limits a request of `kind` for `address` must pass.

        Each kind of email its own limit per address, so that one kind never blocks
        another: sign-in attempts, which anyone can make, never block a reset. Sign-in
        slows down per address rather than walling it off (a source is walled off
        before its hash, `_hashing`).
        """
        settings = self.settings
        if kind != "sign_in":
            window = Window(settings.sends_per_minute, settings.sends_per_hour)
            return [Limit(limit_key(kind, address), window, _MAILS[kind])]
        backoff = Backoff(
            settings.sign_ins_free_per_hour,
            timedelta(seconds=settings.sign_in_backoff_cap_seconds),
        )
        return [Limit(limit_key("sign_in", address), backoff, "sign-ins for this address")]

    @contextmanager
    def _hashing(self, source: str | None) -> Iterator[None]:
        """Admits one request to the KDF, or refuses it (429) before any hash.

        Two limits no choice of address dodges, in one transaction: the source's count
        over every hashing route (counted now, before the hash, so a burst from one
        machine cannot pass together), then a free hashing slot (so at most
        `hash_slots` hash at once in the whole function, however many machines ask). A
        request refused for want of a slot is not counted against its source: an owner
        retrying while a flood fills the slots keeps their own count. The slot is given
        back after the hash, or by its lease when the invocation was killed.
        """
        now = self.clock.now()
        source_limit = (
            Limit(
                limit_key("source", source),
                Window(
                    self.settings.passwords_per_source_per_minute,
                    self.settings.passwords_per_source_per_hour,
                ),
                "passwords from your network",
            )
            if source
            else None
        )

        def admit(conn: Connection) -> bytes | RateLimited:
            times: list[datetime] = []
            if source_limit is not None:

                def lock(conn: Connection, key: bytes) -> list[datetime]:
                    times.extend(data.lock_send_times(conn, key))
                    return times

                limited = self._limited([source_limit], lock, conn, now)
                if limited is not None:
                    return limited
            slot = data.take_hash_slot(conn, self.hash_slots, now, HASH_SLOT_LEASE)
            if slot is None:
                return RateLimited(
                    "Too many passwords are being checked right now; try again in 1 s.",
                    retry_after=1,
                )
            if source_limit is not None:
                kept = source_limit.rule.keep(times + [now], now)
                data.save_send_times(conn, source_limit.key, kept)
            return slot

        slot = self.database.run(admit)
        if isinstance(slot, RateLimited):
            raise slot
        try:
            yield
        finally:
            try:
                self.database.run(lambda conn: data.free_hash_slot(conn, slot, now))
            except Exception as exc:  # its lease frees it; the hash's outcome is the answer
                logger.warning("could not free a hashing slot", error=type(exc).__name__)

    @staticmethod
    def _read_times(conn: Connection, key: bytes) -> list[datetime]:
        return data.read_send_times(conn, key)

    @staticmethod
    def _limited(
        limits: list[Limit],
        times_of: Callable[[Connection, bytes], list[datetime]],
        conn: Connection,
        now: datetime,
    ) -> RateLimited | None:
        """The refusal with the longest wait among the limits, or None when all allow.

        Keys are read (or locked) in one order, so two requests never wait on each other.
        """
        waits = []
        for limit in sorted(limits, key=lambda limit: limit.key):
            wait = limit.rule.wait(times_of(conn, limit.key), now)
            if wait is not None:
                waits.append((wait, limit.what))
        if not waits:
            return None
        wait, what = max(waits)
        retry = seconds(wait)
        return RateLimited(f"Too many {what}; try again in {retry} s.", retry_after=retry)

    def _refuse_if_limited(self, limits: list[Limit]) -> None:
        """A cheap look before the KDF, so a limited request costs no hashing.

        `_queue` decides for good, under the rows' locks.
        """
        now = self.clock.now()
        limited = self.database.run(lambda conn: self._limited(limits, self._read_times, conn, now))
        if limited is not None:
            raise limited

    def _queue(
        self,
        kind: str,
        address: str,
        lifetime: timedelta,
        limits: list[Limit],
        *,
        password_hash: str | None = None,
        bind_account: Callable[[Connection], uuid.UUID | None] | None = None,
    ) -> Queued:
        """Counts the request against its limits, writes the challenge, commits, then queues.

        Queued after the commit, so the email function always finds the row. If SQS
        then refuses, the row and the counted request are taken back and the client is
        told to retry (503).
        """
        now = self.clock.now()

        def work(conn: Connection) -> uuid.UUID | RateLimited:
            times: dict[bytes, list[datetime]] = {}

            def lock(conn: Connection, key: bytes) -> list[datetime]:
                times[key] = data.lock_send_times(conn, key)
                return times[key]

            limited = self._limited(limits, lock, conn, now)
            if limited is not None:
                return limited
            for limit in limits:
                kept = limit.rule.keep(times[limit.key] + [now], now)
                data.save_send_times(conn, limit.key, kept)
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
            self._take_back([limit.key for limit in limits], challenge_id, now)
            raise
        return Queued(challenge_id=challenge_id)

    def _take_back(self, keys: list[bytes], challenge_id: uuid.UUID, at: datetime) -> None:
        def work(conn: Connection) -> None:
            for key in sorted(keys):
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
        Database(settings.database, settings.aws),
        EmailQueue(sqs_client, settings.email_queue_url),
        clock,
    )
