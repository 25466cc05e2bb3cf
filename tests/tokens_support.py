"""What the token tests share: the rotation week they are set in, and reading a token back."""

from datetime import UTC, datetime

from tokens import crypto
from tokens.models import TierToken

# A week of the default schedule: announce Sunday 00:00 UTC, promote Monday 00:00 UTC.
SATURDAY = datetime(2025, 6, 7, 12, tzinfo=UTC)
SUNDAY = datetime(2025, 6, 8, tzinfo=UTC)
MONDAY = datetime(2025, 6, 9, tzinfo=UTC)


def token_of(tier, state):
    """The plaintext token of the tier's token in ``state``, unsealed as patreon_links does."""
    return crypto.unseal_row(TierToken.objects.get(tier=tier, state=state))
