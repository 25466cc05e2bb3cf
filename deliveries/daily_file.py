"""One day's Parquet file for each tier (what its DailyFile rows publish), written from the
archive's hour files; ``build`` decides which days to write and publishes what is written.

The day is read one hour file at a time; tier 3 is shaped from each hour's entries and written as
one row group, and tiers 2 and 1 are projected from that same batch. Tier 3's hours are then
merged into one row group for the day (``splice.compact``: the price samples' pages are copied,
only the small columns are encoded again), which is what lets the month-to-date bundle copy days
instead of re-encoding them. Memory follows one hour file.
"""

import contextlib
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from django.conf import settings

from . import publish
from .parquet import archive, encoding, fastjson, profile, splice
from .parquet.read_ahead import read_ahead
from .parquet.shaping import Coercions, project, shape_tier3
from .tiers import TIER_COLUMNS, Tier, schema_for

logger = logging.getLogger("deliveries.build")  # a day's build logs under one name, written or published


@dataclass
class WrittenDay:
    """What ``write_day_files`` wrote: each tier's file and the day's counts, for the manifests."""

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
    profiles: dict = field(default_factory=dict)  # tier -> the manifest's profile and preview

    def profile_files(self):
        """Read each written file back for its manifest's profile and preview, now: in a backfill
        this runs in the worker that wrote the day, so the command itself decodes nothing."""
        for tier in self.paths:
            self.manifest_parts(tier)
        return self

    def manifest_parts(self, tier):
        if tier not in self.profiles:
            self.profiles[tier] = profile.manifest_parts(self.paths[tier], preview=True)
        return self.profiles[tier]

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
            **self.manifest_parts(tier),
        }


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
    ranges = profile.ListRanges()  # tier 3's, for its profile: one read of the merged file
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
                    ranges.add(batch)
                else:
                    buffered[tier].append(project(batch, tier))
        for tier, batches in buffered.items():
            if batches:
                writers[tier].write_table(pa.Table.from_batches(batches, schema=schema_for(tier)))
    finally:
        hours.close()  # a reader still running ahead stops before its next hour
        for writer in writers.values():
            writer.close()
    del buffered, hours  # written: what the merge and the profile hold is all that is held
    batch = None
    profiles = {}
    for tier in tiers:
        if hourly[tier] != paths[tier]:
            parts = merge_hours(hourly[tier], paths[tier], tier, ranges=ranges)
            if parts is not None:
                profiles[tier] = parts
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
        profiles=profiles,
    )


def merge_hours(hourly, path, tier, *, ranges=None):
    """Tier 3's hour row groups merged into one (``splice.compact``, or encoded again by pyarrow
    with ``PARQUET_SPLICE=0``), the hour file removed; returns the merged file's manifest parts.

    Profiling decodes every row of the file (``profile``), so it is also the merged row group's
    read-back: the merge itself only reads back its footer and first row (``decoded_later``), and
    the day is decoded once, not twice. The merge only makes the file better to copy and to read;
    the hour file is a valid file of the same rows. So if the merge fails, or its file does not
    decode, the day is published with its hour row groups (the bundle still takes it, a bounded
    number of row groups at a time) rather than not at all, and None is returned: that file is
    profiled as any other. ``ranges``: the file's ``profile.ListRanges``.
    """
    try:
        encoding.compact(hourly, path, tier, spliced=settings.PARQUET_SPLICE, decoded_later=True)
        parts = profile.manifest_parts(path, preview=True, ranges=ranges)
    except (splice.SpliceError, profile.DecodeError, pa.ArrowException) as exc:
        logger.warning("%s: merging the hour row groups failed (%s); publishing them as they are", tier, exc)
        Path(path).unlink(missing_ok=True)
        Path(hourly).replace(path)
        return None
    Path(hourly).unlink()
    return parts
