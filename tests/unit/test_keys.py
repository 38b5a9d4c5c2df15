import pytest
from sluice.core.errors import Unauthorized
from sluice.intake.keys import api_key_from_headers, generate_api_key, hash_api_key


def test_generated_keys_are_unique_and_hashed():
    first, second = generate_api_key(), generate_api_key()
    assert first.plaintext != second.plaintext
    assert first.plaintext.startswith(first.prefix + "_")
    assert first.key_hash == hash_api_key(first.plaintext)
    assert first.plaintext.encode() not in first.key_hash
    assert len(first.plaintext) >= 40


def test_hash_is_stable_and_distinguishes_keys():
    assert hash_api_key("sk_a") == hash_api_key("sk_a")
    assert hash_api_key("sk_a") != hash_api_key("sk_b")


def test_key_comes_from_x_api_key_or_bearer():
    assert api_key_from_headers({"x-api-key": "k1"}) == "k1"
    assert api_key_from_headers({"authorization": "Bearer k2"}) == "k2"
    assert api_key_from_headers({"authorization": "bearer  k3 "}) == "k3"
    assert api_key_from_headers({"x-api-key": "k1", "authorization": "Bearer k2"}) == "k1"


def test_no_key_when_headers_carry_none():
    assert api_key_from_headers({}) is None
    assert api_key_from_headers({"content-type": "application/json"}) is None


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer "},
        {"authorization": ""},
        {"authorization": "sk_AbCdEfGh_no_scheme"},
        {"x-api-key": ""},
        {"x-api-key": "   "},
    ],
)
def test_credentials_that_cannot_be_a_key_are_refused_not_ignored(headers):
    with pytest.raises(Unauthorized):
        api_key_from_headers(headers)
