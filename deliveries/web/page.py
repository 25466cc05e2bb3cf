"""The tier page: the subscriber's files, freshness, schema, profiles, preview and snippets, all
rendered on the server. It costs three queries: the token, the daily files, the month bundle.
"""

import secrets
import threading
from collections import OrderedDict
from datetime import date
from urllib.parse import quote

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import expected_newest_day, next_build
from tokens.schedule import Schedule

from ..tiers import TIER_DESCRIPTIONS, schema_for
from . import explore
from .access import outgoing_until, tier_token
from .charts import chart_data, chart_days
from .downloads import DAILY, MTD
from .links import file_links, tier_url
from .listing import list_files, newest_part
from .snippets import query_target, snippet_for


def hour_ranges(hours):
    """["03", "04", "05", "17"] -> "03:00-05:59, 17:00-17:59" (UTC), for a partial-day badge."""
    values = sorted(int(h) for h in hours)
    spans, start = [], None
    for i, hour in enumerate(values):
        if start is None:
            start = hour
        if i == len(values) - 1 or values[i + 1] != hour + 1:
            spans.append(f"{start:02d}:00-{hour:02d}:59")
            start = None
    return ", ".join(spans)


def daily_entry(tier, token, daily):
    return {
        "file": daily,
        "label": daily.date.isoformat(),
        "missing_hours": hour_ranges(daily.missing_hours) if daily.is_partial else "",
        **file_links(tier, token, DAILY, daily.date.isoformat(), version=daily.sha256[:16]),
    }


def mtd_entry(tier, token, bundle, today):
    if bundle is None:
        return None
    label = bundle.month_label
    return {
        "file": bundle,
        "label": label,
        "days_count": len(bundle.days_included),
        "is_current_month": bundle.month == today.replace(day=1),
        "is_complete": bundle.coverage_end >= bundle.month_end,
        "missing": [date.fromisoformat(d) for d in bundle.days_missing],
        "partial": [date.fromisoformat(d) for d in bundle.partial_days],
        **file_links(tier, token, MTD, label, version=bundle.sha256[:16]),
    }


# Rendered pages by everything they depend on except the token, which is swapped in per request.
# The queries still run on every request (token, days, month), so a rotation, a revocation or a
# new file shows at once; only the template work for an unchanged page is saved.
TOKEN_MARK = f"tkn{secrets.token_hex(12)}"
NONCE_MARK = f"nonce{secrets.token_hex(12)}"  # the response's CSP nonce, swapped in the same way
RENDER_CACHE_SIZE = 64
_rendered = OrderedDict()
_rendered_lock = threading.Lock()


def page_key(tier, validation, listing, now):
    mtd = listing.mtd
    return (
        tier.value,
        tuple(
            (d.pk, d.sha256, d.built_at, d.published_at, d.is_partial, tuple(d.missing_hours)) for d in listing.daily
        ),
        (mtd.pk, mtd.sha256, mtd.built_at) if mtd else None,
        validation.is_outgoing,
        validation.promotes_at,
        now.date(),
        expected_newest_day(now),
        next_build(now),
        outgoing_until(validation, now),
        Schedule.from_settings(),
        settings.DAILY_RETENTION_DAYS,
        settings.STATIC_URL,
        settings.SITE_URL,
    )


def page_context(tier, token, validation, listing, now):
    today = now.date()
    newest = listing.daily[0] if listing.daily else None
    profile = newest_part(listing, "profile")
    return {
        "tier": tier,
        "plan": tier.plan,
        "description": TIER_DESCRIPTIONS[tier],
        "validation": validation,
        "outgoing_until": outgoing_until(validation, now),
        "schedule": Schedule.from_settings(),
        "mtd": mtd_entry(tier, token, listing.mtd, today),
        "daily": [daily_entry(tier, token, daily) for daily in listing.daily],
        "retention_days": settings.DAILY_RETENTION_DAYS,
        "last_updated": listing.last_build_at,
        "next_update": next_build(now),
        "build_time": settings.BUILD_TIME_UTC,
        "chart": chart_data(chart_days(listing, expected_newest_day(now))),
        "columns": explore.column_profiles(tier, profile),
        "column_count": len(schema_for(tier)),
        "profiled": newest if profile else None,
        "preview": explore.preview_table(newest_part(listing, "preview")),
        "preview_of": newest,
        "query": query_target(tier, token, listing),
        "snippet": snippet_for(listing),
        "api_url": tier_url("api_tier", tier, token),
        "feed_url": tier_url("feed", tier, token),
        "today": today,
        "csp_nonce": NONCE_MARK,
    }


def render_page(request, tier, validation, listing, now):
    """The page's HTML with TOKEN_MARK where the token goes; from the cache when nothing changed."""
    key = page_key(tier, validation, listing, now)
    with _rendered_lock:
        html = _rendered.get(key)
        if html is not None:
            _rendered.move_to_end(key)
            return html
    html = render_to_string("deliveries/tier.html", page_context(tier, TOKEN_MARK, validation, listing, now), request)
    with _rendered_lock:
        _rendered[key] = html
        while len(_rendered) > RENDER_CACHE_SIZE:
            _rendered.popitem(last=False)
    return html


@require_safe
@tier_token
def tier_page(request):
    """The subscriber's page: files, freshness, schema and a snippet, all rendered on the server."""
    tier, token = request.tier, request.token
    listing = list_files(tier, newest_parts=True)
    html = render_page(request, tier, request.validation, listing, timezone.now())
    return HttpResponse(html.replace(TOKEN_MARK, quote(token, safe="")).replace(NONCE_MARK, str(request.csp_nonce)))


@require_safe
def ping(request):
    """A bare view returning "ok": the benchmark's baseline, and a cheap liveness probe."""
    return HttpResponse("ok", content_type="text/plain")
