"""The text to paste into each tier's pinned Patreon post.

The links are rebuilt from the sealed tokens (``crypto.unseal``), so they can be printed at any
time without the database ever holding a usable token. One query for all tiers.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from deliveries.tiers import Tier

from . import crypto
from .models import TierToken, TokenState
from .rotation import normalize_tiers
from .schedule import format_when as _when
from .schedule import promote_after

FORMATS = ("text", "markdown", "json")


@dataclass(frozen=True)
class TierLinks:
    tier: str
    current_url: str | None
    next_url: str | None
    promotes_at: datetime | None  # when the next link becomes the only one (during the overlap)
    problem: str | None = None  # why a link cannot be printed

    @property
    def plan(self):
        return Tier(self.tier).plan

    @property
    def overlap(self):
        return self.next_url is not None

    @property
    def ok(self):
        return self.problem is None and self.current_url is not None

    @property
    def instructions(self):
        if self.problem:
            return self.problem
        if self.overlap:
            return (
                f"Replace the link in the {self.plan} pinned post with the new link now; "
                f"the current link stops working {_when(self.promotes_at)}."
            )
        return f"Paste this link into the {self.plan} pinned post."


def link_for(tier, token):
    return f"{settings.SITE_URL}/downloads/{tier}?t={token}"


SEALED_FIELDS = ("tier", "state", "digest", "salt", "sealed", "announced_at")


def tier_links(tiers=None):
    tiers = normalize_tiers(tiers)
    rows = {}
    for row in TierToken.objects.live().filter(tier__in=tiers).only(*SEALED_FIELDS):
        rows[row.tier, row.state] = row
    opened = {key: _open(row) for key, row in rows.items()}
    secret_changed = _secret_changed(opened.values(), tiers)
    return [
        _links(tier, rows.get((tier, TokenState.CURRENT)), rows.get((tier, TokenState.NEXT)), opened, secret_changed)
        for tier in tiers
    ]


def _open(row):
    """The row's token, or the SealError that says why it cannot be had."""
    try:
        return crypto.unseal_row(row)
    except crypto.SealError as error:
        return error


def _secret_changed(opened, tiers):
    """A changed TOKEN_SECRET fails every live token; one damaged row fails alone.

    So a mismatch means the secret changed only if no live token opens, the other tiers' included
    (asked for only in that case: one more query, on the failure path alone).
    """
    opened = list(opened)
    if not any(isinstance(value, crypto.SealMismatch) for value in opened):
        return False
    if any(isinstance(value, str) for value in opened):
        return False
    others = TierToken.objects.live().exclude(tier__in=tiers).only(*SEALED_FIELDS)
    return not any(isinstance(_open(row), str) for row in others)


def render(links, fmt="text", at=None):
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    at = at or timezone.now()
    return {"text": _text, "markdown": _markdown, "json": _json}[fmt](links, at)


def _links(tier, current, upcoming, opened, secret_changed):
    failed = [row for row in (current, upcoming) if row and not isinstance(opened[tier, row.state], str)]
    if failed and secret_changed:
        return TierLinks(
            tier,
            None,
            None,
            None,
            "TOKEN_SECRET changed since these tokens were issued, so their links no longer work: "
            f"run rotate_tokens --mode emergency --tier {tier}.",
        )
    if failed:
        unreadable = " and ".join(f"token #{row.pk} ({row.state})" for row in failed)
        return TierLinks(
            tier,
            None,
            None,
            None,
            f"The database row of {unreadable} is unreadable (its sealed copy is damaged; the other tokens "
            f"open, so TOKEN_SECRET is right): run rotate_tokens --mode emergency --tier {tier} for a new link.",
        )
    current_url = link_for(tier, opened[tier, current.state]) if current else None
    next_url = link_for(tier, opened[tier, upcoming.state]) if upcoming else None
    if not current_url and not next_url:
        return TierLinks(tier, None, None, None, "No token has been issued: run rotate_tokens --mode init.")
    promotes_at = promote_after(upcoming.announced_at) if upcoming else None
    if not current_url:
        # Only reachable by editing the database by hand; the next link works, but say so.
        problem = "No current token, only a next one: run rotate_tokens --mode promote."
        return TierLinks(tier, None, next_url, promotes_at, problem)
    return TierLinks(tier, current_url, next_url, promotes_at)


def _text(links, at):
    lines = [f"Patreon links for the pinned posts (generated {at:%Y-%m-%d %H:%M} UTC)", ""]
    for item in links:
        lines.append(f"{item.plan} ({item.tier})")
        if item.overlap:
            if item.current_url:
                lines.append(f"  Current link (works until {_when(item.promotes_at)}): {item.current_url}")
            lines.append(f"  New link (works now, the only one after {_when(item.promotes_at)}): {item.next_url}")
        elif item.current_url:
            lines.append(f"  Link: {item.current_url}")
        lines.append(f"  {item.instructions}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _markdown(links, at):
    lines = ["## Patreon links for the pinned posts", "", f"_Generated {at:%Y-%m-%d %H:%M} UTC._", ""]
    for item in links:
        lines.append(f"### {item.plan} ({item.tier})")
        lines.append("")
        if item.overlap:
            if item.current_url:
                lines.append(f"- **Current link** (works until {_when(item.promotes_at)}): <{item.current_url}>")
            lines.append(f"- **New link** (works now, the only one after {_when(item.promotes_at)}): <{item.next_url}>")
        elif item.current_url:
            lines.append(f"- **Link**: <{item.current_url}>")
        if item.overlap or item.current_url:
            lines.append("")
        lines.append(item.instructions)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _json(links, at):
    return (
        json.dumps(
            {
                "generated_at": at.isoformat(),
                "tiers": [
                    {
                        "tier": item.tier,
                        "plan": item.plan,
                        "current_url": item.current_url,
                        "next_url": item.next_url,
                        "current_works_until": item.promotes_at.isoformat() if item.overlap else None,
                        "instructions": item.instructions,
                        "ok": item.ok,
                    }
                    for item in links
                ],
            },
            indent=2,
        )
        + "\n"
    )
