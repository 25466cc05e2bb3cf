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

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .leaf_profile import LeafProfile, kind_of
from .preview import preview_file

BATCH_BYTES = 8 * 1024 * 1024  # decoded bytes of a record batch (estimated from the footer)
GROUP_ROWS = 8192  # narrow columns are read together while a batch of them holds this many rows
WIDE_ROWS = 256  # and wide ones (a list's elements) while a batch holds this many
KEEP_BYTES = 16 * 1024 * 1024  # numbers of a column kept to bin once its range is known


# --- Leaves ----------------------------------------------------------------------------------------


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


class DecodeError(ValueError):
    """Columns of the file that decode to other rows than its footer counts."""


def _batches(parquet_file, group, batch_size):
    """(path, values, list lengths) of a group's leaves, a record batch at a time, to the last row:
    every row the footer counts must decode (so a profile is also a read-back of the whole file,
    which the daily build relies on: ``splice.Writer``'s ``decoded_later``). Arrow's memory pool
    gives back what the group held when it is done (a bundle is read a group at a time)."""
    columns = [leaf.parquet_path for leaf in group]
    decoded, rows = 0, parquet_file.metadata.num_rows
    for batch in parquet_file.iter_batches(batch_size=batch_size, columns=columns, use_threads=False):
        decoded += batch.num_rows
        yield from _table_leaves(batch)
    if decoded != rows:
        raise DecodeError(f"{columns[0]} and the columns read with it decode to {decoded} rows, not {rows}")
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


class ListRanges(dict):
    """{leaf path: (min, max)} of the number leaves inside lists (a day's price samples, which
    have no footer statistics), taken from the record batches as they are written: with them the
    file's profile bins those leaves in its one read, instead of reading them a second time."""

    def add(self, batch):
        for path, values, lengths in _table_leaves(batch):
            if lengths is None or kind_of(path, values.type) != "number":
                continue
            span = pc.min_max(values)
            low, high = span["min"].as_py(), span["max"].as_py()
            if low is not None:
                known = self.get(path)
                self[path] = (low, high) if known is None else (min(known[0], low), max(known[1], high))


def manifest_parts(path, *, preview=False, ranges=None):
    """The manifest keys this module adds: ``profile``, and ``preview`` for a daily file.
    ``ranges`` (one read, not two): for a bundle, ``ranges_of`` its days' profiles; for a day, its
    ``ListRanges``."""
    parts = {"profile": profile_file(path, ranges=ranges)}
    if preview:
        parts["preview"] = preview_file(path)
    return parts
