"""What a written Parquet file holds, for its manifest: a profile of every leaf column and a preview
of its first rows (``preview``). Computed at build time from the file itself, so the page never reads Parquet.

The file is streamed: a few columns at a time (the small ones together, the wide columns of tier
3's price samples, ~92% of a day, alone or in twos), in record batches of about BATCH_BYTES, so
memory does not depend on the size of a day or the number of days in a bundle. A histogram needs
its column's range before it counts: the footer's statistics give it for columns outside lists
(checked against the values read); a column inside a list is kept until it is read whole when it
is small (a day), else read a second time (a bundle).

Leaf paths are those of the manifest's ``coerced_values``: ``meta.added_ts``, ``spot_prices[].mid``.
Plain pyarrow (``pyarrow.compute``) throughout.
"""

import math
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .preview import preview_file

HISTOGRAM_BINS = 10
TOP_FREQUENCIES = 20
FREQUENCY_COLUMNS = frozenset({"symbol"})  # strings whose values are counted (bounded: ~300 symbols)
TIMESTAMP_SUFFIXES = ("_ts", "_utc", "_at")
BATCH_BYTES = 8 * 1024 * 1024  # decoded bytes of a record batch (estimated from the footer)
GROUP_ROWS = 8192  # narrow columns are read together while a batch of them holds this many rows
WIDE_ROWS = 256  # and wide ones (a list's elements) while a batch holds this many
KEEP_BYTES = 16 * 1024 * 1024  # numbers of a column kept to bin once its range is known


# --- Leaves ----------------------------------------------------------------------------------------


def is_timestamp(path):
    """A string leaf that holds ISO 8601 times, by the contract's naming (``ts``, ``*_ts``, ``*_utc``,
    ``*_at``)."""
    name = path.rsplit(".", 1)[-1].removesuffix("[]")
    return name == "ts" or name.endswith(TIMESTAMP_SUFFIXES)


def kind_of(path, type_):
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "timestamp" if is_timestamp(path) else "string"
    return "other"


def _schema_leaves(type_, path, in_list):
    if pa.types.is_struct(type_):
        for field in type_:
            yield from _schema_leaves(field.type, f"{path}.{field.name}", in_list)
    elif pa.types.is_list(type_) or pa.types.is_large_list(type_):
        yield from _schema_leaves(type_.value_type, f"{path}[]", True)
    else:
        yield path, type_, in_list


def schema_leaves(schema):
    """(path, Arrow type, inside a list) of every leaf, in file order."""
    for field in schema:
        yield from _schema_leaves(field.type, field.name, False)


def _array_leaves(values, path, lengths=None):
    """(path, values, lengths of the enclosing lists or None) of a column as read: a struct's nulls
    carry into its children (``flatten``), a list is profiled over its elements."""
    type_ = values.type
    if pa.types.is_struct(type_):
        for field, child in zip(type_, values.flatten(), strict=True):
            yield from _array_leaves(child, f"{path}.{field.name}", lengths)
    elif pa.types.is_list(type_) or pa.types.is_large_list(type_):
        yield from _array_leaves(pc.list_flatten(values), f"{path}[]", pc.list_value_length(values))
    else:
        yield path, values, lengths


def _table_leaves(table):
    for name, column in zip(table.column_names, table.columns, strict=True):
        yield from _array_leaves(column, name)


# --- Numbers as JSON -------------------------------------------------------------------------------


def _short(value):
    """A float to 6 significant digits (means, deviations, inner bin edges): enough to read."""
    return float(f"{value:.6g}")


def _plain(value):
    """A min or max as JSON: ints stay ints, floats stay exact."""
    return value.as_py() if isinstance(value, pa.Scalar) else value


# --- One leaf's running figures ------------------------------------------------------------------


