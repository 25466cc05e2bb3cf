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
chosen so that this never holds more than ``SIDE_BYTES`` of decoded data.

The footer is written with ``thrift``; everything else about the file (schema, Arrow schema,
column orders, writer version) comes from an empty file pyarrow wrote with the same schema. So a
spliced file says it was written by the installed pyarrow (``created_by``), and chunks are copied
only from files that say the same (``Layout.refusal``): readers work around known bugs of a writer
version by that field, and a chunk must not claim another writer than its own.

Fenced in three ways: a file written here is read back by Arrow, every row group decoded, before
anybody publishes it (``check_reads_back``); ``PARQUET_SPLICE=0`` makes the callers use
``encoding.EncodingWriter`` instead, which writes the same rows with pyarrow alone; and the tests
read every tier's files with DuckDB as well as pyarrow.
"""

import hashlib
import io
import os
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import thrift
from .thrift import I32, I64, LIST, STRUCT, Struct

MAGIC = b"PAR1"
RUN_BYTES = 256 * 1024 * 1024  # decoded bytes of source row groups merged into one row group
SIDE_BYTES = 32 * 1024 * 1024  # decoded bytes of fields encoded again at a time
COPY_BLOCK = 8 * 1024 * 1024
ENCODE_BYTES = 32 * 1024 * 1024  # decoded bytes a row group of rows that must be encoded (``encode``)
READ_BACK_BYTES = 4 * 1024 * 1024  # decoded bytes a batch when a written file is read back
READ_BACK_BUFFER = 64 * 1024  # bytes read at a time for each column while reading back

# Parquet's thrift field ids (parquet.thrift).
FILE_SCHEMA, FILE_NUM_ROWS, FILE_ROW_GROUPS, FILE_CREATED_BY = 2, 3, 4, 6
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_FILE_OFFSET, RG_TOTAL_COMPRESSED = 1, 2, 3, 5, 6
CHUNK_FILE_PATH, CHUNK_FILE_OFFSET, CHUNK_META, CHUNK_CRYPTO, CHUNK_ENCRYPTED_META = 1, 2, 3, 8, 9
(META_TYPE, META_ENCODINGS, META_PATH, META_CODEC, META_NUM_VALUES, META_UNCOMPRESSED, META_COMPRESSED) = range(1, 8)
META_KEY_VALUE, META_DATA_PAGE, META_INDEX_PAGE, META_DICTIONARY_PAGE, META_STATISTICS = 8, 9, 10, 11, 12
META_ENCODING_STATS, META_BLOOM_OFFSET, META_BLOOM_LENGTH, META_SIZE_STATISTICS = 13, 14, 15, 16
SCHEMA_TYPE, SCHEMA_NAME, SCHEMA_NUM_CHILDREN = 1, 4, 5
COLUMN_META_DEPTH = 3  # RowGroup (0) > columns list > ColumnChunk (2) > ColumnMetaData (3)
DICTIONARY_ENCODINGS = {2, 8}  # PLAIN_DICTIONARY, RLE_DICTIONARY
CODECS = {"none": 0, "snappy": 1, "gzip": 2, "lzo": 3, "brotli": 4, "lz4": 7, "zstd": 6}  # writer name -> Parquet's
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


class SpliceError(Exception):
    """A source file this module cannot take column chunks from as they are."""


def read_footer(fh):
    """The FileMetaData Struct of an open Arrow file (``read_at``/``size``); its row groups are
    parsed when asked for (``thrift.LazyStructs``)."""
    size = fh.size()
    if size < 12:
        raise SpliceError("not a Parquet file: too short")
    tail = bytes(fh.read_at(8, size - 8))
    if tail[4:] != MAGIC:
        raise SpliceError("not a plain Parquet file (no PAR1 footer; encrypted?)")
    length = struct.unpack("<I", tail[:4])[0]
    if length > size - 12:
        raise SpliceError("Parquet footer longer than the file")
    raw = fh.read_at(length, size - 8 - length)
    try:
        # Row groups are parsed when asked for; in them, a column chunk's statistics, size and
        # encoding statistics and such stay encoded: they are copied, seldom read.
        footer, used = thrift.loads(raw, lazy={FILE_ROW_GROUPS}, raw_depth=COLUMN_META_DEPTH)
    except thrift.ThriftError as exc:
        raise SpliceError(f"unreadable Parquet footer: {exc}") from exc
    if used != length:
        raise SpliceError("Parquet footer has trailing bytes")
    return footer


def _leaf_paths(schema_elements):
    """The leaf columns' paths, in file order, from the flattened schema (root first)."""
    paths, stack = [], []  # stack: [name, children left] of the groups being walked
    for index, element in enumerate(schema_elements):
        name = element.value(SCHEMA_NAME, b"").decode("utf-8")
        if index == 0:
            stack.append(["", element.value(SCHEMA_NUM_CHILDREN, 0)])
            continue
        stack[-1][1] -= 1
        if SCHEMA_TYPE in element:
            paths.append(tuple(entry[0] for entry in stack[1:]) + (name,))
        else:
            stack.append([name, element.value(SCHEMA_NUM_CHILDREN, 0)])
        while len(stack) > 1 and stack[-1][1] == 0:
            stack.pop()
    return paths


