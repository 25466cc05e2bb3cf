"""Month-to-date bundles: every published day of a month, up to yesterday, in one Parquet file.

Built from the published daily files (never from the archive), so the bundle holds exactly what
subscribers could download day by day. Retention deletes daily files after 7 days, so days whose
daily file is gone are carried forward from the current bundle, which holds the same bytes' rows.

Streamed: daily row groups are read a few at a time (in a read-ahead thread, so decoding overlaps
encoding) and gathered into bundle row groups of ROW_GROUP_BYTES. Peak memory is a few tens of MB
of rows, whatever the number of days.
"""

import functools
import io
import queue
import tempfile
import threading
from contextlib import ExitStack, closing, suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.utils import timezone

from . import publish, storage
from .models import DailyFile, MonthBundle, month_end
from .tiers import SCHEMA_VERSION, Tier, schema_for

OUTCOMES = ("built", "unchanged", "no_days", "dry_run", "failed")
ROW_GROUP_BYTES = 32 * 1024 * 1024  # decoded bytes gathered into one bundle row group
READ_BYTES = 16 * 1024 * 1024  # decoded bytes of daily row groups read in one call
READ_AHEAD = 2  # reads decoded ahead of the writer


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
    day, so a failed run on the 1st is healed the next night instead of leaving a hole.
    """
    today = _today(today)
    tiers = [Tier(t) for t in (tiers or Tier.values)]
    current = month_start(today)
    previous = previous_month(current)
    months = []
    if today.day == 1:
        if any(published_days(tier, previous, month_end(previous)) for tier in tiers):
            months.append(previous)
    elif any(days_lacking(tier, previous) for tier in tiers):
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

    A live daily file is always included. A deleted one is included when the current bundle holds
    exactly that version: retention deletes daily files after 7 days, so from the 8th of a month
    on, the earlier days exist only in the bundle, and the bundle must carry them forward.
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


class _RowStream:
    """A Parquet file's rows in order, handed out a count at a time, one row group in memory."""

    def __init__(self, source):
        self.file = pq.ParquetFile(source, memory_map=False)
        self.next_group = 0
        self.pending = None

    def take(self, count):
        while count > 0:
            if self.pending is None or self.pending.num_rows == 0:
                if self.next_group >= self.file.num_row_groups:
                    raise MtdError("the current bundle has fewer rows than its manifest says")
                self.pending = self.file.read_row_group(self.next_group)
                self.next_group += 1
            chunk = self.pending.slice(0, count)
            self.pending = self.pending.slice(chunk.num_rows)
            count -= chunk.num_rows
            yield chunk

    def close(self):
        self.file.close()


class _BundleSource:
    """The current bundle, read forward once: days it holds are taken in date order, the days
    between them that are replaced by a newer daily file are skipped."""

    def __init__(self, bundle, workdir):
        self.bundle = bundle
        self.opened = ExitStack()
        try:
            fh, digest = self.opened.enter_context(storage.open_checked(bundle.key, workdir))
            _check_digest(digest, bundle.sha256, f"{bundle.tier} {bundle.month_label} current bundle")
            self.stream = _RowStream(fh)
        except BaseException:
            self.opened.close()
            raise
        self.entries = list(bundle.manifest.get("days", []))
        self.position = 0

    def rows_of(self, daily):
        iso = daily.date.isoformat()
        while self.position < len(self.entries) and self.entries[self.position]["date"] != iso:
            for _ in self.stream.take(self.entries[self.position]["row_count"]):
                pass
            self.position += 1
        if self.position == len(self.entries):
            raise MtdError(f"{daily.tier} {iso}: the current bundle's manifest does not list the day")
        entry = self.entries[self.position]
        self.position += 1
        if entry["row_count"] != daily.row_count:
            raise MtdError(
                f"{daily.tier} {iso}: the current bundle holds {entry['row_count']} rows, the day has {daily.row_count}"
            )
        yield from self.stream.take(entry["row_count"])

    def close(self):
        self.stream.close()
        self.opened.close()


def _row_group_runs(metadata, limit):
    """Consecutive row group indices, a run at a time, each run up to ``limit`` decoded bytes:
    one read call for several small row groups is faster than one call each."""
    run, size = [], 0
    for index in range(metadata.num_row_groups):
        run.append(index)
        size += metadata.row_group(index).total_byte_size
        if size >= limit:
            yield run
            run, size = [], 0
    if run:
        yield run


def _daily_rows(daily, workdir):
    """Row groups of one verified daily file (read in place on local storage, else downloaded)."""
    with storage.open_checked(daily.key, workdir) as (fh, digest):
        _check_digest(digest, daily.sha256, f"{daily.tier} {daily.date} daily file")
        with pq.ParquetFile(fh) as parquet:
            for run in _row_group_runs(parquet.metadata, READ_BYTES):
                yield parquet.read_row_groups(run, use_threads=False)


def _day_tables(days, source, workdir, schema):
    """Every day's rows in order as tables of the tier's schema, each day's count checked."""
    for day in days:
        daily = day.daily
        label = f"{daily.tier} {daily.date}"
        chunks = source.rows_of(daily) if day.from_bundle else _daily_rows(daily, workdir)
        rows = 0
        with closing(chunks):
            for chunk in chunks:
                table = conform(chunk, schema, label)
                rows += table.num_rows
                yield table
        if rows != daily.row_count:
            raise MtdError(f"{label}: file has {rows} rows, the published day says {daily.row_count}")


