"""Parquet footers: the field ids of ``parquet.thrift``, a file's footer read (``Source``), and
the footer every file of one schema and one set of writer options shares (``Layout``).

``splice`` copies column chunks from a ``Source`` into a file whose footer starts from its
``Layout``'s template; ``Layout.refusal`` says when a source's chunks must not be copied as they are
(another schema, or another writer: ``created_by`` is compared before any chunk is copied).
"""

import io
import struct
from functools import cached_property

import pyarrow as pa
import pyarrow.parquet as pq

from . import thrift
from .thrift import STRUCT

MAGIC = b"PAR1"

# Parquet's thrift field ids (parquet.thrift).
FILE_SCHEMA, FILE_NUM_ROWS, FILE_ROW_GROUPS, FILE_CREATED_BY = 2, 3, 4, 6
RG_COLUMNS, RG_TOTAL_BYTE_SIZE, RG_NUM_ROWS, RG_FILE_OFFSET, RG_TOTAL_COMPRESSED = 1, 2, 3, 5, 6
CHUNK_FILE_PATH, CHUNK_FILE_OFFSET, CHUNK_META, CHUNK_CRYPTO, CHUNK_ENCRYPTED_META = 1, 2, 3, 8, 9
(META_TYPE, META_ENCODINGS, META_PATH, META_CODEC, META_NUM_VALUES, META_UNCOMPRESSED, META_COMPRESSED) = range(1, 8)
META_KEY_VALUE, META_DATA_PAGE, META_INDEX_PAGE, META_DICTIONARY_PAGE, META_STATISTICS = 8, 9, 10, 11, 12
META_ENCODING_STATS, META_BLOOM_OFFSET, META_BLOOM_LENGTH, META_SIZE_STATISTICS = 13, 14, 15, 16
SCHEMA_TYPE, SCHEMA_NAME, SCHEMA_NUM_CHILDREN = 1, 4, 5
COLUMN_META_DEPTH = 3  # RowGroup (0) > columns list > ColumnChunk (2) > ColumnMetaData (3)
CODECS = {"none": 0, "snappy": 1, "gzip": 2, "lzo": 3, "brotli": 4, "lz4": 7, "zstd": 6}  # writer name -> Parquet's


class SpliceError(Exception):
    """A Parquet file whose column chunks cannot be taken as they are, or a file written that does
    not read back as written (``readback``)."""


def chunk_meta(chunk):
    """A column chunk's ColumnMetaData, refusing a chunk that is stored in another file or encrypted:
    its bytes cannot be copied from this one."""
    if CHUNK_FILE_PATH in chunk or CHUNK_CRYPTO in chunk or CHUNK_ENCRYPTED_META in chunk:
        raise SpliceError("column chunk stored in another file or encrypted")
    meta = chunk.value(CHUNK_META)
    if meta is None:
        raise SpliceError("column chunk without metadata")
    return meta


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