class Layout:
    """What every file of one Arrow schema, written with one set of writer options, looks like."""

    def __init__(self, schema, options):
        self.schema = schema
        self.options = dict(options)
        self.codec = CODECS[str(self.options.get("compression", "snappy")).lower()]
        sink = io.BytesIO()
        pq.ParquetWriter(sink, schema, **self.options).close()
        empty = pa.BufferReader(sink.getvalue())
        self.template = read_footer(empty)
        self.created_by = self.template.value(FILE_CREATED_BY)
        self.parquet_schema = pq.ParquetFile(empty).schema
        self.leaf_paths = _leaf_paths(self.template.value(FILE_SCHEMA)[1])
        self.fields = [
            (name, [i for i, path in enumerate(self.leaf_paths) if path[0] == name]) for name in schema.names
        ]

    def refusal(self, source):
        """Why the source's chunks cannot be copied under this layout as they are, or None.

        Its schema must be the layout's, and its writer the installed pyarrow: the file written
        says ``created_by`` this pyarrow, and readers decide by that field whether to trust a
        writer's statistics or work around its known bugs. A file of another writer version
        (a daily file published before a pyarrow upgrade) is encoded again, once: the next
        bundle is written by this version and copied from then on."""
        try:
            parquet = source.parquet
            same_schema = parquet.schema.equals(self.parquet_schema) and parquet.schema_arrow.equals(self.schema)
        except (pa.ArrowException, OSError) as exc:
            return f"not readable by Arrow: {exc}"
        if not same_schema:
            return "the file's schema is not the layout's"
        created_by = source.footer.value(FILE_CREATED_BY)
        if created_by != self.created_by:
            return f"written by {_writer_name(created_by)}, not by {_writer_name(self.created_by)}"
        return None

    def accepts(self, source):
        """True when the source's chunks can be copied under this layout as they are."""
        return self.refusal(source) is None

    def options_for(self, names):
        """The writer options restricted to some fields (pyarrow rejects paths not in the schema)."""
        options = dict(self.options)
        for key in ("use_dictionary", "write_statistics", "use_byte_stream_split", "column_encoding"):
            value = options.get(key)
            if isinstance(value, list | tuple):
                options[key] = [path for path in value if path.split(".")[0] in names]
        return options


def _writer_name(created_by):
    return created_by.decode("utf-8", "replace") if created_by else "an unnamed writer"


class Source:
    """An open Parquet file (an Arrow ``NativeFile``) whose column chunks can be copied."""

    def __init__(self, fh):
        self.fh = fh
        self.footer = read_footer(fh)
        self.row_groups = self.footer.value(FILE_ROW_GROUPS, (STRUCT, []))[1]

    @cached_property
    def parquet(self):
        return pq.ParquetFile(self.fh)

    @property
    def num_row_groups(self):
        return len(self.row_groups)

    def rows(self, group):
        return self.row_groups[group].value(RG_NUM_ROWS)

    def chunks(self, group):
        return self.row_groups[group].value(RG_COLUMNS)[1]


