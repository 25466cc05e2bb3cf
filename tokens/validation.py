"""Does this token open this tier? The one question the download views ask.

Malformed input is turned away by shape alone, before any hashing or database work, so junk
costs nothing. A well-formed token costs one HMAC and one indexed query; a caller may keep the
live tokens instead (``live=``) as long as it drops them when ``signals.live_tokens_changed``
says they changed (the web side keys them by the tier's listing version, renewed then). The lookup is by HMAC digest, so
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


def validate(tier, token, *, at=None, live=None):
    """Accept ``tier``'s current token, or its next token during the overlap. Never raises on input.

    With ``at`` (an aware datetime) the answer is read from the recorded history instead: which
    tokens worked at that moment. Without it, the live rotation state decides, which does not
    depend on the web host's clock agreeing with the cron host's. ``live`` (a function of the
    tier) gives the live tokens as ``live_tokens`` does, for a caller that keeps them between
    changes (``signals.live_tokens_changed``); it is called only for a well-formed token.
    """
    if not isinstance(tier, str) or tier not in Tier.values:
        return Validation(ok=False, tier="")
    tier = Tier(tier).value
    if not crypto.is_well_formed(token):
        return Validation(ok=False, tier=tier)
    digest = crypto.digest(token)
    if at is None:
        return _match_live(tier, digest, (live or live_tokens)(tier))
    return _lookup_at(tier, digest, at)


def _lookup_at(tier, digest, at):
    rows = TierToken.objects.filter(tier=tier, digest=digest).with_state_at(at).with_next_announced_at(at)
    found = list(rows.values_list("digest", "state_at", "next_announced_at")[:1])
    if not found:
        return Validation(ok=False, tier=tier)
    stored_digest, state, next_announced_at = found[0]
    if not crypto.digests_match(stored_digest, digest):
        return Validation(ok=False, tier=tier)
    return _accepted(tier, state, next_announced_at)


def live_tokens(tier):
    """The tier's live tokens (at most a current and a next) as (digest, state, announced_at), in
    one plain indexed query: the next token's announce time comes with its own row."""
    return list(TierToken.objects.for_tier(tier).live().values_list("digest", "state", "announced_at"))


def _match_live(tier, digest, live):
    """Each live token compared with the candidate in constant time."""
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
