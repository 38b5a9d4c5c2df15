"""Issue 24, item 1: the password routes cannot take the account's Lambda concurrency.

Before any password is hashed, a request passes two limits that random addresses
cannot dodge: its source's count (register, sign-in and reset confirm together, counted
before the hash), and a slot among the function's hashing slots (half its reserved
concurrency). Each accounts service here is one execution environment (its own
connection); a hasher that waits at a gate holds a request inside its hash while
another environment asks.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
from sluice.accounts import accounts_data
from sluice.accounts.accounts import Accounts
from sluice.accounts.email_queue import EmailQueue
from sluice.accounts.limits import HASH_SLOT_LEASE, hash_slot_keys
from sluice.accounts.passwords import PasswordHasher, ScryptParameters
from sluice.core.db import Database
from sluice.core.errors import RateLimited

import functions.accounts.app as accounts_app
from tests.handlers.test_accounts import PASSWORD, call
from tests.openapi import Contract


class GatedHasher(PasswordHasher):
    """scrypt, but each hash waits at the gate once it has begun; counts the hashes."""

    def __init__(self, parameters: ScryptParameters) -> None:
        self.gate = threading.Event()
        self.gate.set()  # the dummy hash made at start goes through
        super().__init__(parameters)
        self.inside = threading.Event()
        self.hashes = 0

    def _wait(self) -> None:
        self.hashes += 1
        self.inside.set()
        assert self.gate.wait(20), "the test never opened the gate"

    def hash(self, password: str) -> str:
        if hasattr(self, "inside"):
            self._wait()
        return super().hash(password)

    def verify(self, password: str, stored: str | None) -> bool:
        self._wait()
        return super().verify(password, stored)


@pytest.fixture
def environment(accounts_settings, sqs, clock):
    """Makes accounts services (execution environments) on `settings` changed by `changes`."""
    made: list[Accounts] = []

    def make(**changes) -> Accounts:
        settings = replace(accounts_settings, **changes)
        hasher = GatedHasher(ScryptParameters(settings.scrypt_n, settings.scrypt_r))
        service = Accounts(
            settings,
            Database(settings.database),
            EmailQueue(sqs, settings.email_queue_url),
            clock,
            hasher,
        )
        made.append(service)
        return service

    yield make
    for service in made:
        service.hasher.gate.set()  # type: ignore[attr-defined]
        service.database.close()


def held_in_its_hash(service: Accounts, request) -> tuple[threading.Thread, list]:
    """Starts `request(service)` in a thread and returns once it is inside its hash."""
    service.hasher.gate.clear()  # type: ignore[attr-defined]
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(request(service)))
    thread.start()
    assert service.hasher.inside.wait(20)  # type: ignore[attr-defined]
    return thread, outcome


def serving(monkeypatch, service: Accounts) -> GatedHasher:
    monkeypatch.setattr(accounts_app, "accounts", lambda: service)
    return service.hasher  # type: ignore[return-value]


def test_a_source_is_counted_before_its_hash_so_a_burst_cannot_slip_past_it(
    db, environment, monkeypatch, context
):
    """Counted after the hash, every request of a burst passed the look before any of
    them was counted: a thousand at once from one machine all hashed."""
    first = environment(passwords_per_source_per_minute=1)
    second = serving(monkeypatch, environment(passwords_per_source_per_minute=1))
    thread, outcome = held_in_its_hash(
        first, lambda s: s.start_sign_in("a@example.com", PASSWORD, "198.51.100.1")
    )

    status, body, headers = call(
        context,
        "/api/accounts/sign-in",
        {"email": "b@example.com", "password": PASSWORD},
        source="198.51.100.1",
    )
    first.hasher.gate.set()  # type: ignore[attr-defined]
    thread.join(20)

    assert (status, body["error"]) == (429, "rate_limited")
    assert headers["Retry-After"] == "60"
    assert second.hashes == 0
    assert len(outcome) == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/accounts/register", {"email": "someone@example.com", "password": PASSWORD}),
        ("/api/accounts/sign-in", {"email": "someone@example.com", "password": PASSWORD}),
        (
            "/api/accounts/password-reset/confirm",
            {"token": "7d444840-9dc0-11d1-b245-5ffdce74fad2.x", "password": PASSWORD},
        ),
    ],
    ids=["register", "sign-in", "reset-confirm"],
)
def test_every_hashing_route_counts_against_its_source_and_random_addresses_do_not_help(
    db, environment, monkeypatch, context, clock, path, body
):
    hasher = serving(monkeypatch, environment())
    for n in range(10):
        kind = ("register", "sign-in")[n % 2]
        status, answer, _ = call(
            context,
            f"/api/accounts/{kind}",
            {"email": f"random-{n}@example.com", "password": PASSWORD},
            source="198.51.100.2",
        )
        assert status == 202, answer
        clock.advance(1)
    hashed = hasher.hashes

    status, answer, headers = call(context, path, body, source="198.51.100.2")
    elsewhere = call(context, path, body, source="198.51.100.3")

    assert (status, answer["error"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) == answer["retry_after"] >= 1
    assert "your network" in answer["message"]
    # Refused before the hash; another source is not held up.
    assert hasher.hashes == hashed + 1
    assert elsewhere[0] != 429


def test_at_most_half_the_reserved_concurrency_hashes_at_once(
    db, environment, monkeypatch, context
):
    busy = environment(reserved_concurrency=2)  # one hashing slot
    other = environment(reserved_concurrency=2)
    hasher = serving(monkeypatch, other)
    thread, outcome = held_in_its_hash(
        busy, lambda s: s.start_sign_in("a@example.com", PASSWORD, "198.51.100.4")
    )

    hashing = {
        "/api/accounts/register": {"email": "b@example.com", "password": PASSWORD},
        "/api/accounts/sign-in": {"email": "c@example.com", "password": PASSWORD},
        "/api/accounts/password-reset/confirm": {
            "token": "7d444840-9dc0-11d1-b245-5ffdce74fad2.x",
            "password": PASSWORD,
        },
    }
    refused = [call(context, path, body) for path, body in hashing.items()]
    # What hashes nothing is served meanwhile.
    reset = call(context, "/api/accounts/password-reset", {"email": "a@example.com"})
    busy.hasher.gate.set()  # type: ignore[attr-defined]
    thread.join(20)
    after = call(context, "/api/accounts/sign-in", {"email": "c@example.com", "password": PASSWORD})

    contract = Contract()
    for path, (status, body, headers) in zip(hashing, refused, strict=True):
        assert (status, body["error"], headers["Retry-After"]) == (429, "rate_limited", "1")
        contract.check("POST", path, status, json.dumps(body))  # as the document says
    assert hasher.hashes == 1  # only `after`'s
    assert reset[0] == 202
    assert len(outcome) == 1 and after[0] == 202


def test_a_hash_that_fails_frees_its_slot(db, environment, monkeypatch, context):
    service = environment(reserved_concurrency=2)
    serving(monkeypatch, service)

    def broken(password: str, stored: str | None) -> bool:
        raise MemoryError("scrypt could not allocate")

    monkeypatch.setattr(service.hasher, "verify", broken)
    with pytest.raises(MemoryError):
        service.start_sign_in("a@example.com", PASSWORD, "198.51.100.5")
    monkeypatch.undo()
    serving(monkeypatch, service)

    after = call(context, "/api/accounts/sign-in", {"email": "a@x.io", "password": PASSWORD})
    assert after[0] == 202


def test_a_slot_left_by_a_killed_invocation_is_free_again_after_the_lease(
    db, environment, monkeypatch, context, clock
):
    """An invocation killed at its timeout never gives its slot back: the lease does."""
    service = environment(reserved_concurrency=2)
    serving(monkeypatch, service)
    keys = hash_slot_keys(1)
    taken = service.database.run(
        lambda conn: accounts_data.take_hash_slot(conn, keys, clock.now(), HASH_SLOT_LEASE)
    )
    assert taken is not None

    before = call(context, "/api/accounts/sign-in", {"email": "a@x.io", "password": PASSWORD})
    clock.advance(HASH_SLOT_LEASE.total_seconds())
    after = call(context, "/api/accounts/sign-in", {"email": "a@x.io", "password": PASSWORD})

    assert before[0] == 429
    assert after[0] == 202


def test_the_slots_hold_for_a_request_without_a_source_too(db, environment):
    """A direct invoke (no API Gateway, so no sourceIp) still takes a slot."""
    busy = environment(reserved_concurrency=2)
    other = environment(reserved_concurrency=2)
    thread, _ = held_in_its_hash(busy, lambda s: s.start_sign_in("a@example.com", PASSWORD, None))
    with pytest.raises(RateLimited) as refused:
        other.register("b@example.com", PASSWORD)
    busy.hasher.gate.set()  # type: ignore[attr-defined]
    thread.join(20)

    assert refused.value.retry_after == 1
