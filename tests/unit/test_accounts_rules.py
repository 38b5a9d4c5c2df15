"""The accounts' rules as plain Python: codes, tries and expiry, limits, passwords."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sluice.accounts.challenges import (
    CODE_LIFETIME,
    MAX_FAILED_TRIES,
    Challenge,
    check_secret,
    new_code,
    parse_reset_token,
    reset_token,
    secret_hash,
)
from sluice.accounts.limits import LIMIT_WINDOW, Backoff, Window, seconds
from sluice.accounts.passwords import (
    PasswordHasher,
    ScryptParameters,
    check_new_password,
    normalise_email,
)
from sluice.core.clock import ManualClock
from sluice.core.errors import ChallengeFailed, RequestRejected

CHEAP = ScryptParameters(n=2**10, r=8, p=1)


def challenge(clock: ManualClock, code: str | None, *, tries: int = 0, used: bool = False):
    challenge_id = uuid.uuid4()
    return Challenge(
        challenge_id=challenge_id,
        kind="sign_in",
        email="a@example.com",
        account_id=uuid.uuid4(),
        password_hash=None,
        secret_hash=secret_hash(challenge_id, code) if code else None,
        expires_at=clock.now() + CODE_LIFETIME,
        failed_tries=tries,
        used_at=clock.now() if used else None,
    )


def error(verdict) -> str | None:
    return verdict.error.code if verdict.error else None


def test_the_right_code_opens_its_challenge_until_it_expires():
    clock = ManualClock()
    code = new_code()
    opened = challenge(clock, code)

    assert check_secret(opened, code, clock.now(), token=False).accepted
    clock.advance(CODE_LIFETIME.total_seconds() - 1)
    assert check_secret(opened, code, clock.now(), token=False).accepted
    clock.advance(1)
    assert error(check_secret(opened, code, clock.now(), token=False)) == "code_expired"


def test_a_wrong_code_counts_a_try_and_the_fifth_ends_it():
    clock = ManualClock()
    wrong = check_secret(challenge(clock, "123456"), "654321", clock.now(), token=False)
    spent = challenge(clock, "123456", tries=MAX_FAILED_TRIES)

    assert (error(wrong), wrong.count_failure) == ("invalid_code", True)
    assert error(check_secret(spent, "123456", clock.now(), token=False)) == "too_many_attempts"


def test_a_challenge_nothing_was_mailed_for_fails_and_ages_like_any_other():
    clock = ManualClock()
    silent = challenge(clock, None)

    verdict = check_secret(silent, "123456", clock.now(), token=False)
    assert (error(verdict), verdict.count_failure) == ("invalid_code", True)
    clock.advance(CODE_LIFETIME.total_seconds())
    assert error(check_secret(silent, "123456", clock.now(), token=False)) == "code_expired"


def test_codes_are_six_digits_and_tokens_name_their_challenge():
    assert all(len(c) == 6 and c.isdigit() for c in (new_code() for _ in range(200)))
    challenge_id = uuid.uuid4()
    assert parse_reset_token(reset_token(challenge_id, "s3cret")) == (challenge_id, "s3cret")
    for bad in (None, 5, "", "no-dot", "not-a-uuid.secret"):
        with pytest.raises(ChallengeFailed):
            parse_reset_token(bad)


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def retry_after(sent, now, per_minute, per_hour):
    wait = Window(per_minute, per_hour).wait(sent, now)
    return None if wait is None else seconds(wait)


@pytest.mark.parametrize(
    ("sent_seconds_ago", "now_wait"),
    [
        ([], None),
        ([61], None),
        ([20], 40),  # one a minute
        ([3599, 3000, 2000, 1000, 100], 1),  # five an hour: the oldest leaves in 1 s
        ([3601, 3000, 2000, 1000, 100], None),
    ],
)
def test_retry_after(sent_seconds_ago, now_wait):
    sent = [T0 - timedelta(seconds=s) for s in sent_seconds_ago]
    assert retry_after(sent, T0, per_minute=1, per_hour=5) == now_wait


BACKOFF = Backoff(free=5, cap=timedelta(seconds=60))


@pytest.mark.parametrize(
    ("tried_seconds_ago", "wait"),
    [
        ([], None),
        ([0, 0, 0, 0], None),  # free ones wait for nothing
        ([10, 10, 10, 10, 10], None),  # the sixth: 1 s after the fifth
        ([0.5, 10, 10, 10, 10], 0.5),
        ([1, 2, 3, 4, 5, 6], 1),  # the seventh: 2 s after the sixth
        ([0] * 40, 60),  # never more than the cap
        ([3601] * 40 + [0], None),  # only the last hour counts
    ],
)
def test_backoff(tried_seconds_ago, wait):
    tried = [T0 - timedelta(seconds=s) for s in tried_seconds_ago]
    expected = None if wait is None else timedelta(seconds=wait)
    assert BACKOFF.wait(tried, T0) == expected


@given(
    tried=st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2))),
    free=st.integers(1, 10),
    cap=st.integers(1, 600),
)
def test_a_backoff_never_waits_longer_than_its_cap_and_keeps_what_it_needs(tried, free, cap):
    backoff = Backoff(free, timedelta(seconds=cap))
    times = [T0 - d for d in tried]
    wait = backoff.wait(times, T0)
    assert wait is None or timedelta(0) < wait <= timedelta(seconds=cap)
    # What it keeps decides exactly as everything did.
    assert backoff.wait(backoff.keep(times, T0), T0) == wait


@given(
    older=st.lists(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))),
    newer=st.lists(st.timedeltas(min_value=timedelta(microseconds=1), max_value=LIMIT_WINDOW)),
    per_minute=st.integers(1, 10),
    per_hour=st.integers(1, 50),
)
def test_sends_older_than_the_window_never_limit(older, newer, per_minute, per_hour):
    """Sends at or before the window's start count for nothing: a row of only such sends
    limits exactly as no row does, so the maintain function may delete it."""
    window_start = T0 - LIMIT_WINDOW
    recent = [window_start + d for d in newer]
    old = [window_start - d for d in older]
    assert retry_after(old + recent, T0, per_minute, per_hour) == retry_after(
        recent, T0, per_minute, per_hour
    )
    backoff = Backoff(per_minute, timedelta(seconds=per_hour))
    assert backoff.wait(old + recent, T0) == backoff.wait(recent, T0)


def test_passwords_hash_with_their_parameters_and_verify():
    hasher = PasswordHasher(CHEAP)
    stored = hasher.hash("tidal-Orbit-93-quince")

    assert stored.startswith("scrypt$1024$8$1$")
    assert hasher.verify("tidal-Orbit-93-quince", stored)
    assert not hasher.verify("tidal-Orbit-93-quincE", stored)
    assert not hasher.verify("anything", None)  # the dummy hash, same work
    assert PasswordHasher(ScryptParameters(n=2**11)).needs_rehash(stored)
    assert PasswordHasher(ScryptParameters(n=2**11)).verify("tidal-Orbit-93-quince", stored)


@pytest.mark.parametrize(
    "password", ["short", "password123", "Password1!", "qwertyuiop", "a@example.com1", "x" * 257]
)
def test_short_common_and_overlong_passwords_are_refused(password):
    with pytest.raises(RequestRejected) as refused:
        check_new_password(password, "a@example.com")
    assert refused.value.code in ("weak_password", "invalid_password")


@pytest.mark.parametrize(
    ("raw", "normal"), [(" Owner@Example.COM ", "owner@example.com"), ("a+b@c.io", "a+b@c.io")]
)
def test_addresses_are_trimmed_and_lower_cased(raw, normal):
    assert normalise_email(raw) == normal


@pytest.mark.parametrize(
    "raw", [None, 1, "", "a", "a@b", "a b@c.io", "a@b.c\x00", "@b.io", "a@@b.io"]
)
def test_what_is_not_an_address_is_refused(raw):
    with pytest.raises(RequestRejected):
        normalise_email(raw)
