"""Parquet files assembled from other Parquet files' column chunks, byte for byte.

Why: decoding and encoding again a day of price samples costs seconds of CPU; copying its
compressed pages costs milliseconds. The daily builder writes an hour per row group (its memory
stays at an hour's rows) and then merges the hours into one row group per day here; the
month-to-date bundle is then the days' row groups copied one after the other under a new footer.

Two ways to move a column chunk:
- copied whole: its bytes, and its metadata with the page offsets moved (dictionary pages and
  statistics included);
- concatenated with the same column's chunks of the following row groups, into one chunk: allowed
  when none of them has a dictionary page or statistics (its pages then stand on their own) and all
  share the codec.
Fields (top-level columns) whose chunks cannot be concatenated are decoded and encoded again by
pyarrow, for a group of row groups at a time; their new chunks are then copied whole. Groups are
chosen (``splice_plan``) so that this never holds more than ``SIDE_BYTES`` of decoded data.

The footer is written with ``thrift``; everything else about the file (schema, Arrow schema,
column orders, writer version) comes from an empty file pyarrow wrote with the same schema. So a
spliced file says it was written by the installed pyarrow (``created_by``), and chunks are copied
only from files that say the same (``footer.Layout.refusal``): readers work around known bugs of a writer
version by that field, and a chunk must not claim another writer than its own.

Fenced in three ways: a file written here is read back by Arrow, every row group decoded, before
anybody publishes it (``readback.check_reads_back``; or by the caller, when it decodes the whole
file anyway: ``decoded_later``); ``PARQUET_SPLICE=0`` makes the callers use
``encoding.EncodingWriter`` instead, which writes the same rows with pyarrow alone; and the tests
read every tier's files with DuckDB as well as pyarrow.
"""

import hashlib
import io
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import thrift
from .footer import (
    CHUNK_FILE_OFFSET,
    CHUNK_META,
    FILE_NUM_ROWS,
    FILE_ROW_GROUPS,
    MAGIC,
    META_CODEC,
    META_COMPRESSED,
    META_DATA_PAGE,
    META_DICTIONARY_PAGE,
    META_ENCODING_STATS,
    META_ENCODINGS,
    META_KEY_VALUE,
    META_NUM_VALUES,
    META_PATH,
    META_SIZE_STATISTICS,
    META_STATISTICS,
    META_TYPE,
    META_UNCOMPRESSED,
    RG_COLUMNS,
    RG_FILE_OFFSET,
    RG_NUM_ROWS,
    RG_TOTAL_BYTE_SIZE,
    RG_TOTAL_COMPRESSED,
    Source,
    SpliceError,
    chunk_meta,
)
from .readback import check_reads_back
from .splice_plan import plan_runs
from .thrift import I32, I64, LIST, STRUCT, Struct

RUN_BYTES = 256 * 1024 * 1024  # decoded bytes of source row groups merged into one row group
SIDE_BYTES = 32 * 1024 * 1024  # decoded bytes of fields encoded again at a time
COPY_BLOCK = 8 * 1024 * 1024
ENCODE_BYTES = 32 * 1024 * 1024  # decoded bytes a row group of rows that must be encoded (``encode``)
# Metadata kept when a chunk is copied whole: everything but what points outside the chunk (page
# indexes, bloom filters, which are not copied) and the offsets, which are moved.
KEPT_WHOLE = {
    META_TYPE,
    META_ENCODINGS,
    META_PATH,
    META_CODEC,
    META_NUM_VALUES,
    META_UNCOMPRESSED,
    META_COMPRESSED,
    META_KEY_VALUE,
    META_STATISTICS,
    META_ENCODING_STATS,
    META_SIZE_STATISTICS,
    17,  # geospatial statistics
}


def _extent(meta):
    """(first byte, length) of a chunk's pages in its file."""
    starts = [meta.value(META_DATA_PAGE)]
    if meta.value(META_DICTIONARY_PAGE, 0) > 0:
        starts.append(meta.value(META_DICTIONARY_PAGE))
    return min(starts), meta.value(META_COMPRESSED)


def _merged_encoding_stats(metas):
    if not all(META_ENCODING_STATS in meta for meta in metas):
        return None
    counts = {}
    for meta in metas:
        for entry in meta.value(META_ENCODING_STATS)[1]:
            key = (entry.value(1), entry.value(2))
            counts[key] = counts.get(key, 0) + entry.value(3)
    stats = [
        Struct({1: (I32, kind), 2: (I32, encoding), 3: (I32, count)}) for (kind, encoding), count in counts.items()
    ]
    return (LIST, (STRUCT, stats))


