"""Retention: keep each tier's newest N published days in storage; older ones become history.

Counted from the newest published day, not from the clock, so a stalled collector never empties
the shelf. A day the month's bundle does not hold yet is never deleted: once gone from storage it
could no longer reach the bundle. Objects go first, then the row is marked, so a run cut short is
finished by the next one (deleting a missing object is fine).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from . import mtd, storage
from .models import DailyFile, MonthBundle
from .tiers import Tier

STALE_SCRATCH_AGE = timedelta(days=1)  # far longer than any build; a live build touches its files


@dataclass
class TierRetention:
    tier: str
    kept: list = field(default_factory=list)  # dates, newest first
    deleted: list = field(default_factory=list)  # deleted, or that a dry run would delete
    protected: list = field(default_factory=list)  # past the window, but the month's bundle lacks them


@dataclass
class RetentionReport:
    keep_days: int
    dry_run: bool
    tiers: list = field(default_factory=list)
    orphans_found: list = field(default_factory=list)
    orphans_removed: list = field(default_factory=list)
    scratch_removed: list = field(default_factory=list)  # leftovers of builds that were killed

    @property
    def deleted_count(self):
        return sum(len(t.deleted) for t in self.tiers)

    @property
    def protected_count(self):
        return sum(len(t.protected) for t in self.tiers)


def _lacking_by_month(tier, dailies):
    """Dates of the given days that their month's bundle does not hold (at this version)."""
    lacking = set()
    for first in {mtd.month_start(daily.date) for daily in dailies}:
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
        if not dry_run:
            storage.delete(daily.key)
            storage.delete(daily.manifest_key)
            DailyFile.objects.filter(pk=daily.pk, deleted_at__isnull=True).update(deleted_at=now)
        report.deleted.append(daily.date)
    return report


def is_temporary(key):
    """Upload leftovers (``.incoming-*``, ``*.part``, dot files) are not orphans: a writer may own them."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith((".part", ".tmp"))


def find_orphans(tiers):
    """Keys under the tier prefixes that no live DailyFile and no MonthBundle row knows."""
    known = set()
    for key, manifest_key in DailyFile.objects.published().filter(tier__in=tiers).values_list("key", "manifest_key"):
        known.update((key, manifest_key))
    for key, manifest_key in MonthBundle.objects.filter(tier__in=tiers).values_list("key", "manifest_key"):
        known.update((key, manifest_key))
    orphans = []
    for tier in tiers:
        orphans.extend(key for key in storage.list_keys(f"{tier}/") if key not in known and not is_temporary(key))
    return orphans


def apply_retention(*, keep_days=None, dry_run=False, delete_orphans=False, tiers=None):
    """Delete from storage the days past each tier's newest ``keep_days`` (default
    ``DAILY_RETENTION_DAYS``) and mark their rows deleted; list (and optionally remove) orphans.

    Run it under the build lock (the command does): an object uploaded by a build whose row is
    not written yet would otherwise look like an orphan.
    """
    keep_days = settings.DAILY_RETENTION_DAYS if keep_days is None else keep_days
    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    tiers = [tier.value for tier in Tier.selected(tiers)]
    now = timezone.now()
    report = RetentionReport(keep_days=keep_days, dry_run=dry_run)
    for tier in tiers:
        report.tiers.append(_retain_tier(tier, keep_days, dry_run, now))
    report.orphans_found = find_orphans(tiers)
    if not dry_run:
        report.scratch_removed = storage.clear_stale_scratch(STALE_SCRATCH_AGE, now=now)
    if delete_orphans and not dry_run:
        for key in report.orphans_found:
            storage.delete(key)
            report.orphans_removed.append(key)
    return report
