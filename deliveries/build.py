"""One UTC day from the raw archive to the three tiers' published Parquet files.

The day is read one hour file at a time; tier 3 is shaped from each hour's entries and written as
one row group, and tiers 2 and 1 are projected from that same batch. Tier 3's hours are then
merged into one row group for the day (``splice.compact``: the price samples' pages are copied,
only the small columns are encoded again), which is what lets the month-to-date bundle copy days
instead of re-encoding them. Nothing is published until
every requested tier is written; then the bytes go to storage (data, then manifest, each version
under keys of its own) and only then the database rows, all tiers of the day in one transaction,
and then the tiers' index.
"""

import contextlib
import logging
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import index, publish, storage
from .models import DailyFile
from .outcomes import Outcome
from .parquet import archive, encoding, fastjson, profile, splice
from .parquet.read_ahead import read_ahead
from .parquet.shaping import Coercions, project, shape_tier3
from .tiers import TIER_COLUMNS, Tier, schema_for

logger = logging.getLogger(__name__)


class Cause:
    """Why a day failed: the archive (retrying will not help until it changes) or the system."""

    INPUT = "input"
    STORAGE = "storage"
    SYSTEM = "system"


@dataclass
class DayResult:
    date: date
    outcome: str
    message: str
    tiers: list = field(default_factory=list)
    rows: int = 0
    hours_found: int = 0
    seconds: float = 0.0
    cause: str = ""

    @property
    def ok(self):
        return self.outcome != Outcome.FAILED

    def as_dict(self):
        return {
            "date": self.date.isoformat(),
            "outcome": self.outcome,
            "message": self.message,
            "tiers": list(self.tiers),
            "rows": self.rows,
            "hours_found": self.hours_found,
            "seconds": round(self.seconds, 3),
            "cause": self.cause,
        }


def yesterday(now=None):
    return (now or timezone.now()).astimezone(UTC).date() - timedelta(days=1)


def build_day(day, *, tiers=None, force=False, dry_run=False, archive_root=None, progress=None, now=None, reader=None):
    """Build and publish one day. Never raises for bad input: the result says what happened.

    ``reader``: ``"fast"`` or ``"strict"`` (default: settings.ARCHIVE_READER), see ``read_hours``.
    The three steps (``plan_day``, ``write_day_files``, ``publish_day``) are separate so that a
    backfill can write days in other processes (``parallel``) and publish them here."""
    started = timezone.now()
    plan = plan_day(day, tiers=tiers, force=force, dry_run=dry_run, archive_root=archive_root, now=now, reader=reader)
    if isinstance(plan, DayResult):
        return plan
    with tempfile.TemporaryDirectory(prefix="instrumetriq-build-", dir=storage.scratch_dir()) as tmp:
        try:
            written = plan.write(Path(tmp), progress=progress)
        except OSError as exc:
            return plan.write_failed(exc)
        return publish_day(plan, written, started)


def unexpected_failure(day, exc):
    """The DayResult of a day an unexpected error stopped (logged with its traceback): the other
    days of a run still run."""
    logger.error("building %s failed unexpectedly", day, exc_info=exc)
    return DayResult(day, Outcome.FAILED, f"unexpected error: {type(exc).__name__}: {exc}", cause=Cause.SYSTEM)


@dataclass
class DayPlan:
    """A day to write: everything the writing needs, and nothing that needs the database or the
    settings (it may run in another process)."""

    day: date
    tiers: list
    day_files: archive.DayFiles
    reader: str
    max_line_bytes: int

    def write(self, out_dir, progress=None):
        return write_day_files(
            self.day_files,
            self.tiers,
            out_dir,
            progress=progress,
            reader=self.reader,
            max_line_bytes=self.max_line_bytes,
        )

    def write_failed(self, exc):
        return DayResult(
            self.day,
            Outcome.FAILED,
            f"could not write the Parquet files: {exc}",
            hours_found=self.day_files.hours_found,
            cause=Cause.SYSTEM,
        )