def _merged_size_statistics(metas):
    """Size statistics summed (byte counts, level histograms), when every chunk has the same kind."""
    if not all(META_SIZE_STATISTICS in meta for meta in metas):
        return None
    parts = [meta.value(META_SIZE_STATISTICS) for meta in metas]
    if any(set(part) != set(parts[0]) for part in parts):
        return None
    merged = Struct()
    for field_id, (wire_type, first) in parts[0].items():
        if wire_type == I64:
            merged.set(field_id, I64, sum(part.value(field_id) for part in parts))
        elif wire_type == LIST and first[0] == I64:
            lists = [part.value(field_id)[1] for part in parts]
            if any(len(values) != len(lists[0]) for values in lists):
                return None
            merged.set(field_id, LIST, (I64, [sum(column) for column in zip(*lists, strict=True)]))
        else:
            return None
    return (STRUCT, merged)


class Writer:
    """A Parquet file written row group by row group from other files' column chunks.

    The SHA-256 and size of the bytes written come for free (``close``): no second read.

    ``decoded_later``: the caller decodes every row of the file before anybody publishes it (the
    daily build profiles it, ``profile.profile_file``), so the read-back decodes the merged row
    groups to their first row only, as it does chunks copied whole, instead of decoding them twice.
    """

    def __init__(self, path, layout, *, decoded_later=False):
        self.path = path
        self.layout = layout
        self.decoded_later = decoded_later
        self.out = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.digest = hashlib.sha256()
        self.position = 0
        self.row_groups = []
        self.group_rows = []  # rows of each row group written
        self.merged = []  # of each row group written: holds a chunk concatenated from several
        self.rows = 0
        self._write(MAGIC)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.out.close()

    def _write(self, data):
        self.out.write(data)
        self.digest.update(data)
        self.position += len(data)

    def _copy(self, source, start, length):
        if start < 4 or start + length > source.fh.size():
            raise SpliceError("column chunk lies outside its file")
        end = start + length
        while start < end:
            block = source.fh.read_at(min(COPY_BLOCK, end - start), start)
            if not len(block):
                raise SpliceError("column chunk shorter than its metadata says")
            self._write(block)
            start += len(block)

    def _copy_whole(self, source, chunk):
        meta = chunk_meta(chunk)
        start, length = _extent(meta)
        new_start = self.position
        self._copy(source, start, length)
        moved = Struct({k: v for k, v in meta.items() if k in KEPT_WHOLE})
        moved.set(META_DATA_PAGE, I64, meta.value(META_DATA_PAGE) - start + new_start)
        if meta.value(META_DICTIONARY_PAGE, 0) > 0:
            moved.set(META_DICTIONARY_PAGE, I64, meta.value(META_DICTIONARY_PAGE) - start + new_start)
        return moved

    def _concatenate(self, source, chunks):
        metas = [chunk_meta(chunk) for chunk in chunks]
        new_start = self.position
        for meta in metas:
            self._copy(source, *_extent(meta))
        first = metas[0]
        encodings = list(dict.fromkeys(e for meta in metas for e in meta.value(META_ENCODINGS)[1]))
        merged = Struct(
            {
                META_TYPE: first[META_TYPE],
                META_ENCODINGS: (LIST, (I32, encodings)),
                META_PATH: first[META_PATH],
                META_CODEC: first[META_CODEC],
                META_NUM_VALUES: (I64, sum(meta.value(META_NUM_VALUES) for meta in metas)),
                META_UNCOMPRESSED: (I64, sum(meta.value(META_UNCOMPRESSED) for meta in metas)),
                META_COMPRESSED: (I64, sum(meta.value(META_COMPRESSED) for meta in metas)),
                META_DATA_PAGE: (I64, new_start),
            }
        )
        for field_id, value in (
            (META_ENCODING_STATS, _merged_encoding_stats(metas)),
            (META_SIZE_STATISTICS, _merged_size_statistics(metas)),
        ):
            if value is not None:
                merged[field_id] = value
        return merged

    def _encode_again(self, source, groups, field_indexes):
        """The listed fields of some row groups, decoded and encoded into one row group."""
        names = [self.layout.fields[i][0] for i in sorted(field_indexes)]
        table = source.parquet.read_row_groups(groups, columns=names, use_threads=False)
        schema = pa.schema([self.layout.schema.field(name) for name in names])
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, schema, **self.layout.options_for(names)) as writer:
            writer.write_table(table.cast(schema), row_group_size=max(table.num_rows, 1))
        del table
        encoded = Source(pa.BufferReader(sink.getvalue()))
        if encoded.num_row_groups != 1:
            raise SpliceError("re-encoded fields did not make exactly one row group")
        return encoded

    def add_run(self, source, groups, side=(), row_groups=None):
        """One row group from consecutive row groups of ``source``; ``side`` names the fields (by
        index in the layout) to encode again, the others are copied or concatenated.
        ``row_groups``: the groups' metadata when the caller has parsed it already."""
        row_groups = row_groups or [source.row_groups[group] for group in groups]
        rows = sum(row_group.value(RG_NUM_ROWS) for row_group in row_groups)
        if rows == 0:
            return
        encoded = self._encode_again(source, groups, side) if side else None
        encoded_leaves = {}
        if encoded is not None:
            paths = [tuple(chunk_meta(chunk).value(META_PATH)[1]) for chunk in encoded.chunks(0)]
            encoded_leaves = dict(
                zip((tuple(p.decode() for p in path) for path in paths), encoded.chunks(0), strict=True)
            )
            if encoded.rows(0) != rows:
                raise SpliceError("re-encoded fields have a different number of rows")
        per_group = [row_group.value(RG_COLUMNS)[1] for row_group in row_groups]
        start = self.position
        columns = []
        for field_index, (_, leaves) in enumerate(self.layout.fields):
            for leaf in leaves:
                if field_index in side:
                    meta = self._copy_whole(encoded, encoded_leaves[self.layout.leaf_paths[leaf]])
                elif len(groups) == 1:
                    meta = self._copy_whole(source, per_group[0][leaf])
                else:
                    meta = self._concatenate(source, [chunks[leaf] for chunks in per_group])
                columns.append(Struct({CHUNK_FILE_OFFSET: (I64, 0), CHUNK_META: (STRUCT, meta)}))
        row_group = Struct(
            {
                RG_COLUMNS: (LIST, (STRUCT, columns)),
                RG_TOTAL_BYTE_SIZE: (I64, sum(c.value(CHUNK_META).value(META_UNCOMPRESSED) for c in columns)),
                RG_NUM_ROWS: (I64, rows),
                RG_FILE_OFFSET: (I64, start),
                RG_TOTAL_COMPRESSED: (I64, self.position - start),
            }
        )
        self.row_groups.append(thrift.Raw(thrift.dumps(row_group)))
        self.group_rows.append(rows)
        self.merged.append(len(groups) > 1)
        self.rows += rows

    def add(self, source, groups=None):
        """Row groups of ``source`` (default all), merged as far as ``plan_runs`` allows."""
        refusal = self.layout.refusal(source)
        if refusal:
            raise SpliceError(refusal)
        groups = range(source.num_row_groups) if groups is None else groups
        for run, side, row_groups in plan_runs(source, groups, self.layout, run_bytes=RUN_BYTES, side_bytes=SIDE_BYTES):
            self.add_run(source, run, side, row_groups)

    def encode(self, tables):
        """Rows that cannot be copied as they are (tables of the layout's schema: the caller
        conforms them), encoded by pyarrow into a scratch file beside the output, a row group of
        about ``ENCODE_BYTES`` at a time, then copied from it."""
        scratch = Path(self.path).with_name(Path(self.path).name + ".encoded")
        try:
            with pq.ParquetWriter(scratch, self.layout.schema, **self.layout.options) as encoder:
                for table in gathered(tables, ENCODE_BYTES):
                    encoder.write_table(table, row_group_size=max(table.num_rows, 1))
            with pa.OSFile(str(scratch), "r") as fh:
                source = Source(fh)
                for group in range(source.num_row_groups):  # already ENCODE_BYTES each
                    self.add_run(source, [group])
        finally:
            scratch.unlink(missing_ok=True)

    def close(self):
        """Write the footer; returns (sha256 hex, size in bytes, rows)."""
        self.data_end = self.position
        footer = self.layout.template.copy()
        footer.set(FILE_NUM_ROWS, I64, self.rows)
        footer.set(FILE_ROW_GROUPS, LIST, (STRUCT, self.row_groups))
        data = thrift.dumps(footer)
        self._write(data)
        self._write(struct.pack("<I", len(data)))
        self._write(MAGIC)
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        in_full = [False] * len(self.merged) if self.decoded_later else self.merged
        check_reads_back(self.path, self.layout, self.group_rows, in_full=in_full, data_end=self.data_end)
        return self.digest.hexdigest(), self.position, self.rows


def gathered(tables, limit):
    """Consecutive tables joined into tables of about ``limit`` decoded bytes."""
    buffer, buffered = [], 0
    for table in tables:
        buffer.append(table)
        buffered += table.nbytes
        if buffered >= limit:
            yield pa.concat_tables(buffer)
            buffer, buffered = [], 0
    if buffer:
        yield pa.concat_tables(buffer)


def compact(path, out, layout, writer=Writer, *, decoded_later=False):
    """Rewrite the Parquet file ``path`` as ``out`` with its row groups merged (``plan_runs``), by
    ``writer`` (``Writer``, or ``encoding.EncodingWriter``). Returns (sha256 hex, size, rows).
    ``decoded_later``: see ``Writer``."""
    with pa.OSFile(str(path), "r") as fh, writer(out, layout, decoded_later=decoded_later) as written:
        written.add(Source(fh))
        return written.close()
