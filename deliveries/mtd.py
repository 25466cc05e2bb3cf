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
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.utils import timezone

from . import encoding, profile, publish, splice, storage, versions
from .models import DailyFile, MonthBundle, month_end
from .tiers import SCHEMA_VERSION, Tier, schema_for

OUTCOMES = ("built", "unchanged", "no_days", "closed", "dry_run", "failed")


class MtdError(Exception):
    """A month cannot be bundled as it stands (bad daily file); nothing was published."""


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


@dataclass
class _Day:
    """One day going into a bundle and where its rows come from: its daily file, or the current
    bundle when retention has already deleted the daily file (the bundle then carries it forward)."""

    daily: DailyFile
    from_bundle: bool


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
            days.append(_Day(daily, in_bundle))
        elif in_bundle:
            days.append(_Day(daily, True))
    if not any(day.from_bundle and day.daily.deleted_at is not None for day in days):
        # Nothing needs the bundle: read every day from its own daily file (no bundle download).
        days = [_Day(day.daily, False) for day in days]
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


def conform(table, schema, label):
    """The table in exactly the tier's schema: columns by name, missing ones null, unknown ones
    dropped, types cast safely. A value the tier's type cannot hold is an error, not a silent change."""
    if table.schema.equals(schema):
        return table
    columns = []
    for target in schema:
        if target.name in table.column_names:
            column = table.column(target.name)
            try:
                columns.append(column if column.type.equals(target.type) else column.cast(target.type, safe=True))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise MtdError(f"{label}: column {target.name} does not fit the tier's type: {exc}") from exc
        else:
            columns.append(pa.nulls(table.num_rows, target.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _check_digest(digest, sha256, label):
    if digest != sha256:
        raise MtdError(
            f"{label}: sha256 in storage {digest[:12]}... differs from the published {sha256[:12]}...; "
            "republish it or fix storage"
        )


class _BundleSource:
    """The current bundle (verified against its recorded digest), from which days that retention
    has deleted are carried forward: as its row groups when a day has row groups of its own (every
    bundle this code writes), else decoded and encoded again (``encode``: rows that cannot be
    copied as they are, conformed to the tier's schema and encoded by pyarrow)."""

    def __init__(self, bundle, workdir, layout):
        self.bundle = bundle
        self.opened = ExitStack()
        try:
            fh, digest = self.opened.enter_context(storage.open_checked(bundle.key, workdir))
            _check_digest(digest, bundle.sha256, f"{bundle.tier} {bundle.month_label} current bundle")
            try:
                self.source = splice.Source(fh)
            except splice.SpliceError as exc:
                raise MtdError(f"{bundle.tier} {bundle.month_label} current bundle: {exc}") from exc
        except BaseException:
            self.opened.close()
            raise
        self.spans = {}  # date iso -> (first row, rows), from the manifest's days in file order
        row = 0
        for entry in bundle.manifest.get("days", []):
            self.spans[entry["date"]] = (row, entry["row_count"])
            row += entry["row_count"]
        if row != self.source.footer.value(splice.FILE_NUM_ROWS):
            raise MtdError(f"{bundle.tier} {bundle.month_label}: the current bundle's rows differ from its manifest")
        self.group_starts = [0]  # from Arrow's own parse of the footer, which is much faster
        metadata = self.source.parquet.metadata
        for group in range(metadata.num_row_groups):
            self.group_starts.append(self.group_starts[-1] + metadata.row_group(group).num_rows)
        self.copyable = layout.accepts(self.source)

    def add_day(self, writer, daily, schema):
        iso = daily.date.isoformat()
        if iso not in self.spans:
            raise MtdError(f"{daily.tier} {iso}: the current bundle's manifest does not list the day")
        first, rows = self.spans[iso]
        if rows != daily.row_count:
            raise MtdError(f"{daily.tier} {iso}: the current bundle holds {rows} rows, the day has {daily.row_count}")
        if rows == 0:
            return
        starts = self.group_starts
        if self.copyable and first in starts and first + rows in starts:
            writer.add(self.source, range(starts.index(first), starts.index(first + rows)))
        else:
            writer.encode(conform(t, schema, f"{daily.tier} {iso}") for t in self._rows(first, rows))

    def _rows(self, first, rows):
        """The rows [first, first + rows) a row group at a time."""
        parquet = self.source.parquet
        end = first + rows
        for group in range(self.source.num_row_groups):
            low, high = self.group_starts[group], self.group_starts[group + 1]
            if high <= first or low >= end:
                continue
            table = parquet.read_row_group(group)
            yield table.slice(max(first - low, 0), min(end, high) - max(first, low))

    def close(self):
        self.opened.close()


def _add_daily(writer, daily, workdir, schema):
    """One verified daily file: its row groups copied, or its rows conformed and encoded again."""
    label = f"{daily.tier} {daily.date}"
    with storage.open_checked(daily.key, workdir) as (fh, digest):
        _check_digest(digest, daily.sha256, f"{label} daily file")
        try:
            source = splice.Source(fh)
        except splice.SpliceError:
            source = None
        if source is not None and writer.layout.accepts(source):
            writer.add(source)
            return
        try:
            with pq.ParquetFile(fh) as parquet:
                writer.encode(
                    conform(parquet.read_row_group(group), schema, label) for group in range(parquet.num_row_groups)
                )
        except (pa.ArrowException, OSError) as exc:
            raise MtdError(f"{label}: daily file is not readable Parquet: {exc}") from exc


def _write_bundle(out, tier, days, bundle, workdir):
    """Every day's rows, in date order, in one Parquet file of the tier's schema.
    Returns (rows, sha256).

    A day is its daily file's row groups (one a day, see ``build``) copied byte for byte with
    ``splice``; only files that do not have the tier's exact schema or writer are decoded and
    encoded again. Memory is a copy buffer and, at most, a row group being encoded again, whatever
    the days (``PARQUET_SPLICE=0``: every day is encoded again, a day's rows in memory).
    """
    layout = encoding.layout(tier)
    with ExitStack() as stack:
        writer = stack.enter_context(encoding.writer(out, tier, spliced=settings.PARQUET_SPLICE))
        current = None
        if any(day.from_bundle for day in days):
            current = _BundleSource(bundle, workdir, layout)
            stack.callback(current.close)
        for day in days:
            daily = day.daily
            before = writer.rows
            if day.from_bundle:
                current.add_day(writer, daily, layout.schema)
            else:
                _add_daily(writer, daily, workdir, layout.schema)
            if writer.rows - before != daily.row_count:
                raise MtdError(
                    f"{daily.tier} {daily.date}: file has {writer.rows - before} rows, "
                    f"the published day says {daily.row_count}"
                )
        sha256, _, rows = writer.close()
    return rows, sha256


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
        **profile.manifest_parts(parquet_path, day_profiles=[daily.manifest.get("profile") for daily in dailies]),
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
    result = MonthResult(tier=tier, month=first, outcome="no_days")
    if end < start:
        result.message = f"nothing due yet: the month starts {first}"
        return result
    if versions.is_closed_month(tier, first):
        newest = MonthBundle.objects.for_tier(tier).newest_first().first()
        result.outcome = "closed"
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
            result.outcome = "unchanged"
            result.message = f"{len(days)} days, the bundle already holds them"
            return result
        if dry_run:
            result.outcome = "dry_run"
            result.message = f"would build {len(days)} days ({start} to {end}), {result.rows} rows"
            return result
        with tempfile.TemporaryDirectory(prefix="mtd-", dir=storage.scratch_dir()) as workdir:
            out = Path(workdir) / "mtd.parquet"
            rows, sha256 = _write_bundle(out, tier, days, bundle, workdir)
            built_at = timezone.now()
            manifest = mtd_manifest(tier, first, start, end, dailies, rows, out, built_at, sha256=sha256)
            publish.publish_month(tier, first, out, manifest, built_at=built_at, consume=True)
        result.outcome = "built"
        result.rows = rows
        missing = len(manifest["days_missing"])
        result.message = f"{len(days)} days, {rows} rows, {manifest['parquet_size_bytes']} bytes" + (
            f", {missing} missing" if missing else ""
        )
    except Exception as exc:  # one tier's month fails alone; the run reports it and goes on
        result.outcome = "failed"
        known = isinstance(exc, MtdError | splice.SpliceError | storage.StorageError)
        result.message = str(exc) if known else f"{type(exc).__name__}: {exc}"
    return result


def build_months(tiers=None, months=None, *, today=None, dry_run=False, force=False):
    """Bundle each month (default: ``months_to_build``) for each tier. Returns one result each."""
    today = _today(today)
    tiers = [tier.value for tier in Tier.selected(tiers)]
    months = [m.replace(day=1) for m in months] if months else months_to_build(today, tiers)
    return [build_month(tier, first, today=today, dry_run=dry_run, force=force) for first in months for tier in tiers]
