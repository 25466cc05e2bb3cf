"""The JSON API for scripts: a tier's files with their token-checked links and signed URLs.
Errors are JSON too (``@tier_token(refusals=JSON)``), never an HTML page or a traceback.

Signing nine URLs and reversing eighteen links is most of a request's cost, so each worker keeps
the body in Django's cache for ``SIGNED_URL_REUSE`` seconds, keyed by the tier's listing version
(renewed by every publish, delisting and rotation) and the time window. The cached body holds
marks, never a token: the request's token and its own moments (``generated_at``,
``next_update_at``, ``token_expires_at``) are put in per request. A signed URL handed out may so
have been signed up to ``SIGNED_URL_REUSE`` seconds earlier; its ``signed_url_expires_at`` is its
own, exact.
"""

import json
import logging
from secrets import token_hex

from django.conf import settings
from django.core.cache import cache
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import iso_z, next_build

from ..storage import StorageError
from . import downloads
from .access import JSON, json_error, outgoing_until, tier_token
from .downloads import DAILY, MTD
from .links import TOKEN_MARK, file_links, with_token
from .listing import cached_files

logger = logging.getLogger(__name__)

# Where each request's own moments go in a cached body (JSON strings, replaced quotes and all).
MOMENT_MARKS = {name: f"{name}-{token_hex(8)}" for name in ("generated_at", "next_update_at", "token_expires_at")}


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


def api_payload(tier, token, listing, moments):
    """The API's answer; ``moments`` gives ``generated_at``, ``next_update_at`` and
    ``token_expires_at`` (the request's own, or the marks of a cached body)."""
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
        "generated_at": moments["generated_at"],
        "last_build_at": iso_z(listing.last_build_at),
        "next_update_at": moments["next_update_at"],
        "token_expires_at": moments["token_expires_at"],
        "mtd": mtd,
        "daily": daily,
    }


def request_moments(validation, now):
    return {
        "generated_at": iso_z(now),
        "next_update_at": iso_z(next_build(now)),
        "token_expires_at": iso_z(outgoing_until(validation, now)),
    }


def body_key(tier, version, now):
    """The cache key of a body: none when the tier's listing never changed (no version yet) or
    ``SIGNED_URL_REUSE`` is 0. The window is aligned to the clock, so a body is at most that old."""
    reuse = settings.SIGNED_URL_REUSE
    if version is None or reuse <= 0:
        return None
    return f"api-body:{tier.value}:{version}:{int(now.timestamp()) // reuse}"


def cached_body(tier, version, now):
    """The body as JSON text with ``TOKEN_MARK`` and ``MOMENT_MARKS`` in it."""
    key = body_key(tier, version, now)

    def build():
        payload = api_payload(tier, TOKEN_MARK, cached_files(tier, version), MOMENT_MARKS)
        return json.dumps(payload, cls=DjangoJSONEncoder, indent=2)

    return cache.get_or_set(key, build, settings.SIGNED_URL_REUSE) if key else build()


def api_body(tier, token, version, validation, now):
    """This request's body: the cached one with its token and moments put in."""
    body = with_token(cached_body(tier, version, now), token)
    for name, value in request_moments(validation, now).items():
        body = body.replace(json.dumps(MOMENT_MARKS[name]), json.dumps(value), 1)
    return body


@require_safe
@tier_token(refusals=JSON)
def api_tier(request):
    """The tier's files as JSON for scripts."""
    tier = request.tier
    try:
        body = api_body(tier, request.token, request.listing_version, request.validation, timezone.now())
    except StorageError as exc:
        logger.error("storage unavailable while serving the %s API: %s", tier.value, exc)
        return json_error(503, "storage_unavailable", "Downloads are briefly unavailable. Try again in a few minutes.")
    except Exception:
        logger.exception("API failure for %s", tier.value)
        return json_error(500, "server_error", "Something went wrong on our side. Try again later.")
    return HttpResponse(body, content_type="application/json")