def plan_day(day, *, tiers=None, force=False, dry_run=False, archive_root=None, now=None, reader=None):
    """A DayPlan, or the DayResult of a day that is not to be written (not over yet, not buildable,
    already published from the same input, a dry run)."""
    tiers = Tier.selected(tiers)
    today = (now or timezone.now()).astimezone(UTC).date()
    if day >= today:
        return DayResult(
            day, Outcome.FAILED, f"{day} is not over yet (UTC); only past days can be built", cause=Cause.INPUT
        )
    root = Path(archive_root or settings.ARCHIVE_ROOT)
    try:
        day_files = archive.find_day(root, day)
    except archive.ArchiveError as exc:
        return DayResult(day, Outcome.FAILED, str(exc), cause=Cause.INPUT)
    found = day_files.hours_found
    if found < settings.MIN_HOURS:
        return DayResult(
            day,
            Outcome.FAILED,
            f"only {found} of 24 hour files{unreadable(day_files)} (MIN_HOURS is {settings.MIN_HOURS}); "
            "nothing published",
            hours_found=found,
            cause=Cause.INPUT,
        )
    fingerprint = day_files.fingerprint
    if not force:
        existing = {d.tier: d for d in DailyFile.objects.filter(date=day, tier__in=tiers)}
        current = [t for t in tiers if t in existing and existing[t].input_fingerprint == fingerprint]
        if len(current) == len(tiers):
            retired = [t for t in current if existing[t].deleted_at is not None]
            why = "delisted by retention" if retired else "already published from the same input"
            return DayResult(day, Outcome.SKIPPED, f"{why}; --force rebuilds", tiers=list(tiers), hours_found=found)
    if dry_run:
        partial = f", partial: missing {','.join(day_files.missing_hours)}" if day_files.missing_hours else ""
        partial += unreadable(day_files)
        return DayResult(
            day,
            Outcome.DRY_RUN,
            f"would build {', '.join(tiers)} from {found} hour files{partial}",
            list(tiers),
            0,
            found,
        )
    return DayPlan(day, tiers, day_files, reader or settings.ARCHIVE_READER, settings.MAX_LINE_BYTES)


def publish_day(plan, written, started):
    """Upload a written day (its files are consumed) and show it: the DayResult."""
    day, tiers, day_files = plan.day, plan.tiers, plan.day_files
    found = day_files.hours_found
    fingerprint = day_files.fingerprint
    if written.row_count == 0:
        return DayResult(
            day,
            Outcome.FAILED,
            f"no valid entries in {found} hour files; nothing published",
            hours_found=found,
            cause=Cause.INPUT,
        )
    built_at = timezone.now()
    manifests = {tier: written.manifest(tier, day_files, built_at) for tier in tiers}
    try:
        for tier in tiers:
            publish.upload_daily(tier, day, written.paths[tier], manifests[tier], consume=True)
    except storage.StorageError as exc:
        return DayResult(
            day,
            Outcome.FAILED,
            f"{exc}; nothing new is shown to subscribers",
            hours_found=found,
            cause=Cause.STORAGE,
        )
    try:
        with transaction.atomic():
            for tier in tiers:
                publish.record_daily(tier, day, manifests[tier], input_fingerprint=fingerprint, built_at=built_at)
    except storage.StorageError as exc:
        return DayResult(
            day, Outcome.FAILED, f"{exc}; nothing new is shown to subscribers", hours_found=found, cause=Cause.STORAGE
        )
    try:
        index.publish_index(tiers)
    except storage.StorageError as exc:
        message = f"published, but the index was not rewritten ({exc}); the next run rewrites it"
        return DayResult(day, Outcome.FAILED, message, list(tiers), hours_found=found, cause=Cause.STORAGE)
    seconds = (timezone.now() - started).total_seconds()
    partial = f" (partial: {found}/24 hours{unreadable(day_files)})" if day_files.missing_hours else ""
    skipped = written.skipped_total
    message = f"published {written.row_count} rows{partial}" + (f", {skipped} bad lines skipped" if skipped else "")
    if written.conflicting_duplicates:
        message += f", {written.conflicting_duplicates} entries share a symbol and time with a different entry"
    if written.hours_strict and plan.reader == Reader.FAST:
        message += f", {written.hours_strict} of {found} hours read strictly"
        if not written.hours_fast:
            logger.warning("%s: every hour was read strictly; has the collector changed? (the log says why)", day)
    return DayResult(day, Outcome.PUBLISHED, message, list(tiers), written.row_count, found, seconds)


