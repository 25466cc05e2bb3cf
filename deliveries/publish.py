"""Publishing a version: upload data and manifest to the version's own keys, then switch the
database row in one transaction, then rewrite the tier's index.

Subscribers are shown database rows, so a row appears (or changes) only once the bytes it describes
are fully in storage, and it is switched from the old version's keys to the new one's: the old
version is delisted, never overwritten, and its objects stay until the collector deletes them
``SIGNED_URL_EXPIRY`` later. A failure at any point leaves what subscribers see as it was (or
already switched, with an index a rerun rewrites); a rerun completes the rest, and the same bytes
always land in the same folder, so a rerun uploads nothing twice.
"""

import json
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from instrumetriq_site.utc import iso_z

from . import index, storage, versions
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
        "build_ts_utc": iso_z(built_at),
        "row_count": rows,
        "parquet_sha256": sha256 or storage.sha256_of(parquet_path),
        "parquet_size_bytes": Path(parquet_path).stat().st_size,
        "filename": storage.download_name(tier, kind, label),
        "compression": "zstd",
        "columns": schema_for(tier).names,
    }


def _upload(tier, kind, label, parquet_path, manifest, *, consume):
    """Put a version's data (unless it is listed already: never written again) and its manifest
    (one whole PUT: it holds the build time). Returns (data key, manifest key)."""
    data_key, manifest_key = storage.version_keys(tier, kind, label, manifest["parquet_sha256"])
    unchanged = versions.is_listed_key(data_key) and storage.size(data_key) == manifest["parquet_size_bytes"]
    if not unchanged:
        storage.put_file(data_key, parquet_path, storage.PARQUET_CONTENT_TYPE, consume=consume)
    storage.put_bytes(manifest_key, manifest_bytes(manifest), storage.JSON_CONTENT_TYPE)
    return data_key, manifest_key


def upload_daily(tier, day, parquet_path, manifest, *, consume=False):
    """Put a day's data, then its manifest, in storage. Subscribers see nothing yet."""
    return _upload(tier, versions.DAILY, day.isoformat(), parquet_path, manifest, consume=consume)


def record_daily(tier, day, manifest, *, input_fingerprint, built_at=None):
    """Show an uploaded day to subscribers: switch its DailyFile row to the new version and delist
    the one it replaces, in one transaction (or the caller's: ``build`` switches all tiers of a day
    together). Raises ``versions.VersionMissing`` when the upload is not in storage."""
    label = day.isoformat()
    data_key, manifest_key = storage.version_keys(tier, versions.DAILY, label, manifest["parquet_sha256"])
    now = timezone.now()
    with transaction.atomic():
        versions.ledger_lock()
        versions.verify_present(data_key, manifest_key, manifest["parquet_size_bytes"])
        previous = DailyFile.objects.filter(tier=tier, date=day).first()
        if previous is not None and previous.deleted_at is None and previous.key != data_key:
            versions.delist_daily(previous, now)
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
        versions.list_version(tier, versions.DAILY, label, data_key, manifest_key, daily.sha256, daily.size_bytes, now)
    return daily


def delist_day(daily, now):
    """Take a day off the page, API and index (retention): its row becomes history, its version is
    delisted (collected later). Compare-and-set: False when it was no longer listed."""
    with transaction.atomic():
        versions.ledger_lock()
        if not DailyFile.objects.filter(pk=daily.pk, deleted_at__isnull=True).update(deleted_at=now):
            return False
        versions.delist_daily(daily, now)
    return True


def publish_month(tier, month_start, parquet_path, manifest, *, built_at=None, consume=False):
    """Upload one tier's month-to-date bundle as a new version, list it (the tier's older months
    close), rewrite the tier's index. Returns the MonthBundle."""
    label = f"{month_start:%Y-%m}"
    data_key, manifest_key = _upload(tier, versions.MTD, label, parquet_path, manifest, consume=consume)
    now = timezone.now()
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
        "built_at": built_at or now,
    }
    with transaction.atomic():
        versions.ledger_lock()
        versions.verify_present(data_key, manifest_key, manifest["parquet_size_bytes"])
        previous = MonthBundle.objects.filter(tier=tier, month=month_start).first()
        if previous is not None and previous.key != data_key:
            versions.delist_bundle(previous, now)
        bundle, _ = MonthBundle.objects.update_or_create(tier=tier, month=month_start, defaults=fields)
        versions.list_version(tier, versions.MTD, label, data_key, manifest_key, bundle.sha256, bundle.size_bytes, now)
        if versions.is_closed_month(tier, month_start):
            versions.delist_bundle(bundle, now)  # a later month is listed: this one is history at once
        else:
            versions.close_months_before(tier, month_start, now)
    index.publish_index([tier])
    return bundle
