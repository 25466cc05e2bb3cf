"""Making tokens, digesting them for lookup and sealing them so the link can be printed again.

Nothing stored opens anything. A row keeps:

* ``digest``: HMAC-SHA256 of the token under a key derived from ``TOKEN_SECRET``. Lookup is by
  digest, so a database dump gives no token and no way to test guesses offline without the secret.
* ``salt`` and ``sealed``: the token's 32 bytes XOR a keystream HMAC-SHA256(seal key, salt). The
  salt is random per token, so no keystream is ever reused; with the secret the token comes back
  (``unseal``), without it the column is 32 uniformly random bytes.

The digest key and the seal key are derived separately from ``TOKEN_SECRET``, so neither column
helps with the other. Changing ``TOKEN_SECRET`` makes every stored token unusable and unprintable:
``unseal`` notices (the digest no longer matches) and says so instead of printing a wrong link.
"""

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

from django.conf import settings

TOKEN_BYTES = 32
TOKEN_LENGTH = 43  # base64url of 32 bytes, without padding
SALT_BYTES = 16
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")

DIGEST_PURPOSE = b"instrumetriq.tokens.digest"
SEAL_PURPOSE = b"instrumetriq.tokens.seal"


class SealError(Exception):
    """A sealed token cannot be opened."""


class DamagedSeal(SealError):
    """The sealed copy is not even well formed: the row was damaged, whatever the secret."""


class SealMismatch(SealError):
    """The opened token does not match its digest: TOKEN_SECRET changed, or the row was damaged.
    One row alone cannot tell which; ``tokens.links`` compares it with the other live rows."""


def is_well_formed(token):
    """The cheap gate in front of the database: a str of exactly 43 base64url characters.

    The length test comes first so a 10 kB string costs nothing; ``fullmatch`` (not ``$``) so a
    trailing newline is not let through.
    """
    return isinstance(token, str) and len(token) == TOKEN_LENGTH and TOKEN_SHAPE.fullmatch(token) is not None


def new_token():
    return _encode(secrets.token_bytes(TOKEN_BYTES))


def digest(token):
    return hmac.new(_key(DIGEST_PURPOSE), token.encode("ascii"), hashlib.sha256).hexdigest()


def digests_match(stored, computed):
    return hmac.compare_digest(stored, computed)


def seal(token):
    """(salt_hex, sealed_hex) for a token; neither reveals it without TOKEN_SECRET."""
    raw = _decode(token)
    salt = secrets.token_bytes(SALT_BYTES)
    return salt.hex(), _xor(raw, _keystream(salt)).hex()


def unseal(salt_hex, sealed_hex, expected_digest):
    """The token back from its sealed form, checked against the stored digest."""
    try:
        salt, sealed = bytes.fromhex(salt_hex), bytes.fromhex(sealed_hex)
    except (TypeError, ValueError):
        raise DamagedSeal("the sealed token is not valid hex") from None
    if len(salt) != SALT_BYTES or len(sealed) != TOKEN_BYTES:
        raise DamagedSeal("the sealed token has the wrong length")
    token = _encode(_xor(sealed, _keystream(salt)))
    if not digests_match(expected_digest, digest(token)):
        raise SealMismatch("the sealed token does not match its digest: TOKEN_SECRET changed since it was issued")
    return token


def unseal_row(row):
    """The token of a TierToken row (or anything with salt, sealed and digest)."""
    return unseal(row.salt, row.sealed, row.digest)


def _key(purpose):
    secret = settings.TOKEN_SECRET
    return _derive(secret if isinstance(secret, bytes) else secret.encode("utf-8"), purpose)


@lru_cache(maxsize=16)
def _derive(secret, purpose):
    # Keyed on the secret itself, so a changed setting (tests, a rotated secret) takes effect at once.
    return hmac.new(secret, purpose, hashlib.sha256).digest()


def _keystream(salt):
    return hmac.new(_key(SEAL_PURPOSE), salt, hashlib.sha256).digest()


def _xor(left, right):
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _encode(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token):
    if not is_well_formed(token):
        raise ValueError("not a token")
    raw = base64.urlsafe_b64decode(token + "=")
    if _encode(raw) != token:  # the last character carries 2 unused bits: only the canonical form
        raise ValueError("not a canonical token")
    return raw
