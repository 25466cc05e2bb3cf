"""Shared setup for the subscriber-facing tests (pages, downloads, API, feed, browser).

Holds no tests. Files go through the real publish path (``factories.publish_day``) and the real
month bundler (``mtd.build_month``); tokens are issued by the real rotation (``tokens.rotation``)
and read back as the links an operator would paste into Patreon (``tokens.links``).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from deliveries import mtd
from tokens import links, rotation

from .factories import publish_day

# A fixed "now": after the build deadline, so the newest expected file is yesterday's (2026-11-09).
NOW = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)
TODAY = NOW.date()


def token_of(url):
    return parse_qs(urlsplit(url).query)["t"][0] if url else None


def live_tokens(tier):
    """(current, next) plaintext tokens of a tier, as the Patreon links carry them."""
    (item,) = links.tier_links([tier])
    return token_of(item.current_url), token_of(item.next_url)


def issue_current(tier, at=None):
    """First issue for ``tier``; returns its current token."""
    result = rotation.init([tier], at=at)
    assert result.ok, result.lines()
    return live_tokens(tier)[0]


def rows_for(day):
    """A plausible, deterministic day size (real days hold about 2,450 to 2,970 rows)."""
    return 2450 + (day.toordinal() * 7919) % 520


@dataclass
class Scenario:
    """What ``publish_scenario`` published: days, the gap, the partial day, the month bundle."""

    tier: str
    today: date
    days: list
    gap: date
    partial: date
    bundle: object
    dailies: dict

    @property
    def retained(self):
        """The days the page shows: the newest seven, newest first."""
        return sorted(self.days, reverse=True)[:7]


def publish_scenario(tier="tier1", today=TODAY, span=9):
    """The ``span`` days before ``today`` minus one (a gap), one of them partial, and the month bundle.

    With ``today`` = 2026-11-10: days 1-9 November, the 6th missing, the 8th partial (21 hours);
    the page shows 9, 8, 7, 5, 4, 3, 2 and the bundle covers 1-9 with the 6th missing.
    """
    gap, partial = today - timedelta(days=4), today - timedelta(days=2)
    days, dailies = [], {}
    for back in range(span, 0, -1):
        day = today - timedelta(days=back)
        if day == gap:
            continue
        hours = 21 if day == partial else 24
        dailies[day] = publish_day(tier, day, rows=rows_for(day) * hours // 24, hours_found=hours)
        days.append(day)
    yesterday = today - timedelta(days=1)
    result = mtd.build_month(tier, yesterday.replace(day=1), today=today)
    assert result.outcome == "built", result.message
    from deliveries.models import MonthBundle

    bundle = MonthBundle.objects.get(tier=tier, month=yesterday.replace(day=1))
    return Scenario(tier, today, days, gap, partial, bundle, dailies)
