"""The JSON API for scripts: a tier's files with their token-checked links and signed URLs.
Errors are JSON too (``@tier_token(refusals=JSON)``), never an HTML page or a traceback."""

import logging

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import iso_z, next_build

from ..storage import StorageError
from . import downloads
from .access import JSON, json_error, outgoing_until, tier_token
from .downloads import DAILY, MTD
from .links import file_links
from .listing import cached_files

logger = logging.getLogger(__name__)


def api_entry(tier, token, kind, label, obj, extra):
    target = downloads.Target(tier.value, kind, label, obj.key, obj.download_filename)
    signed, expires_at = downloads.signed_url(target)
    links = file_links(tier, token, kind, label, absolute=True, version=obj.sha256[:16])
    return {
        **extra,
        "rows": obj.row_count,
        "size_bytes": obj.size_bytes,
        "sha256": obj.sha256,
        "built_at": iso_z(obj.built_at),
        "filename": obj.download_filename,
        "url": links["url"],
        "query_url": links["url"],  # the same token-checked link: it answers HEAD and Range
        "manifest_url": links["manifest_url"],
        "signed_url": signed,
        "signed_url_expires_at": iso_z(expires_at),
    }


def api_payload(tier, token, validation, listing, now):
    mtd = None
    if listing.mtd is not None:
        bundle = listing.mtd
        mtd = api_entry(
            tier,
            token,
            MTD,
            bundle.month_label,
            bundle,
            {
                "month": bundle.month_label,
                "coverage_start": bundle.coverage_start.isoformat(),
                "coverage_end": bundle.coverage_end.isoformat(),
                "days_included": list(bundle.days_included),
                "days_missing": list(bundle.days_missing),
                "partial_days": list(bundle.partial_days),
                "partial": bool(bundle.partial_days or bundle.days_missing),
            },
        )
    daily = [
        api_entry(
            tier,
            token,
            DAILY,
            item.date.isoformat(),
            item,
            {
                "date": item.date.isoformat(),
                "partial": item.is_partial,
                "hours_found": item.hours_found,
                "missing_hours": list(item.missing_hours),
            },
        )
        for item in listing.daily
    ]
    return {
        "tier": tier.value,
        "plan": tier.plan,
        "generated_at": iso_z(now),
        "last_build_at": iso_z(listing.last_build_at),
        "next_update_at": iso_z(next_build(now)),
        "token_expires_at": iso_z(outgoing_until(validation, now)),
        "mtd": mtd,
        "daily": daily,
    }


@require_safe
@tier_token(refusals=JSON)
def api_tier(request):
    """The tier's files as JSON for scripts."""
    tier = request.tier
    try:
        payload = api_payload(
            tier, request.token, request.validation, cached_files(tier, request.listing_version), timezone.now()
        )
    except StorageError as exc:
        logger.error("storage unavailable while serving the %s API: %s", tier.value, exc)
        return json_error(503, "storage_unavailable", "Downloads are briefly unavailable. Try again in a few minutes.")
    except Exception:
        logger.exception("API failure for %s", tier.value)
        return json_error(500, "server_error", "Something went wrong on our side. Try again later.")
    return JsonResponse(payload, json_dumps_params={"indent": 2})
