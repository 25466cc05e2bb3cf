"""Tokens as the tests meet them: the rotation week the token tests are set in, a first issue by
the real rotation (``tokens.rotation``), and tokens read back as the Patreon links carry them
(``tokens.links``) or unsealed from their row."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from tokens import crypto, links, rotation
from tokens.models import TierToken

# A week of the default schedule: announce Sunday 00:00 UTC, promote Monday 00:00 UTC.
SATURDAY = datetime(2025, 6, 7, 12, tzinfo=UTC)
SUNDAY = datetime(2025, 6, 8, tzinfo=UTC)
MONDAY = datetime(2025, 6, 9, tzinfo=UTC)


def token_of(tier, state):
    """The plaintext token of the tier's token in ``state``, unsealed as patreon_links does."""
    return crypto.unseal_row(TierToken.objects.get(tier=tier, state=state))


def token_in(url):
    """The token a link carries (``?t=``), or None for no link."""
    return parse_qs(urlsplit(url).query)["t"][0] if url else None


def live_tokens(tier):
    """(current, next) plaintext tokens of a tier, as the Patreon links carry them."""
    (item,) = links.tier_links([tier])
    return token_in(item.current_url), token_in(item.next_url)


def issue_current(tier, at=None):
    """First issue for ``tier``; returns its current token."""
    result = rotation.init([tier], at=at)
    assert result.ok, result.lines()
    return live_tokens(tier)[0]