@dataclass
class WrittenDay:
    paths: dict
    rows_by_hour: dict
    skipped_by_hour: dict
    skipped_by_reason: Counter
    truncated_hours: list
    coercions: Coercions
    min_ts: str | None
    max_ts: str | None
    symbols: int
    conflicting_duplicates: int = 0
    hours_fast: int = 0
    hours_strict: int = 0

    @property
    def row_count(self):
        return sum(self.rows_by_hour.values())

    @property
    def skipped_total(self):
        return sum(self.skipped_by_hour.values())

    def manifest(self, tier, day_files, built_at):
        day = day_files.day
        return {
            **publish.manifest_header(tier, "daily", day.isoformat(), self.paths[tier], self.row_count, built_at),
            "archive_day": archive.folder_name(day),
            "hours_expected": 24,
            "hours_found": day_files.hours_found,
            "missing_hours": day_files.missing_hours,
            "coverage_ratio": round(day_files.hours_found / 24, 4),
            "is_partial": bool(day_files.missing_hours),
            "bad_hours": day_files.bad_hours,
            "hours_fast": self.hours_fast,
            "hours_strict": self.hours_strict,
            "rows_by_hour": {hour: self.rows_by_hour.get(hour, 0) for hour in archive.HOURS},
            "skipped_lines": {
                "total": self.skipped_total,
                "by_hour": {hour: n for hour, n in self.skipped_by_hour.items() if n},
                "by_reason": dict(sorted(self.skipped_by_reason.items())),
                "truncated_hours": self.truncated_hours,
            },
            "conflicting_duplicates": self.conflicting_duplicates,
            "coerced_values": coercions_for_tier(self.coercions, tier),
            "min_snapshot_ts": self.min_ts,
            "max_snapshot_ts": self.max_ts,
            "symbols": self.symbols,
            **profile.manifest_parts(self.paths[tier], preview=True),
        }


def unreadable(day_files):
    """``, 2 unreadable: 05 not_gzip, 07 empty`` for a day's bad hours; nothing when there are none."""
    bad = day_files.bad_hours
    listed = ", ".join(f"{hour} {reason}" for hour, reason in bad.items())
    return f", {len(bad)} unreadable: {listed}" if bad else ""


def coercions_for_tier(coercions, tier):
    """The tier 3 coercion counts, renamed to the paths of the tier's own columns."""
    renamed = Counter()
    for col in TIER_COLUMNS[Tier(tier)]:
        for source in col.sources:
            for path, count in coercions.items():
                if path == source or path.startswith((source + ".", source + "[")):
                    renamed[col.name + path[len(source) :]] += count
    return dict(sorted(renamed.items()))


def use_build_memory_pool():
    """Arrow's memory from jemalloc, which gives freed memory back as a day streams through an hour
    at a time; mimalloc (pyarrow's default) keeps it, about 60 MB more peak RSS per build."""
    if pa.default_memory_pool().backend_name != "jemalloc":
        with contextlib.suppress(NotImplementedError):  # a pyarrow built without it
            pa.set_memory_pool(pa.jemalloc_memory_pool())


class Reader:
    FAST = "fast"
    STRICT = "strict"
    CHOICES = (FAST, STRICT)


def read_hours(day_files, *, reader=None, max_line_bytes=None):
    """Yield each hour file's HourRead, in hour order, with repeats found across the day.

    ``reader="fast"`` (the default, ``settings.ARCHIVE_READER``) tries ``fastjson`` first: its
    HourRead carries the tier 3 batch. An hour it cannot prove right, and every hour with
    ``reader="strict"``, is read by ``archive.read_hour`` (entries for ``shape_tier3``). Both give
    the same rows and counts; ``HourRead.batch`` says which one read it.
    """
    reader = reader or settings.ARCHIVE_READER
    if reader not in Reader.CHOICES:
        raise ValueError(f"unknown archive reader {reader!r}; choose {' or '.join(Reader.CHOICES)}")
    max_line_bytes = max_line_bytes or settings.MAX_LINE_BYTES
    seen = archive.SeenEntries()
    for hour_file in day_files.hours:
        hour = None
        if reader == Reader.FAST:
            try:
                hour = fastjson.read_hour(hour_file, seen=seen, max_line_bytes=max_line_bytes)
            except fastjson.Fallback as why:
                logger.info("%s hour %s: read strictly (%s)", day_files.day, hour_file.hour, why)
            except Exception:  # a fault of the fast reader itself must not cost the hour: read it strictly
                logger.warning(
                    "%s hour %s: the fast reader failed; read strictly", day_files.day, hour_file.hour, exc_info=True
                )
        yield hour if hour is not None else archive.read_hour(hour_file, seen=seen, max_line_bytes=max_line_bytes)