def _meta(chunk):
    if CHUNK_FILE_PATH in chunk or CHUNK_CRYPTO in chunk or CHUNK_ENCRYPTED_META in chunk:
        raise SpliceError("column chunk stored in another file or encrypted")
    meta = chunk.value(CHUNK_META)
    if meta is None:
        raise SpliceError("column chunk without metadata")
    return meta


def _has_dictionary(meta):
    return meta.value(META_DICTIONARY_PAGE, 0) > 0 or bool(DICTIONARY_ENCODINGS & set(meta.value(META_ENCODINGS)[1]))


def _extent(meta):
    """(first byte, length) of a chunk's pages in its file."""
    starts = [meta.value(META_DATA_PAGE)]
    if meta.value(META_DICTIONARY_PAGE, 0) > 0:
        starts.append(meta.value(META_DICTIONARY_PAGE))
    return min(starts), meta.value(META_COMPRESSED)


def _concatenable(meta):
    return not _has_dictionary(meta) and META_STATISTICS not in meta and META_BLOOM_OFFSET not in meta


@dataclass
class _GroupFacts:
    """Per field of one source row group: may its chunks be copied (they use the layout's codec),
    may they be concatenated, with what signature (codec and type of each leaf), and how many
    bytes it decodes to."""

    copyable: list
    concatenable: list
    signature: list
    size: list
    total: int


def _facts(row_group, layout):
    metas = [_meta(chunk) for chunk in row_group.value(RG_COLUMNS)[1]]
    if len(metas) != len(layout.leaf_paths):
        raise SpliceError("row group has a different number of columns than the schema")
    copyable, concatenable, signature, size = [], [], [], []
    for _, leaves in layout.fields:
        field = [metas[i] for i in leaves]
        copyable.append(all(meta.value(META_CODEC) == layout.codec for meta in field))
        concatenable.append(copyable[-1] and all(_concatenable(meta) for meta in field))
        signature.append(tuple((meta.value(META_CODEC), meta.value(META_TYPE)) for meta in field))
        size.append(sum(meta.value(META_UNCOMPRESSED) for meta in field))
    return _GroupFacts(copyable, concatenable, signature, size, row_group.value(RG_TOTAL_BYTE_SIZE, 0))


