"""Publishing: the data, then the manifest, then the database row.

Subscribers are shown database rows, so a row appears (or changes) only once the bytes it describes
are fully in storage. A failure part-way leaves the previous row and its bytes as they were, except
for an in-place replacement of the same key, which a rerun completes.
"""

import json
from datetime import UTC
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from . import storage
from .models import DailyFile, MonthBundle
from .tiers import SCHEMA_VERSION, schema_for


def manifest_bytes(manifest):
    return (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def manifest_header(tier, kind, label, parquet_path, rows, built_at, *, sha256=None):
    """The keys every manifest starts with (data contract section 3), in the contract's order:
    what the file is, when it was built, and how to check it. ``sha256``: the file's digest when
    its writer already took it (no second read of a bundle of hundreds of MB)."""
    return {
        "tier": str(tier),
        "kind": kind,
        "schema_version": SCHEMA_VERSION,
        ("date_utc" if kind == "daily" else "month"): label,
        "build_ts_utc": built_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "row_count": rows,
        "parquet_sha256": sha256 or storage.sha256_of(parquet_path),
        "parquet_size_bytes": Path(parquet_path).stat().st_size,
        "filename": storage.download_name(tier, kind, label),
        "compression": "zstd",
        "columns": schema_for(tier).names,
    }


def upload_daily(tier, day, parquet_path, manifest, *, consume=False):
    """Put a day's data, then its manifest, in storage. Subscribers see nothing yet."""
    data_key, manifest_key = storage.daily_keys(tier, day)
    storage.put_file(data_key, parquet_path, storage.PARQUET_CONTENT_TYPE, consume=consume)
    storage.put_bytes(manifest_key, manifest_bytes(manifest), storage.JSON_CONTENT_TYPE)


def record_daily(tier, day, manifest, *, input_fingerprint, built_at=None):
    """Show an uploaded day to subscribers: create or replace its DailyFile row."""
    data_key, manifest_key = storage.daily_keys(tier, day)
    now = timezone.now()
    fields = {
        "key": data_key,
        "manifest_key": manifest_key,
        "size_bytes": manifest["parquet_size_bytes"],
        "sha256": manifest["parquet_sha256"],
        "row_count": manifest["row_count"],
        "hours_found": manifest["hours_found"],
        "coverage_ratio": manifest["coverage_ratio"],
        "is_partial": manifest["is_partial"],
        "skipped_lines": manifest["skipped_lines"]["total"],
        "input_fingerprint": input_fingerprint,
        "manifest": manifest,
        "built_at": built_at or now,
        "published_at": now,
        "deleted_at": None,
    }
    daily, _ = DailyFile.objects.update_or_create(tier=tier, date=day, defaults=fields)
    return daily


def publish_daily(tier, day, parquet_path, manifest, *, input_fingerprint, built_at=None):
    """Upload one tier's day and record it. Returns the DailyFile."""
    upload_daily(tier, day, parquet_path, manifest)
    with transaction.atomic():
        return record_daily(tier, day, manifest, input_fingerprint=input_fingerprint, built_at=built_at)


def publish_month(tier, month_start, parquet_path, manifest, *, built_at=None, consume=False):
    """Upload one tier's month-to-date bundle in place and record it. Returns the MonthBundle."""
    data_key, manifest_key = storage.mtd_keys(tier, month_start)
    storage.put_file(data_key, parquet_path, storage.PARQUET_CONTENT_TYPE, consume=consume)
    storage.put_bytes(manifest_key, manifest_bytes(manifest), storage.JSON_CONTENT_TYPE)
    fields = {
        "key": data_key,
        "manifest_key": manifest_key,
        "coverage_start": manifest["coverage_start_date"],
        "coverage_end": manifest["coverage_end_date"],
        "days_included": manifest["days_included"],
        "days_missing": manifest["days_missing"],
        "partial_days": manifest["partial_days"],
        "row_count": manifest["row_count"],
        "size_bytes": manifest["parquet_size_bytes"],
        "sha256": manifest["parquet_sha256"],
        "manifest": manifest,
        "built_at": built_at or timezone.now(),
    }
    with transaction.atomic():
        bundle, _ = MonthBundle.objects.update_or_create(tier=tier, month=month_start, defaults=fields)
    return bundle
