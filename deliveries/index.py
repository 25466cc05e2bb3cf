"""The download index as a static file. The database is the index; ``index/tierN.json`` is a copy
of it in storage for static consumers and monitoring that cannot query the site.

It lists exactly what the API lists. Every step that changes a tier's listing (a new version, a
month closing, retention) rewrites that tier's file right after its database switch, in one PUT;
the nightly index step rewrites every tier's, which heals a run stopped in between.
"""

from django.utils import timezone

from instrumetriq_site.utc import iso_z

from . import publish, storage
from .models import DailyFile, MonthBundle
from .tiers import SCHEMA_VERSION, Tier


def mtd_entry(bundle):
    return {
        "month": bundle.month_label,
        "key": bundle.key,
        "manifest_key": bundle.manifest_key,
        "filename": bundle.download_filename,
        "size_bytes": bundle.size_bytes,
        "rows": bundle.row_count,
        "sha256": bundle.sha256,
        "coverage_start_date": bundle.coverage_start.isoformat(),
        "coverage_end_date": bundle.coverage_end.isoformat(),
        "days_included": bundle.days_included,
        "days_missing": bundle.days_missing,
        "partial_days": bundle.partial_days,
        "built_at": iso_z(bundle.built_at),
    }


def daily_entry(daily):
    return {
        "date": daily.date.isoformat(),
        "key": daily.key,
        "manifest_key": daily.manifest_key,
        "filename": daily.download_filename,
        "size_bytes": daily.size_bytes,
        "rows": daily.row_count,
        "sha256": daily.sha256,
        "is_partial": daily.is_partial,
        "published_at": iso_z(daily.published_at),
    }


def build_index(tier, *, now=None):
    """The tier's current offer: the newest month bundle and the retained daily files, newest first."""
    tier = Tier(tier).value
    bundle = MonthBundle.objects.for_tier(tier).newest_first().first()
    dailies = DailyFile.objects.for_tier(tier).published().newest_first()
    return {
        "tier": tier,
        "schema_version": SCHEMA_VERSION,
        "generated_at": iso_z(now or timezone.now()),
        "mtd": mtd_entry(bundle) if bundle else None,
        "daily": [daily_entry(daily) for daily in dailies],
    }


def publish_index(tiers=None, *, now=None):
    """Write ``index/tierN.json`` for each tier (UTF-8, 2-space indent). Returns the keys written."""
    keys = []
    for tier in [tier.value for tier in Tier.selected(tiers)]:
        key = storage.index_key(tier)
        storage.put_bytes(key, publish.manifest_bytes(build_index(tier, now=now)), storage.JSON_CONTENT_TYPE)
        keys.append(key)
    return keys
