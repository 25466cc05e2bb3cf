"""The published states the web and operator tests start from.

Files go through the real publish path (``factories.publish_day``) and the real month bundler
(``mtd.build_month``); tokens are issued by the real rotation (``tokens.rotation``).
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from deliveries import mtd, pipeline
from deliveries.models import BuildRun, DownloadCount, MonthBundle
from deliveries.outcomes import Outcome
from tokens import rotation

from .factories import publish_day

# A fixed "now": after the build deadline, so the newest expected file is yesterday's (2026-11-09).
NOW = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)
TODAY = NOW.date()


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
    bundle = MonthBundle.objects.get(tier=tier, month=yesterday.replace(day=1))
    return Scenario(tier, today, days, gap, partial, bundle, dailies)


def operator_morning(now, *, announce=True):
    """A morning after a night's work, for the operator's tests (delivery state page, admin lists,
    browser journeys), at ``now`` (after the build deadline): tier 1 with ``publish_scenario`` (a
    gap and a partial day), tier 2 published through yesterday, tier 3 lagging a day; links issued
    and (``announce``) announced; a good nightly run, a failed manual backfill, rotation events and
    downloads."""
    today = now.date()
    scenario = publish_scenario("tier1", today=today)
    for back in range(3, 0, -1):
        publish_day("tier2", today - timedelta(days=back))
    publish_day("tier3", today - timedelta(days=2))
    for tier in ("tier2", "tier3"):
        mtd.build_month(tier, mtd.month_start(today - timedelta(days=1)), today=today)
    rotation.init(at=now - timedelta(days=3))
    if announce:
        rotation.announce(["tier1"], at=now - timedelta(hours=2))
    nightly = BuildRun.objects.create(
        command="build_daily",
        arguments={"days": [(today - timedelta(days=1)).isoformat()], "explicit": False},
        started_at=now - timedelta(hours=5, minutes=30),
        finished_at=now - timedelta(hours=5, minutes=27, seconds=48),
        outcome=Outcome.SUCCESS,
        steps=[
            {"name": "daily", "outcome": "success", "seconds": 121.5, "detail": "1 days"},
            {"name": "mtd", "outcome": "success", "seconds": 9.25, "detail": "tier1 2026-11: built"},
        ],
        results=[{"date": (today - timedelta(days=1)).isoformat(), "tier": "", "outcome": "published", "message": "x"}],
    )
    backfill = pipeline.run_nightly(days=[today - timedelta(days=40)], now=now)  # the archive lacks it: fails
    assert backfill.outcome == Outcome.FAILED
    for back, count in ((1, 5), (2, 12), (9, 3)):
        DownloadCount.objects.create(
            tier="tier1",
            kind="daily",
            file_label=(today - timedelta(days=back)).isoformat(),
            day=today - timedelta(days=back),
            count=count,
        )
    DownloadCount.objects.create(tier="tier2", kind="mtd", file_label=f"{today:%Y-%m}", day=today, count=4)
    DownloadCount.objects.create(tier="tier2", kind="daily_manifest", file_label="x", day=today, count=99)
    return {"scenario": scenario, "nightly": nightly, "backfill": backfill.run}
