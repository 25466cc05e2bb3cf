"""Published files for tests that need deliveries without running the archive build.

They go through the real publish path (storage keys, manifest, DailyFile/MonthBundle rows) and hold
real Parquet with the tier's exact schema, so readers of them meet what subscribers would.
"""

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deliveries import index, publish
from deliveries.parquet import profile, splice, thrift
from deliveries.parquet.footer import FILE_CREATED_BY, MAGIC
from deliveries.tiers import Tier, schema_for


def tier_table(tier, day, rows):
    """A table of the tier's schema with ``rows`` rows: symbol and snapshot_ts set, the rest null."""
    schema = schema_for(tier)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    columns = {}
    for field in schema:
        if field.name == "symbol":
            columns["symbol"] = pa.array([f"SYM{i % 7}" for i in range(rows)], pa.string())
        elif field.name == "snapshot_ts":
            stamps = [(start + timedelta(seconds=i * 30)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for i in range(rows)]
            columns["snapshot_ts"] = pa.array(stamps, pa.string())
        else:
            columns[field.name] = pa.nulls(rows, field.type)
    return pa.table(columns, schema=schema)


def written_by(path, created_by):
    """``path`` with its footer saying another writer (``created_by``, bytes) wrote it, as a file
    published before a pyarrow upgrade does."""
    data = path.read_bytes()
    length = int.from_bytes(data[-8:-4], "little")
    footer, _ = thrift.loads(data[-8 - length : -8])
    footer.set(FILE_CREATED_BY, thrift.BINARY, created_by)
    raw = thrift.dumps(footer)
    path.write_bytes(data[: -8 - length] + raw + len(raw).to_bytes(4, "little") + MAGIC)
    return path


def write_parquet(table, path):
    pq.write_table(table, path, compression="zstd")
    return Path(path)


def daily_manifest(tier, day, parquet_path, rows, hours_found=24, missing_hours=()):
    missing = list(missing_hours) or [f"{h:02d}" for h in range(hours_found, 24)]
    return {
        **publish.manifest_header(tier, "daily", day.isoformat(), parquet_path, rows, datetime.now(UTC)),
        "archive_day": day.strftime("%Y%m%d"),
        "hours_expected": 24,
        "hours_found": 24 - len(missing),
        "missing_hours": missing,
        "coverage_ratio": round((24 - len(missing)) / 24, 4),
        "is_partial": bool(missing),
        "rows_by_hour": {f"{h:02d}": 0 for h in range(24)},
        "skipped_lines": {"total": 0, "by_hour": {}},
        "coerced_values": {},
        "min_snapshot_ts": None,
        "max_snapshot_ts": None,
        "symbols": min(rows, 7),
        **profile.manifest_parts(parquet_path, preview=True),
    }


def publish_daily(tier, day, parquet_path, manifest, *, input_fingerprint):
    """Upload one tier's day, list it, rewrite the tier's index, as ``build.build_day`` does for
    each tier. Returns the DailyFile."""
    publish.upload_daily(tier, day, parquet_path, manifest)
    daily = publish.record_daily(tier, day, manifest, input_fingerprint=input_fingerprint)
    index.publish_index([tier])
    return daily


def publish_day(tier, day, rows=10, hours_found=24):
    """Publish a synthetic day for one tier; returns the DailyFile."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table(tier, day, rows), Path(tmp) / "data.parquet")
        manifest = daily_manifest(tier, day, path, rows, hours_found=hours_found)
        return publish_daily(tier, day, path, manifest, input_fingerprint=f"synthetic-{rows}-{hours_found}")


def publish_days(days, tiers=tuple(Tier.values)):
    """Every tier's synthetic file for each of ``days``, listed as a night's build lists them (for
    tests about what happens next, not about the build). Returns the DailyFiles."""
    return [publish_day(tier, day) for day in days for tier in tiers]


def dense_array(type_, count, rng):
    """Values for any Arrow type of a tier schema: every field filled, a few nulls, lists of a few
    items (so list columns have real repetition levels), strings that repeat and that do not."""
    if pa.types.is_struct(type_):
        children = [dense_array(child.type, count, rng) for child in type_]
        return pa.StructArray.from_arrays(children, fields=list(type_))
    if pa.types.is_list(type_):
        lengths = [rng.randrange(0, 5) for _ in range(count)]
        offsets = [0]
        for length in lengths:
            offsets.append(offsets[-1] + length)
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), dense_array(type_.value_type, offsets[-1], rng))
    nulls = [rng.random() < 0.05 for _ in range(count)]
    if pa.types.is_floating(type_):
        values = [round(rng.gauss(50, 20), 4) for _ in range(count)]
    elif pa.types.is_integer(type_):
        values = [rng.randrange(0, 5000) for _ in range(count)]
    elif pa.types.is_boolean(type_):
        values = [rng.random() < 0.5 for _ in range(count)]
    else:
        values = [rng.choice(["ok", "silent", f"v{rng.randrange(1000)}"]) for _ in range(count)]
    return pa.array([None if null else value for value, null in zip(values, nulls, strict=True)], type_)


def dense_table(tier, rows, seed=0):
    """A table of the tier's schema with every column filled (``tier_table`` leaves most null)."""
    import random

    rng = random.Random(seed)
    schema = schema_for(tier)
    return pa.Table.from_arrays([dense_array(field.type, rows, rng) for field in schema], schema=schema)


def daily_keys(tier, day):
    """(data key, manifest key) of the version of a day that its row lists."""
    from deliveries.models import DailyFile

    daily = DailyFile.objects.get(tier=tier, date=day)
    return daily.key, daily.manifest_key


def mtd_keys(tier, month):
    """(data key, manifest key) of the version of a month's bundle that its row lists."""
    from deliveries.models import MonthBundle

    bundle = MonthBundle.objects.get(tier=tier, month=month)
    return bundle.key, bundle.manifest_key


def undercount_merged_chunks(monkeypatch):
    """Make ``splice`` write merged chunks that claim fewer values than their pages hold (the last
    source row group's): the footer reads back as written; only decoding the whole row group
    shows it."""
    real_concatenate = splice.Writer._concatenate

    def counts_the_last_group_out(self, source, chunks):
        merged = real_concatenate(self, source, chunks)
        last = splice.chunk_meta(chunks[-1]).value(splice.META_NUM_VALUES)
        merged.set(splice.META_NUM_VALUES, splice.I64, merged.value(splice.META_NUM_VALUES) - last)
        return merged

    monkeypatch.setattr(splice.Writer, "_concatenate", counts_the_last_group_out)