def write_day_files(day_files, tiers, out_dir, progress=None, reader=None, max_line_bytes=None):
    """Stream the day's hours into one Parquet file per tier. Memory follows one hour file."""
    use_build_memory_pool()
    paths = {tier: out_dir / f"{tier}.parquet" for tier in tiers}
    hourly = {tier: out_dir / f"{tier}.hours.parquet" if tier == Tier.TIER3 else paths[tier] for tier in tiers}
    writers = {
        tier: pq.ParquetWriter(hourly[tier], schema_for(tier), **encoding.writer_options(tier)) for tier in tiers
    }
    # Tiers 1 and 2 are small: buffered for the day so they get one row group, not 24 tiny ones.
    buffered = {tier: [] for tier in tiers if tier != Tier.TIER3}
    rows_by_hour, skipped_by_hour, reasons = {}, {}, Counter()
    truncated, coercions, symbols = [], Coercions(), set()
    min_ts = max_ts = None
    conflicting = 0
    paths_taken = Counter()
    hours = read_hours(day_files, reader=reader, max_line_bytes=max_line_bytes)
    if pa.cpu_count() > 1:  # a backfill's worker gets one core: there, reading ahead would only compete
        hours = read_ahead(hours)
    try:
        for hour in hours:
            paths_taken[hour.batch is not None] += 1
            rows_by_hour[hour.hour] = hour.rows
            skipped_by_hour[hour.hour] = hour.skipped_total
            reasons.update(hour.skipped)
            conflicting += hour.conflicting_duplicates
            if hour.truncated:
                truncated.append(hour.hour)
            if progress:
                progress(f"  {day_files.day} hour {hour.hour}: {hour.rows} rows, {hour.skipped_total} skipped")
            if not hour.rows:
                continue
            batch = hour.batch if hour.batch is not None else shape_tier3(hour.entries, coercions)
            del hour
            symbols.update(batch.column("symbol").drop_null().to_pylist())
            stamps = pc.min_max(batch.column("snapshot_ts"))
            low, high = stamps["min"].as_py(), stamps["max"].as_py()
            min_ts = low if min_ts is None or (low is not None and low < min_ts) else min_ts
            max_ts = high if max_ts is None or (high is not None and high > max_ts) else max_ts
            for tier in tiers:
                if tier == Tier.TIER3:
                    writers[tier].write_batch(batch)
                else:
                    buffered[tier].append(project(batch, tier))
        for tier, batches in buffered.items():
            if batches:
                writers[tier].write_table(pa.Table.from_batches(batches, schema=schema_for(tier)))
    finally:
        hours.close()  # a reader still running ahead stops before its next hour
        for writer in writers.values():
            writer.close()
    for tier in tiers:
        if hourly[tier] != paths[tier]:
            merge_hours(hourly[tier], paths[tier], tier)
    return WrittenDay(
        paths,
        rows_by_hour,
        skipped_by_hour,
        reasons,
        truncated,
        coercions,
        min_ts,
        max_ts,
        len(symbols),
        conflicting,
        hours_fast=paths_taken[True],
        hours_strict=paths_taken[False],
    )


def merge_hours(hourly, path, tier):
    """Tier 3's hour row groups merged into one (``splice.compact``, or encoded again by pyarrow
    with ``PARQUET_SPLICE=0``), the hour file removed.

    The merge only makes the file better to copy and to read; the hour file is a valid file of
    the same rows. So if the merge fails, the day is published with its hour row groups (the
    bundle still takes it, a bounded number of row groups at a time) rather than not at all.
    """
    try:
        encoding.compact(hourly, path, tier, spliced=settings.PARQUET_SPLICE)
    except splice.SpliceError as exc:
        logger.warning("%s: merging the hour row groups failed (%s); publishing them as they are", tier, exc)
        Path(path).unlink(missing_ok=True)
        Path(hourly).replace(path)
        return False
    Path(hourly).unlink()
    return True


def parse_day(text):
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