class LeafProfile:
    """The running figures of one leaf over the batches read, and its profile at the end.

    A number column's histogram needs its range before it can count. ``hint`` is the range the
    footer's statistics give (binned as read, then checked against the range of the values); with
    ``keep`` the values are kept until the column is read whole; otherwise (or when the hint was
    wrong) ``needs_second_read`` is true and ``add_to_histogram`` is given the values again.
    """

    def __init__(self, path, type_, in_list, *, hint=None, keep=False):
        self.path, self.type, self.in_list = path, type_, in_list
        self.kind = kind_of(path, type_)
        self.count = self.nulls = 0
        self.lengths = None  # (min, max) list length, over non-null lists
        self.null_lists = 0
        # numbers: running n, mean and sum of squared deviations (Chan et al.), min, max
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.low = self.high = None
        self.non_finite = 0
        self.bins = [0] * HISTOGRAM_BINS
        self.hint = hint if self.kind == "number" else None
        self.kept = [] if keep and self.kind == "number" and hint is None else None
        self.binned = False
        self.true_count = 0
        self.frequencies = Counter() if path in FREQUENCY_COLUMNS else None

    def add(self, values, lengths=None):
        """Take in one batch of values (and the lengths of the lists they come from)."""
        self.count += len(values)
        self.nulls += values.null_count
        if lengths is not None:
            self.null_lists += lengths.null_count
            self._widen_lengths(pc.min_max(lengths))
        if self.kind == "number":
            finite, mean = self._finite(values)
            self._add_numbers(finite, mean)
            if self.hint is not None:
                self._bin(finite, *self.hint)
            elif self.kept is not None:
                self.kept.append(finite)
        elif self.kind == "bool":
            self.true_count += pc.sum(values).as_py() or 0
        elif self.kind == "timestamp":
            # ISO 8601 text of one format sorts as its times do: no parsing needed
            span = pc.min_max(values)
            self._widen(_plain(span["min"]), _plain(span["max"]))
        elif self.kind == "string":
            span = pc.min_max(pc.utf8_length(values))
            self._widen(_plain(span["min"]), _plain(span["max"]))
            if self.frequencies is not None:
                for item in pc.value_counts(values.drop_null()).to_pylist():
                    self.frequencies[item["values"]] += item["counts"]

    def finish_first_read(self):
        """The column has been read once: count its histogram if that is possible now."""
        if self.kind != "number":
            return
        if self.hint is not None and self.hint == (self.low, self.high):
            self.binned = True
        elif self.kept is not None:
            self.bins = [0] * HISTOGRAM_BINS
            for values in self.kept:
                self._bin(values, self.low, self.high)
            self.binned = True
        self.kept = None

    @property
    def needs_second_read(self):
        return self.kind == "number" and not self.binned and self.low is not None and self.low != self.high

    def add_to_histogram(self, values):
        """Bin a batch of the second read (the range is final)."""
        if self.hint is not None:  # the footer's range was not the values' own
            self.bins, self.hint = [0] * HISTOGRAM_BINS, None
        self._bin(self._finite(values, counted=True)[0], self.low, self.high)

    def _widen_lengths(self, span):
        low, high = _plain(span["min"]), _plain(span["max"])
        if low is None:
            return
        if self.lengths is None:
            self.lengths = (low, high)
        else:
            self.lengths = (min(self.lengths[0], low), max(self.lengths[1], high))

    def _widen(self, low, high):
        if low is None:
            return
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _finite(self, values, *, counted=False):
        """(values, mean): the values without nulls, NaN and infinities (counted apart, unless
        ``counted`` already: JSON cannot hold them), and their mean (None without values). A finite
        mean means there is nothing to take out, so the usual case costs one pass, not three."""
        if values.null_count:
            values = values.drop_null()
        if not len(values):
            return values, None
        mean = pc.mean(values).as_py()
        if pa.types.is_floating(values.type) and not math.isfinite(mean):
            finite = pc.is_finite(values)
            kept = pc.sum(finite).as_py() or 0
            if kept != len(values):
                if not counted:
                    self.non_finite += len(values) - kept
                values = values.filter(finite)
                mean = pc.mean(values).as_py() if kept else None
        return values, mean

    def _add_numbers(self, values, mean):
        n = len(values)
        if n == 0:
            return
        span = pc.min_max(values)
        self._widen(_plain(span["min"]), _plain(span["max"]))
        m2 = pc.variance(values, ddof=0).as_py() * n
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def _bin(self, values, low, high):
        """Equal-width bins over [low, high]; the top edge belongs to the last bin."""
        if low is None or low == high or len(values) == 0 or not math.isfinite(high - low):
            return
        scale = HISTOGRAM_BINS / (high - low)
        if not pa.types.is_float64(values.type):
            values = pc.cast(values, pa.float64(), safe=False)  # an int64 beyond 2^53 bins by its nearest double
        offsets = pc.multiply(pc.subtract(values, float(low)), scale)
        index = pc.cast(offsets, pa.int64(), safe=False)  # offsets are >= 0: truncation is floor
        for item in pc.value_counts(index).to_pylist():
            self.bins[min(max(item["values"], 0), HISTOGRAM_BINS - 1)] += item["counts"]

    def result(self):
        out = {
            "type": str(self.type),
            "kind": self.kind,
            "count": self.count,
            "null_count": self.nulls,
            "null_proportion": round(self.nulls / self.count, 6) if self.count else 0.0,
        }
        if self.in_list:
            low, high = self.lengths or (None, None)
            out["list_length"] = {"min": low, "max": high}
            out["null_lists"] = self.null_lists
        if self.kind == "number":
            out.update(self._number_result())
        elif self.kind == "bool":
            out["true_count"] = self.true_count
        elif self.kind == "timestamp":
            out["min"], out["max"] = self.low, self.high
        elif self.kind == "string":
            out["length"] = {"min": self.low, "max": self.high}
            if self.frequencies is not None:
                ranked = sorted(self.frequencies.items(), key=lambda item: (-item[1], item[0]))
                out["distinct"] = len(self.frequencies)
                out["frequencies"] = [{"value": value, "count": n} for value, n in ranked[:TOP_FREQUENCIES]]
        return out

    def _number_result(self):
        out = {"min": self.low, "max": self.high, "mean": None, "std": None, "histogram": None}
        if self.non_finite:
            out["non_finite_count"] = self.non_finite
        if self.n == 0:
            return out
        out["mean"] = _short(self.mean)
        out["std"] = _short(math.sqrt(self.m2 / self.n))
        if self.low == self.high:
            out["histogram"] = {"edges": [self.low, self.high], "counts": [self.n]}
            return out
        width = (self.high - self.low) / HISTOGRAM_BINS
        inner = [_short(self.low + width * i) for i in range(1, HISTOGRAM_BINS)]
        out["histogram"] = {"edges": [self.low, *inner, self.high], "counts": list(self.bins)}
        return out