class _ReadAhead:
    """Runs a generator in a thread, at most ``depth`` items ahead of its consumer.

    pyarrow decodes and encodes without holding the GIL, so reading (download, verify, decode) the
    next row groups overlaps encoding the previous ones. Memory stays bounded by ``depth``.
    """

    _DONE = object()

    def __init__(self, generator, depth):
        self.generator = generator
        self.queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mtd-read-ahead", daemon=True)
        self.thread.start()

    def _put(self, item):
        while not self.stopped.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            with closing(self.generator):
                for item in self.generator:
                    if not self._put((item, None)):
                        return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((None, exc))
            return
        self._put((self._DONE, None))

    def __iter__(self):
        while True:
            item, error = self.queue.get()
            if error is not None:
                raise error
            if item is self._DONE:
                return
            yield item

    def close(self):
        self.stopped.set()
        while self.thread.is_alive():
            with suppress(queue.Empty):
                self.queue.get(timeout=0.1)
        self.thread.join()


@functools.cache
def _leaf_columns(tier):
    """The tier's Parquet leaf columns (path, physical type), from an empty file of its schema."""
    sink = io.BytesIO()
    pq.ParquetWriter(sink, schema_for(tier)).close()
    parquet_schema = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema
    return [(c.path, c.physical_type) for c in (parquet_schema.column(i) for i in range(len(parquet_schema)))]


def _dictionary_columns(tier):
    """String columns worth a dictionary: all but those inside a list of structs (the ~740 price
    sample timestamps of a row are all distinct, a dictionary only costs time there)."""
    return [path for path, kind in _leaf_columns(tier) if kind == "BYTE_ARRAY" and ".list.element." not in path]


def _statistics_columns(tier):
    """Columns whose min/max statistics help a reader skip row groups: not the price samples, whose
    min and max over a row group of thousands of samples filter nothing and cost time to write."""
    return [path for path, _ in _leaf_columns(tier) if ".list.element." not in path]


def _write_bundle(out, tier, days, bundle, workdir):
    """Stream every day into one writer of the tier's schema. Returns the row count.

    Daily row groups are small (~110 rows); the bundle gathers them into row groups of about
    ROW_GROUP_BYTES decoded, which is faster to write and to read and keeps the footer small.
    Memory is that buffer plus READ_AHEAD reads of READ_BYTES, whatever the number of days.
    """
    schema = schema_for(tier)
    source = _BundleSource(bundle, workdir) if any(day.from_bundle for day in days) else None
    total = 0
    try:
        reader = _ReadAhead(_day_tables(days, source, workdir, schema), READ_AHEAD)
        with (
            closing(reader),
            pq.ParquetWriter(
                out,
                schema=schema,
                compression="zstd",
                use_dictionary=_dictionary_columns(tier),
                write_statistics=_statistics_columns(tier),
            ) as writer,
        ):
            buffer, buffered = [], 0
            for table in reader:
                buffer.append(table)
                buffered += table.nbytes
                total += table.num_rows
                if buffered >= ROW_GROUP_BYTES:
                    writer.write_table(pa.concat_tables(buffer), row_group_size=sum(t.num_rows for t in buffer))
                    buffer, buffered = [], 0
            if buffer:
                writer.write_table(pa.concat_tables(buffer), row_group_size=sum(t.num_rows for t in buffer))
    finally:
        if source is not None:
            source.close()
    return total


def mtd_manifest(tier, first, start, end, dailies, rows, parquet_path, built_at):
    """The bundle's manifest (data contract section 3, MTD keys)."""
    included = [daily.date.isoformat() for daily in dailies]
    present = set(included)
    span = (end - start).days + 1
    return {
        **publish.manifest_header(tier, "mtd", f"{first:%Y-%m}", parquet_path, rows, built_at),
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
    }


def build_month(tier, month_start, *, today=None, dry_run=False, force=False):
    """Build and publish one tier's bundle for the month starting ``month_start``.

    Publishes nothing unless every day was read and verified; the MonthBundle row changes only
    after data and manifest are both in storage (``publish.publish_month``).
    """
    tier = Tier(tier).value
    first = month_start.replace(day=1)
    today = _today(today)
    start, end = coverage(first, today)
    result = MonthResult(tier=tier, month=first, outcome="no_days")
    if end < start:
        result.message = f"nothing due yet: the month starts {first}"
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
            rows = _write_bundle(out, tier, days, bundle, workdir)
            built_at = timezone.now()
            manifest = mtd_manifest(tier, first, start, end, dailies, rows, out, built_at)
            publish.publish_month(tier, first, out, manifest, built_at=built_at, consume=True)
        result.outcome = "built"
        result.rows = rows
        missing = len(manifest["days_missing"])
        result.message = f"{len(days)} days, {rows} rows, {manifest['parquet_size_bytes']} bytes" + (
            f", {missing} missing" if missing else ""
        )
    except Exception as exc:  # one tier's month fails alone; the run reports it and goes on
        result.outcome = "failed"
        known = isinstance(exc, MtdError | storage.StorageError)
        result.message = str(exc) if known else f"{type(exc).__name__}: {exc}"
    return result


def build_months(tiers=None, months=None, *, today=None, dry_run=False, force=False):
    """Bundle each month (default: ``months_to_build``) for each tier. Returns one result each."""
    today = _today(today)
    tiers = [Tier(t).value for t in (tiers or Tier.values)]
    months = [m.replace(day=1) for m in months] if months else months_to_build(today, tiers)
    return [build_month(tier, first, today=today, dry_run=dry_run, force=force) for first in months for tier in tiers]
