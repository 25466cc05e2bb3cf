"""Retention: keep each tier's newest N published days listed; older ones become history.

Counted from the newest published day, not from the clock, so a stalled collector never empties
the shelf. A day the month's bundle does not hold yet is never delisted while that bundle is
listed: once off the shelf it could no longer reach the bundle. Retention only delists (the row,
then the index); the objects stay in storage until ``deliveries.collect`` deletes them
``SIGNED_URL_EXPIRY`` later, so a link handed out yesterday still fetches what it was listed with.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import index, mtd, publish, storage, versions
from .models import DailyFile
from .tiers import Tier

STALE_SCRATCH_AGE = timedelta(days=1)  # far longer than any build; a live build touches its files


@dataclass
class TierRetention:
    tier: str
    kept: list = field(default_factory=list)  # dates, newest first
    delisted: list = field(default_factory=list)  # delisted, or that a dry run would delist
    protected: list = field(default_factory=list)  # past the window, but the month's bundle lacks them


@dataclass
class RetentionReport:
    keep_days: int
    dry_run: bool
    tiers: list = field(default_factory=list)
    index_keys: list = field(default_factory=list)
    scratch_removed: list = field(default_factory=list)  # leftovers of builds that were killed

    @property
    def delisted_count(self):
        return sum(len(t.delisted) for t in self.tiers)

    @property
    def protected_count(self):
        return sum(len(t.protected) for t in self.tiers)


def _lacking_by_month(tier, dailies):
    """Dates of the given days that their month's bundle does not hold (at this version), in months
    whose bundle is still listed: a closed month's bundle is never shown again, so waiting for it
    would keep the day on the shelf for ever."""
    lacking = set()
    for first in {mtd.month_start(daily.date) for daily in dailies}:
        if not versions.is_closed_month(tier, first):
            lacking.update(daily.date for daily in mtd.days_lacking(tier, first))
    return lacking


def _retain_tier(tier, keep_days, dry_run, now):
    report = TierRetention(tier=tier)
    live = list(DailyFile.objects.for_tier(tier).published().newest_first())
    keep, older = live[:keep_days], live[keep_days:]
    report.kept = [daily.date for daily in keep]
    lacking = _lacking_by_month(tier, older)
    for daily in reversed(older):  # oldest first
        if daily.date in lacking:
            report.protected.append(daily.date)
            continue
        if dry_run or publish.delist_day(daily, now):
            report.delisted.append(daily.date)
    return report


def apply_retention(*, keep_days=None, dry_run=False, tiers=None):
    """Delist the days past each tier's newest ``keep_days`` (default ``DAILY_RETENTION_DAYS``),
    then rewrite the tiers' index (always, so a run cut short before its index is healed by the
    next). Nothing is deleted from storage here: that is ``collect.collect_garbage``.
    """
    keep_days = settings.DAILY_RETENTION_DAYS if keep_days is None else keep_days
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    tiers = [tier.value for tier in Tier.selected(tiers)]
    now = timezone.now()
    report = RetentionReport(keep_days=keep_days, dry_run=dry_run)
    for tier in tiers:
        report.tiers.append(_retain_tier(tier, keep_days, dry_run, now))
    if not dry_run:
        report.index_keys = index.publish_index(tiers)
        report.scratch_removed = storage.clear_stale_scratch(STALE_SCRATCH_AGE, now=now)
    return report
