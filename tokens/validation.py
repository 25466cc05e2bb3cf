"""Does this token open this tier? The one question the download views ask.

Malformed input is turned away by shape alone, before any hashing or database work, so junk
costs nothing. A well-formed token costs one HMAC and one indexed query, with no per-process
cache: a rotation is seen by every worker on its next request. The lookup is by HMAC digest, so
the index comparison's timing says nothing an attacker could steer without the secret; the
found digest is still compared in constant time.
"""

from dataclasses import dataclass
from datetime import datetime

from deliveries.tiers import Tier

from . import crypto
from .models import TierToken, TokenState
from .schedule import promote_after


@dataclass(frozen=True)
class Validation:
    ok: bool
    tier: str  # the tier asked about; "" when that was not a tier at all
    state: str | None = None  # "current" or "next"
    is_outgoing: bool = False  # the tier's current token while a next one is out: it dies at the promote
    promotes_at: datetime | None = None  # when the outgoing token stops working (UTC)

    def __bool__(self):
        return self.ok


def validate(tier, token, *, at=None):
    """Accept ``tier``'s current token, or its next token during the overlap. Never raises on input.

    With ``at`` (an aware datetime) the answer is read from the recorded history instead: which
    tokens worked at that moment. Without it, the live rotation state decides, which does not
    depend on the web host's clock agreeing with the cron host's.
    """
    if not isinstance(tier, str) or tier not in Tier.values:
        return Validation(ok=False, tier="")
    tier = Tier(tier).value
    if not crypto.is_well_formed(token):
        return Validation(ok=False, tier=tier)
    return _lookup(tier, token, at)


def _lookup(tier, token, at):
    digest = crypto.digest(token)
    if at is None:
        return _lookup_live(tier, digest)
    rows = TierToken.objects.filter(tier=tier, digest=digest).with_state_at(at).with_next_announced_at(at)
    found = list(rows.values_list("digest", "state_at", "next_announced_at")[:1])
    if not found:
        return Validation(ok=False, tier=tier)
    stored_digest, state, next_announced_at = found[0]
    if not crypto.digests_match(stored_digest, digest):
        return Validation(ok=False, tier=tier)
    return _accepted(tier, state, next_announced_at)


def _lookup_live(tier, digest):
    """The hot path of every page and download: the tier's live tokens (at most a current and a
    next) in one plain indexed query, each compared with the candidate in constant time. The next
    token's announce time comes with its own row."""
    live = list(TierToken.objects.for_tier(tier).live().values_list("digest", "state", "announced_at"))
    matched = [state for stored, state, _ in live if crypto.digests_match(stored, digest)]
    if not matched:
        return Validation(ok=False, tier=tier)
    next_announced_at = next((announced for _, state, announced in live if state == TokenState.NEXT), None)
    return _accepted(tier, matched[0], next_announced_at)


def _accepted(tier, state, next_announced_at):
    """An accepted token; the current one is outgoing while a next token is announced."""
    outgoing = state == TokenState.CURRENT and next_announced_at is not None
    return Validation(
        ok=True,
        tier=tier,
        state=str(state),
        is_outgoing=outgoing,
        promotes_at=promote_after(next_announced_at) if outgoing else None,
    )
