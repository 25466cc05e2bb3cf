"""Published files for tests that need deliveries without running the archive build.

They go through the real publish path (storage keys, manifest, DailyFile/MonthBundle rows) and hold
real Parquet with the tier's exact schema, so readers of them meet what subscribers would.
"""

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from deliveries import publish
from deliveries.tiers import schema_for


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
    }


def publish_day(tier, day, rows=10, hours_found=24):
    """Publish a synthetic day for one tier; returns the DailyFile."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table(tier, day, rows), Path(tmp) / "data.parquet")
        manifest = daily_manifest(tier, day, path, rows, hours_found=hours_found)
        return publish.publish_daily(tier, day, path, manifest, input_fingerprint=f"synthetic-{rows}-{hours_found}")
