"""How the Parquet files subscribers download are encoded: one set of writer options per tier,
shared by the daily files and the month-to-date bundles.

zstd is the contract's (manifests say so). The rest is ours, chosen for the price samples, which
are nearly all of a tier 3 day: its ~740 samples a row are distinct values, so a dictionary there
only costs time and space, and their min/max statistics filter nothing. Without either, their
column chunks stand on their own, so the bundle copies them byte for byte (``splice``) instead of
decoding and encoding a month again. Strings elsewhere (symbols, statuses, versions) repeat a lot
and keep their dictionaries; every column outside the samples keeps its statistics.

``writer`` and ``compact`` choose between the two ways of writing a file: spliced (``splice``, the
default) or encoded by pyarrow alone (``EncodingWriter``, ``PARQUET_SPLICE=0``), which makes the
same rows in the same row groups, slower and with a day's rows in memory.
"""

import functools
import hashlib
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..tiers import schema_for
from . import readback, splice
from .footer import Layout, SpliceError

COMPRESSION = "zstd"
COMPRESSION_LEVEL = 3


@functools.cache
def leaf_columns(tier):
    """The tier's Parquet leaf columns as (dotted path, physical type), in file order, from an
    empty file of its schema (the writer options are made from them, so not from ``layout``)."""
    sink = io.BytesIO()
    pq.ParquetWriter(sink, schema_for(tier)).close()
    parquet_schema = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema
    return [
        (column.path, column.physical_type) for column in (parquet_schema.column(i) for i in range(len(parquet_schema)))
    ]


def _in_list(path):
    return ".list.element." in path or path.endswith(".list.element")


@functools.cache
def writer_options(tier):
    """Keyword arguments for ``pq.ParquetWriter`` for every file of the tier."""
    leaves = leaf_columns(tier)
    return {
        "compression": COMPRESSION,
        "compression_level": COMPRESSION_LEVEL,
        "use_dictionary": [path for path, kind in leaves if kind == "BYTE_ARRAY" and not _in_list(path)],
        "write_statistics": [path for path, _ in leaves if not _in_list(path)],
    }


@functools.cache
def layout(tier):
    """The tier's ``splice.Layout``: its schema written with its writer options."""
    return Layout(schema_for(tier), writer_options(tier))


class EncodingWriter:
    """``splice.Writer``'s interface and row groups, every row decoded and encoded by pyarrow.

    The way back if a reader ever disagrees with a spliced file (``PARQUET_SPLICE=0``): what it
    writes is pyarrow's own file. A run of source row groups up to ``splice.RUN_BYTES`` decoded
    becomes one row group, as splicing makes it (a daily file stays one row group, a bundle a row
    group a day), so it holds that run's rows in memory; ``encode`` gathers ``splice.ENCODE_BYTES``.
    The file is read back before it is published, as a spliced one is.
    """

    def __init__(self, path, layout, *, decoded_later=False):  # it reads back first rows only anyway
        self.path = Path(path)
        self.layout = layout
        self.group_rows = []
        self.rows = 0
        self.out = pq.ParquetWriter(self.path, layout.schema, **layout.options)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.out.close()

    def _write(self, table):
        if table.num_rows:
            self.out.write_table(table, row_group_size=table.num_rows)
            self.group_rows.append(table.num_rows)
            self.rows += table.num_rows

    def add(self, source, groups=None):
        """Row groups of ``source`` (default all; a ``splice.Source`` of the layout's schema), a
        run of them up to ``splice.RUN_BYTES`` decoded a row group."""
        try:
            parquet = source.parquet
            if not parquet.schema_arrow.equals(self.layout.schema):
                raise SpliceError("the file's schema is not the layout's")
            metadata = parquet.metadata
            run, size = [], 0
            for group in range(source.num_row_groups) if groups is None else groups:
                group_size = metadata.row_group(group).total_byte_size
                if run and size + group_size > splice.RUN_BYTES:
                    self._write(parquet.read_row_groups(run))
                    run, size = [], 0
                run.append(group)
                size += group_size
            if run:
                self._write(parquet.read_row_groups(run))
        except (pa.ArrowException, OSError) as exc:
            raise SpliceError(f"cannot read the file to encode it again: {exc}") from exc

    def encode(self, tables):
        """Rows of the layout's schema, a row group of about ``splice.ENCODE_BYTES`` at a time."""
        for table in splice.gathered(tables, splice.ENCODE_BYTES):
            self._write(table)

    def close(self):
        """Returns (sha256 hex, size in bytes, rows), once the file reads back."""
        self.out.close()
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(splice.COPY_BLOCK), b""):
                digest.update(block)
        # pyarrow's own file: its footer and each row group's first row, as for chunks copied whole.
        readback.check_reads_back(self.path, self.layout, self.group_rows, in_full=[False] * len(self.group_rows))
        return digest.hexdigest(), self.path.stat().st_size, self.rows


def _writer_class(spliced):
    return splice.Writer if spliced else EncodingWriter


def writer(path, tier, *, spliced=True):
    """The writer of a tier's file: ``splice.Writer``, or ``EncodingWriter`` when not ``spliced``."""
    return _writer_class(spliced)(path, layout(tier))


def compact(path, out, tier, *, spliced=True, decoded_later=False):
    """``splice.compact`` of a tier's file, by the writer ``spliced`` chooses."""
    return splice.compact(path, out, layout(tier), _writer_class(spliced), decoded_later=decoded_later)
