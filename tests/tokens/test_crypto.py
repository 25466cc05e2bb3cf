"""Tokens are 32 CSPRNG bytes in base64url; the database gets a keyed digest and a sealed form only."""

import base64
import hashlib
import hmac

import pytest

from tokens import crypto


def test_new_token_is_43_base64url_characters_of_32_bytes():
    token = crypto.new_token()
    assert len(token) == 43
    assert crypto.is_well_formed(token)
    assert len(base64.urlsafe_b64decode(token + "=")) == 32


def test_new_token_comes_from_the_os_csprng(monkeypatch):
    monkeypatch.setattr(crypto.secrets, "token_bytes", lambda n: bytes(range(n)))
    assert crypto.new_token() == base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def test_new_tokens_do_not_repeat():
    assert len({crypto.new_token() for _ in range(2000)}) == 2000


def test_digest_is_hmac_sha256_under_a_key_derived_from_token_secret(settings):
    settings.TOKEN_SECRET = "s" * 60
    token = crypto.new_token()
    key = hmac.new(b"s" * 60, b"instrumetriq.tokens.digest", hashlib.sha256).digest()
    assert crypto.digest(token) == hmac.new(key, token.encode(), hashlib.sha256).hexdigest()


def test_digest_depends_on_token_secret(settings):
    token = crypto.new_token()
    settings.TOKEN_SECRET = "a" * 60
    first = crypto.digest(token)
    settings.TOKEN_SECRET = "b" * 60
    assert crypto.digest(token) != first


def test_digest_and_seal_use_different_derived_keys():
    assert crypto._key(crypto.DIGEST_PURPOSE) != crypto._key(crypto.SEAL_PURPOSE)


def test_unseal_gives_the_sealed_token_back():
    token = crypto.new_token()
    salt, sealed = crypto.seal(token)
    assert crypto.unseal(salt, sealed, crypto.digest(token)) == token


def test_sealed_form_reveals_nothing_of_the_token():
    token = crypto.new_token()
    raw = base64.urlsafe_b64decode(token + "=")
    salt, sealed = crypto.seal(token)
    for stored in (salt, sealed):
        assert token not in stored
        assert raw.hex() not in stored


def test_the_same_token_seals_differently_each_time():
    token = crypto.new_token()
    assert crypto.seal(token) != crypto.seal(token)


def test_unseal_refuses_after_token_secret_changed(settings):
    token = crypto.new_token()
    salt, sealed = crypto.seal(token)
    stored_digest = crypto.digest(token)
    settings.TOKEN_SECRET = "another-secret-" * 5
    with pytest.raises(crypto.SealError, match="TOKEN_SECRET changed"):
        crypto.unseal(salt, sealed, stored_digest)


@pytest.mark.parametrize(
    ("salt", "sealed"),
    [("zz", "00" * 32), ("00" * 16, "00" * 31), ("00" * 15, "00" * 32), (None, "00" * 32)],
)
def test_unseal_refuses_malformed_sealed_values(salt, sealed):
    with pytest.raises(crypto.SealError):
        crypto.unseal(salt, sealed, "0" * 64)


def test_unseal_refuses_a_tampered_sealed_value():
    token = crypto.new_token()
    salt, sealed = crypto.seal(token)
    flipped = f"{int(sealed[:2], 16) ^ 1:02x}{sealed[2:]}"
    with pytest.raises(crypto.SealError):
        crypto.unseal(salt, flipped, crypto.digest(token))


GOOD = "A" * 42 + "g"


@pytest.mark.parametrize(
    "value",
    [
        "",
        None,
        42,
        b"A" * 43,
        ["A" * 43],
        "A" * 42,
        "A" * 44,
        "A" * 10_000,
        "A" * 42 + "=",
        "A" * 42 + "+",
        "A" * 42 + "/",
        "A" * 42 + "\x00",
        "A" * 43 + "\n",
        "A" * 42 + "\n",
        "A" * 42 + "а",  # Cyrillic a
        "A" * 42 + " ",
    ],
)
def test_malformed_values_are_not_tokens(value):
    assert not crypto.is_well_formed(value)


def test_a_43_character_base64url_string_is_well_formed():
    assert crypto.is_well_formed(GOOD)
    assert crypto.is_well_formed("_-" * 21 + "9")


def test_seal_refuses_a_non_canonical_token():
    # The 43rd character carries two unused bits: "B" decodes like "A" but is not what we issue.
    canonical = crypto.new_token()
    raw = base64.urlsafe_b64decode(canonical + "=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = canonical[:-1] + alphabet[alphabet.index(canonical[-1]) ^ 1]
    assert base64.urlsafe_b64decode(other + "=") == raw
    with pytest.raises(ValueError, match="canonical"):
        crypto.seal(other)
