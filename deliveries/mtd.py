"""Month-to-date bundles: every published day of a month, up to yesterday, in one Parquet file.

Built from the published daily files (never from the archive), so the bundle holds exactly what
subscribers could download day by day. Retention delists daily files after 7 days (and the
collector deletes them later), so days no longer listed are carried forward from the current
bundle, which holds the same bytes' rows. Each build is a new version under keys of its own.

Copied, not re-encoded: a daily file is one row group, and the bundle is those row groups' column
chunks copied byte for byte under a footer of its own (``splice``), a day at a time. It runs at the
speed of the disk, and its memory does not depend on the number of days. ``PARQUET_SPLICE=0``
encodes every day again instead (``encoding.EncodingWriter``): the same rows, by pyarrow alone.
"""

import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from . import publish, storage, versions
from .bundle_file import BundleDay, MtdError, write_bundle
from .models import DailyFile, MonthBundle, month_end
from .outcomes import Outcome
from .parquet import profile, splice
from .tiers import SCHEMA_VERSION, Tier, schema_for


@dataclass
class MonthResult:
    tier: str
    month: date
    outcome: str
    days_included: list = field(default_factory=list)
    rows: int = 0
    message: str = ""

    @property
    def month_label(self):
        return f"{self.month:%Y-%m}"


# --- Dates ---------------------------------------------------------------------------------------


def month_start(day):
    return day.replace(day=1)


def previous_month(first):
    return month_start(first - timedelta(days=1))


def parse_month(text):
    """``YYYY-MM`` to the month's first day; ValueError otherwise."""
    year, _, month = text.partition("-")
    if len(year) != 4 or len(month) != 2:
        raise ValueError(f"month must be YYYY-MM, not {text!r}")
    return date(int(year), int(month), 1)


def coverage(first, today):
    """(start, end) of the range a bundle covers on ``today``; end < start when nothing is due yet."""
    return first, min(today - timedelta(days=1), month_end(first))


def _today(today):
    return today or timezone.now().date()


# --- What is published and what a bundle holds --------------------------------------------------


def published_days(tier, first, through):
    """The tier's live DailyFiles of the month up to ``through`` (inclusive), in date order."""
    return list(DailyFile.objects.for_tier(tier).published().in_month(first).filter(date__lte=through).order_by("date"))


def bundle_days(bundle):
    """{date iso: daily sha256} of the days a bundle's manifest says it holds."""
    if bundle is None:
        return {}
    return {day["date"]: day["parquet_sha256"] for day in bundle.manifest.get("days", [])}


def days_lacking(tier, first, *, through=None):
    """Live DailyFiles of the month (up to ``through``) that the month's bundle lacks or holds an
    older version of. Retention and the health check ask this too: a day listed here is not yet
    safe to delete, and a bundle with one is stale."""
    through = min(through or month_end(first), month_end(first))
    if through < first:
        return []
    bundle = MonthBundle.objects.for_tier(tier).filter(month=first).first()
    held = bundle_days(bundle)
    return [daily for daily in published_days(tier, first, through) if held.get(daily.date.isoformat()) != daily.sha256]


def months_to_build(today=None, tiers=None):
    """Month starts the nightly run should (re)build, oldest first.

    The current month once it has a published day before today. The previous month on the 1st
    (to complete it with its last day), and on any later day if its bundle still lacks a published
    day while it is still listed (the current month has no bundle yet), so a failed run on the 1st
    is healed the next night instead of leaving a hole.
    """
    today = _today(today)
    tiers = Tier.selected(tiers)
    current = month_start(today)
    previous = previous_month(current)
    months = []
    if today.day == 1:
        if any(published_days(tier, previous, month_end(previous)) for tier in tiers):
            months.append(previous)
    elif any(days_lacking(tier, previous) and not versions.is_closed_month(tier, previous) for tier in tiers):
        months.append(previous)
    yesterday = today - timedelta(days=1)
    if yesterday >= current and any(published_days(tier, current, yesterday) for tier in tiers):
        months.append(current)
    return months


# --- Building ------------------------------------------------------------------------------------


def _included_days(tier, first, start, end, bundle):
    """The days the bundle will hold, in date order.

    A listed daily file is always included. A delisted one is included when the current bundle
    holds exactly that version: retention delists daily files after 7 days (their objects are
    collected later), so from the 8th of a month on, the earlier days exist only in the bundle,
    and the bundle must carry them forward.
    """
    held = bundle_days(bundle)
    rows = DailyFile.objects.for_tier(tier).in_month(first).filter(date__gte=start, date__lte=end).order_by("date")
    days = []
    for daily in rows:
        in_bundle = held.get(daily.date.isoformat()) == daily.sha256
        if daily.deleted_at is None:
            days.append(BundleDay(daily, in_bundle))
        elif in_bundle:
            days.append(BundleDay(daily, True))
    if not any(day.from_bundle and day.daily.deleted_at is not None for day in days):
        # Nothing needs the bundle: read every day from its own daily file (no bundle download).
        days = [BundleDay(day.daily, False) for day in days]
    return days


def _plan(days):
    return [(day.daily.date.isoformat(), day.daily.sha256) for day in days]


