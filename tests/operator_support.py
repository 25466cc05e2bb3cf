"""Shared setup for the operator's tests (delivery state page, admin lists, browser journeys).

Holds no tests. A morning after a night's work: tier 1 with the scenario of the subscriber tests
(a gap and a partial day), tier 2 published through yesterday, tier 3 lagging a day; links issued
and announced; a good nightly run, a failed manual backfill, rotation events and downloads.
"""

from datetime import timedelta

from deliveries import mtd, pipeline
from deliveries.models import BuildRun, DownloadCount
from deliveries.outcomes import Outcome
from tokens import rotation

from .factories import publish_day
from .test_views_support import publish_scenario


def operator_morning(now, *, announce=True):
    """Publish, rotate and record as above, for ``now`` (a morning after the build deadline)."""
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