def plan_runs(source, groups, layout, *, run_bytes=None, side_bytes=None):
    """Consecutive source row groups, a run per output row group: yields (groups, fields to encode
    again by index, the groups' parsed metadata). A run stays within ``run_bytes`` decoded and its
    fields encoded again within ``side_bytes``; a single row group is copied whole, but for chunks
    compressed with another codec than the layout's (the contract names one). Only the current
    run's metadata is held, whatever the size of the footer."""
    run_bytes = RUN_BYTES if run_bytes is None else run_bytes
    side_bytes = SIDE_BYTES if side_bytes is None else side_bytes
    run, parsed, first, side, side_size, total = [], [], None, set(), [], 0
    for group in groups:
        row_group = source.row_groups[group]
        fact = _facts(row_group, layout)
        if run:
            new_side = side | {
                f
                for f in range(len(layout.fields))
                if not (fact.concatenable[f] and first.concatenable[f] and fact.signature[f] == first.signature[f])
            }
            sizes = [a + b for a, b in zip(side_size, fact.size, strict=True)]
            if total + fact.total <= run_bytes and sum(sizes[f] for f in new_side) <= side_bytes:
                run.append(group)
                parsed.append(row_group)
                side, side_size, total = new_side, sizes, total + fact.total
                continue
            yield run, side, parsed
        side = {f for f, copyable in enumerate(fact.copyable) if not copyable}
        run, parsed, first, side_size, total = [group], [row_group], fact, list(fact.size), fact.total
    if run:
        yield run, side, parsed


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
    """

    def __init__(self, path, layout):
        self.path = path
        self.layout = layout
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
        meta = _meta(chunk)
        start, length = _extent(meta)
        new_start = self.position
        self._copy(source, start, length)
        moved = Struct({k: v for k, v in meta.items() if k in KEPT_WHOLE})
        moved.set(META_DATA_PAGE, I64, meta.value(META_DATA_PAGE) - start + new_start)
        if meta.value(META_DICTIONARY_PAGE, 0) > 0:
            moved.set(META_DICTIONARY_PAGE, I64, meta.value(META_DICTIONARY_PAGE) - start + new_start)
        return moved

    def _concatenate(self, source, chunks):
        metas = [_meta(chunk) for chunk in chunks]
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
            paths = [tuple(_meta(chunk).value(META_PATH)[1]) for chunk in encoded.chunks(0)]
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
        for run, side, row_groups in plan_runs(source, groups, self.layout):
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
        check_reads_back(self.path, self.layout, self.group_rows, in_full=self.merged, data_end=self.data_end)
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


def check_reads_back(path, layout, group_rows, *, in_full=None, data_end=None):
    """Arrow must read the file written as its writer meant it, before anybody publishes it.

    First the footer: the rows of every row group, the schema, every chunk between the leading
    magic and the footer (``data_end``, default where the footer starts). Then the row groups are
    decoded: those ``in_full`` flags (default all) to their last row, about ``READ_BACK_BYTES`` at
    a time, and each must give its rows; the others to their first row. A row group whose chunks
    were all copied whole holds its sources' bytes in their order, so its first row (the first
    page of every column, dictionary included) shows that every offset moved right; decoding the
    rest would decode its sources again (pyarrow's own files, or read back in full when they were
    merged). A row group of a run of several (``Writer.merged``) holds chunks that are new:
    its pages' value counts and offsets are only proven by decoding it all. Either way, what this
    module got wrong shows here, not in a subscriber's reader, nor only as a footer Arrow cannot
    parse."""
    try:
        # Page by page, no threads: memory stays a few MB whatever the row group (a day of tier 3).
        parquet = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BACK_BUFFER)
        metadata = parquet.metadata
        if data_end is None:
            data_end = os.path.getsize(path) - 8 - metadata.serialized_size
        groups = [metadata.row_group(group) for group in range(metadata.num_row_groups)]
        matches = (
            [group.num_rows for group in groups] == list(group_rows)
            and metadata.num_rows == sum(group_rows)
            and parquet.schema_arrow.equals(layout.schema)
            and all(_inside(group.column(i), data_end) for group in groups for i in range(group.num_columns))
        )
        if not matches:
            raise SpliceError("the file written does not read back as written")
        for index, group in enumerate(groups):
            full = in_full is None or in_full[index]
            batch = max(1, group.num_rows * READ_BACK_BYTES // max(group.total_byte_size, 1)) if full else 1
            batches = parquet.iter_batches(batch_size=batch, row_groups=[index], use_threads=False)
            decoded = sum(b.num_rows for b in batches) if full else getattr(next(batches, None), "num_rows", 0)
            if decoded != (group.num_rows if full else 1):
                raise SpliceError(f"row group {index} of the file written decodes to {decoded} rows")
    except (pa.ArrowException, OSError) as exc:
        raise SpliceError(f"the file written does not read back: {exc}") from exc


def _inside(column, data_end):
    """True when an Arrow ``ColumnChunkMetaData``'s pages (from its dictionary page, if any) lie
    between the leading magic and the footer."""
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
        start = min(column.dictionary_page_offset, start)
    return start >= len(MAGIC) and start + column.total_compressed_size <= data_end


def compact(path, out, layout, writer=Writer):
    """Rewrite the Parquet file ``path`` as ``out`` with its row groups merged (``plan_runs``), by
    ``writer`` (``Writer``, or ``encoding.EncodingWriter``). Returns (sha256 hex, size, rows)."""
    with pa.OSFile(str(path), "r") as fh, writer(out, layout) as written:
        written.add(Source(fh))
        return written.close()