# --- A file's profile ------------------------------------------------------------------------------


@dataclass
class _Leaf:
    path: str
    type: pa.DataType
    in_list: bool
    parquet_path: str
    bytes: int  # uncompressed, whole file
    hint: tuple | None  # (min, max) from the footer's statistics


def _footer_range(metadata, index):
    """(min, max) of a column from every row group's statistics, or None if one lacks them."""
    low = high = None
    for group in range(metadata.num_row_groups):
        chunk = metadata.row_group(group).column(index)
        stats = chunk.statistics
        if chunk.num_values == 0 or (stats is not None and stats.null_count == chunk.num_values):
            continue  # nothing but nulls here
        if stats is None or not stats.has_min_max:
            return None
        low = stats.min if low is None else min(low, stats.min)
        high = stats.max if high is None else max(high, stats.max)
    return None if low is None else (low, high)


def _file_leaves(parquet_file, ranges):
    metadata = parquet_file.metadata
    schema = parquet_file.schema
    leaves = list(schema_leaves(parquet_file.schema_arrow))
    if len(schema) != len(leaves):
        raise ValueError(f"{len(schema)} Parquet leaves, {len(leaves)} in the Arrow schema")
    out = []
    for index, (path, type_, in_list) in enumerate(leaves):
        size = sum(metadata.row_group(g).column(index).total_uncompressed_size for g in range(metadata.num_row_groups))
        numeric = kind_of(path, type_) == "number"
        out.append(
            _Leaf(
                path,
                type_,
                in_list,
                schema.column(index).path,
                size,
                (_footer_range(metadata, index) or ranges.get(path)) if numeric else None,
            )
        )
    return out


