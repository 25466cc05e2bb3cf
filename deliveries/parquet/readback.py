"""The fence around every Parquet file this engine writes: read back by Arrow, footer and row
groups, before anybody publishes it (``check_reads_back``). Spliced files (``splice.Writer``) and
files pyarrow encoded (``encoding.EncodingWriter``) alike."""

import os

import pyarrow as pa
import pyarrow.parquet as pq

from .footer import MAGIC, SpliceError

READ_BACK_BYTES = 4 * 1024 * 1024  # decoded bytes a batch when a written file is read back
READ_BACK_BUFFER = 64 * 1024  # bytes read at a time for each column while reading back


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
    its pages' value counts and offsets are only proven by decoding it all, here or, when the
    writer was told the caller decodes the whole file before publishing (``decoded_later``), there. Either way, what splicing
    got wrong shows here, not in a subscriber's reader, nor only as a footer Arrow cannot
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