def _is_current(bundle, days, start, end):
    """True when the bundle already holds exactly these day versions over this range, at this
    schema version, and its objects are in storage at the recorded size."""
    if bundle is None:
        return False
    manifest = bundle.manifest
    same_days = [(d["date"], d["parquet_sha256"]) for d in manifest.get("days", [])] == _plan(days)
    same_range = (manifest.get("coverage_start_date"), manifest.get("coverage_end_date")) == (
        start.isoformat(),
        end.isoformat(),
    )
    same_schema = (
        manifest.get("schema_version") == SCHEMA_VERSION and manifest.get("columns") == schema_for(bundle.tier).names
    )
    if not (same_days and same_range and same_schema):
        return False
    return storage.size(bundle.key) == bundle.size_bytes and storage.exists(bundle.manifest_key)


def mtd_manifest(tier, first, start, end, dailies, rows, parquet_path, built_at, *, sha256=None):
    """The bundle's manifest (data contract section 3, MTD keys)."""
    included = [daily.date.isoformat() for daily in dailies]
    present = set(included)
    span = (end - start).days + 1
    return {
        **publish.manifest_header(tier, "mtd", f"{first:%Y-%m}", parquet_path, rows, built_at, sha256=sha256),
        "coverage_start_date": start.isoformat(),
        "coverage_end_date": end.isoformat(),
        "days_included": included,
        "days_missing": [
            iso for iso in ((start + timedelta(days=i)).isoformat() for i in range(span)) if iso not in present
        ],
        "partial_days": [daily.date.isoformat() for daily in dailies if daily.is_partial],
        "days": [
            {
                "date": daily.date.isoformat(),
                "parquet_sha256": daily.sha256,
                "row_count": daily.row_count,
                "is_partial": daily.is_partial,
            }
            for daily in dailies
        ],
        **profile.manifest_parts(
            parquet_path, ranges=profile.ranges_of(daily.manifest.get("profile") for daily in dailies)
        ),
    }


def build_month(tier, month_start, *, today=None, dry_run=False, force=False):
    """Build and publish one tier's bundle for the month starting ``month_start``.

    Publishes nothing unless every day was read and verified; the MonthBundle row changes only
    after data and manifest are both in storage, as a new version (``publish.publish_month``). A
    month whose bundle is no longer listed (a later month has one) is not rebuilt: no subscriber
    would be shown it.
    """
    tier = Tier(tier).value
    first = month_start.replace(day=1)
    today = _today(today)
    start, end = coverage(first, today)
    result = MonthResult(tier=tier, month=first, outcome=Outcome.NO_DAYS)
    if end < start:
        result.message = f"nothing due yet: the month starts {first}"
        return result
    if versions.is_closed_month(tier, first):
        newest = MonthBundle.objects.for_tier(tier).newest_first().first()
        result.outcome = Outcome.CLOSED
        result.message = f"the {newest.month_label} bundle is listed; an earlier month's bundle is not rebuilt"
        return result
    try:
        bundle = MonthBundle.objects.for_tier(tier).filter(month=first).first()
        days = _included_days(tier, first, start, end, bundle)
        dailies = [day.daily for day in days]
        result.days_included = [daily.date.isoformat() for daily in dailies]
        result.rows = sum(daily.row_count for daily in dailies)
        if not days:
            result.message = f"no published day between {start} and {end}"
            return result
        if not force and _is_current(bundle, days, start, end):
            result.outcome = Outcome.UNCHANGED
            result.message = f"{len(days)} days, the bundle already holds them"
            return result
        if dry_run:
            result.outcome = Outcome.DRY_RUN
            result.message = f"would build {len(days)} days ({start} to {end}), {result.rows} rows"
            return result
        with tempfile.TemporaryDirectory(prefix="mtd-", dir=storage.scratch_dir()) as workdir:
            out = Path(workdir) / "mtd.parquet"
            rows, sha256 = write_bundle(out, tier, days, bundle, workdir, spliced=settings.PARQUET_SPLICE)
            built_at = timezone.now()
            manifest = mtd_manifest(tier, first, start, end, dailies, rows, out, built_at, sha256=sha256)
            publish.publish_month(tier, first, out, manifest, built_at=built_at, consume=True)
        result.outcome = Outcome.BUILT
        result.rows = rows
        missing = len(manifest["days_missing"])
        result.message = f"{len(days)} days, {rows} rows, {manifest['parquet_size_bytes']} bytes" + (
            f", {missing} missing" if missing else ""
        )
    except Exception as exc:  # one tier's month fails alone; the run reports it and goes on
        result.outcome = Outcome.FAILED
        known = isinstance(exc, MtdError | splice.SpliceError | storage.StorageError)
        result.message = str(exc) if known else f"{type(exc).__name__}: {exc}"
    return result


def build_months(tiers=None, months=None, *, today=None, dry_run=False, force=False):
    """Bundle each month (default: ``months_to_build``) for each tier. Returns one result each."""
    today = _today(today)
    tiers = [tier.value for tier in Tier.selected(tiers)]
    months = [m.replace(day=1) for m in months] if months else months_to_build(today, tiers)
    return [build_month(tier, first, today=today, dry_run=dry_run, force=force) for first in months for tier in tiers]