def _read_groups(leaves, rows):
    """[(leaves, batch size in rows)]: consecutive leaves read together. Narrow leaves go together
    while a batch of them holds GROUP_ROWS rows (few batches: few calls a leaf), wide ones (a list's
    elements) while a batch holds WIDE_ROWS (decoded side by side on Arrow's threads); a leaf wider
    than that alone. A batch is about BATCH_BYTES decoded."""
    rows = max(rows, 1)
    groups = []  # [wide, bytes a row, leaves]
    for leaf in leaves:
        cost = leaf.bytes / rows
        wide = cost * GROUP_ROWS > BATCH_BYTES
        limit = BATCH_BYTES / (WIDE_ROWS if wide else GROUP_ROWS)
        if groups and groups[-1][0] == wide and groups[-1][1] + cost <= limit:
            groups[-1][1] += cost
            groups[-1][2].append(leaf)
        else:
            groups.append([wide, cost, [leaf]])
    return [(group, max(1, min(rows, int(BATCH_BYTES / max(width, 1.0))))) for _, width, group in groups]


def _batches(parquet_file, group, batch_size):
    """(path, values, list lengths) of a group's leaves, a record batch at a time. Arrow's memory
    pool gives back what the group held when it is done (a bundle is read a group at a time)."""
    columns = [leaf.parquet_path for leaf in group]
    for batch in parquet_file.iter_batches(batch_size=batch_size, columns=columns, use_threads=False):
        yield from _table_leaves(batch)
    pa.default_memory_pool().release_unused()


def profile_file(source, *, ranges=None):
    """{leaf path: profile} of a Parquet file (a path or an open file): see the module's docstring.

    ``ranges``: {leaf path: (min, max)} expected of number columns the footer has no statistics
    for (a bundle's price samples, from its days' profiles: ``ranges_of``). Like the footer's,
    they only let a histogram count in the first read, and are checked against the values read.
    """
    # pre_buffer off: the reader fetches the column chunks of the row group being read, not of all
    parquet_file = pq.ParquetFile(source, pre_buffer=False)
    leaves = _file_leaves(parquet_file, ranges or {})
    rows = parquet_file.metadata.num_rows
    profiles = {}
    for group, batch_size in _read_groups(leaves, rows):
        kept = 0
        for leaf in group:
            keep = leaf.hint is None and kept + leaf.bytes <= KEEP_BYTES
            kept += leaf.bytes if keep else 0
            profiles[leaf.path] = LeafProfile(leaf.path, leaf.type, leaf.in_list, hint=leaf.hint, keep=keep)
        for path, values, lengths in _batches(parquet_file, group, batch_size):
            profiles[path].add(values, lengths)
        for leaf in group:
            profiles[leaf.path].finish_first_read()
    again = [leaf for leaf in leaves if profiles[leaf.path].needs_second_read]
    for group, batch_size in _read_groups(again, rows):
        for path, values, _ in _batches(parquet_file, group, batch_size):
            profiles[path].add_to_histogram(values)
    return {leaf.path: profiles[leaf.path].result() for leaf in leaves}


def ranges_of(profiles):
    """{leaf path: (min, max)} of number columns over several files' profiles (the days of a
    bundle), or {} when one of them has no profile. A file whose column is all null adds nothing."""
    profiles = list(profiles)
    if not profiles or any(not profile for profile in profiles):
        return {}
    ranges = {}
    for path, figures in profiles[0].items():
        if figures.get("kind") != "number":
            continue
        spans = [(p.get(path) or {}).get("min") for p in profiles], [(p.get(path) or {}).get("max") for p in profiles]
        lows, highs = [v for v in spans[0] if v is not None], [v for v in spans[1] if v is not None]
        if lows and highs:
            ranges[path] = (min(lows), max(highs))
    return ranges


def manifest_parts(path, *, preview=False, day_profiles=None):
    """The manifest keys this module adds: ``profile``, and ``preview`` for a daily file.
    ``day_profiles``: for a bundle, the profiles of its days (``ranges_of``: one read, not two)."""
    parts = {"profile": profile_file(path, ranges=ranges_of(day_profiles) if day_profiles else None)}
    if preview:
        parts["preview"] = preview_file(path)
    return parts
