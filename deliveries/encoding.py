"""How the Parquet files subscribers download are encoded: one set of writer options per tier,
shared by the daily files and the month-to-date bundles.

zstd is the contract's (manifests say so). The rest is ours, chosen for the price samples, which
are nearly all of a tier 3 day: its ~740 samples a row are distinct values, so a dictionary there
only costs time and space, and their min/max statistics filter nothing. Without either, their
column chunks stand on their own, so the bundle copies them byte for byte (``splice``) instead of
decoding and encoding a month again. Strings elsewhere (symbols, statuses, versions) repeat a lot
and keep their dictionaries; every column outside the samples keeps its statistics.
"""

import functools
import io

import pyarrow.parquet as pq

from .splice import Layout
from .tiers import schema_for

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
