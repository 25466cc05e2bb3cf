"""A file's first rows, for its manifest's ``preview`` (the page shows them): lists cut to their
first items, long strings cut, the whole bounded to ``PREVIEW_MAX_BYTES``. Reads the first pages
only, never the day."""

import json
import math

import pyarrow.parquet as pq

PREVIEW_ROWS = 20
PREVIEW_LIST_ITEMS = 5
PREVIEW_STRING_CHARS = 80
PREVIEW_MAX_BYTES = 64 * 1024


def preview_value(value):
    """A value as the preview shows it: lists cut to their first items with their length, long
    strings cut, structs kept as objects, numbers JSON can not hold spelled out."""
    if isinstance(value, dict):
        return {key: preview_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return {"count": len(value), "items": [preview_value(item) for item in value[:PREVIEW_LIST_ITEMS]]}
    if isinstance(value, str) and len(value) > PREVIEW_STRING_CHARS:
        return value[:PREVIEW_STRING_CHARS] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def preview_file(source, rows=PREVIEW_ROWS):
    """The file's first ``rows`` rows as JSON-ready objects, cut (``preview_value``) and bounded:
    rows are dropped from the end until the preview fits PREVIEW_MAX_BYTES."""
    parquet_file = pq.ParquetFile(source, pre_buffer=False)  # the first pages, not whole column chunks
    batch = next(parquet_file.iter_batches(batch_size=rows, use_threads=False), None)
    records = [] if batch is None else [preview_value(row) for row in batch.slice(0, rows).to_pylist()]
    preview = {"columns": parquet_file.schema_arrow.names, "rows": []}
    # json.dumps writes a list's items joined by ", ": the size with n rows, without writing it n times
    size = json_size(preview) + sum(json_size(row) for row in records) + 2 * max(len(records) - 1, 0)
    while records and size > PREVIEW_MAX_BYTES:
        size -= json_size(records.pop()) + (2 if records else 0)
    preview["rows"] = records
    return preview


def json_size(value):
    """Bytes of ``value`` as JSON (``json.dumps`` defaults, UTF-8)."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
