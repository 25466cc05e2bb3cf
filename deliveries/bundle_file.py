"""One month-to-date bundle's Parquet file, written from the days' verified files: each day's row
groups copied byte for byte (``parquet.splice``), or its rows conformed to the tier's schema and
encoded again, and days retention has delisted carried forward from the current bundle. ``mtd``
decides which days go in and publishes the file.
"""

from contextlib import ExitStack
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from . import storage
from .models import DailyFile
from .parquet import encoding, splice


class MtdError(Exception):
    """A month cannot be bundled as it stands (bad daily file); nothing was published."""


@dataclass
class BundleDay:
    """One day going into a bundle and where its rows come from: its daily file, or the current
    bundle when retention has already deleted the daily file (the bundle then carries it forward)."""

    daily: DailyFile
    from_bundle: bool


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


def write_bundle(out, tier, days, bundle, workdir, *, spliced=True):
    """Every day's rows, in date order, in one Parquet file of the tier's schema.
    Returns (rows, sha256).

    A day is its daily file's row groups (one a day, see ``build``) copied byte for byte with
    ``splice``; only files that do not have the tier's exact schema or writer are decoded and
    encoded again. Memory is a copy buffer and, at most, a row group being encoded again, whatever
    the days (not ``spliced``, ``PARQUET_SPLICE=0``: every day is encoded again, a day's rows in memory).
    """
    layout = encoding.layout(tier)
    with ExitStack() as stack:
        writer = stack.enter_context(encoding.writer(out, tier, spliced=spliced))
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
