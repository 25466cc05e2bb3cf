"""The tier page: the subscriber's files, freshness, schema, profiles, preview and snippets, all
rendered on the server.

Rendered once per worker for each state of the page (``PageState``: the tier's listing version,
the token's deadline, the day) and kept in Django's cache; every request still checks its token
against the listing version it reads (``access.tier_token``), so a new file, a delisted day or a
rotation shows at once. The token and the response's CSP nonce are swapped into the cached HTML.
One query a request (the listing version); a worker's first render of a listing version adds
three (the live tokens, the month bundle, the days).
"""

from dataclasses import dataclass
from datetime import date, datetime
from secrets import token_hex

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import expected_newest_day, iso_z, next_build
from tokens.schedule import Schedule

from ..tiers import TIER_DESCRIPTIONS, Tier, schema_for
from . import explore, listing
from .access import outgoing_until, tier_token
from .charts import chart_data, chart_days
from .downloads import DAILY, MTD
from .links import TOKEN_MARK, file_links, tier_url, with_token
from .listing import newest_part
from .snippets import query_target, snippet_for

NONCE_MARK = f"nonce{token_hex(12)}"  # where the response's CSP nonce goes in a cached page


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


@dataclass(frozen=True)
class PageState:
    """Everything a tier page is rendered from but the settings: the tier's files are named by
    their listing version, the rest is the token's deadline and the clock, as the page shows
    them. It is the cache key, and ``page_context`` reads nothing else, so the key cannot miss
    an input of the page."""

    tier: Tier
    version: str | None  # None: not cached (the tier's listing never changed)
    outgoing_until: datetime | None  # when the request's token stops working, if it is outgoing
    today: date
    newest_expected: date  # the newest day that should be published by now (the chart's last day)
    next_update: datetime

    @classmethod
    def of(cls, tier, version, validation, now):
        return cls(
            tier=tier,
            version=version,
            outgoing_until=outgoing_until(validation, now),
            today=now.date(),
            newest_expected=expected_newest_day(now),
            next_update=next_build(now),
        )

    @property
    def cache_key(self):
        parts = (self.tier.value, self.version, iso_z(self.outgoing_until), self.today, self.newest_expected)
        return "tier-page:" + ":".join(str(part) for part in (*parts, iso_z(self.next_update)))


def page_context(state, files):
    tier, token = state.tier, TOKEN_MARK
    newest = files.daily[0] if files.daily else None
    profile = newest_part(files, "profile")
    return {
        "tier": tier,
        "plan": tier.plan,
        "description": TIER_DESCRIPTIONS[tier],
        "outgoing_until": state.outgoing_until,
        "schedule": Schedule.from_settings(),
        "mtd": mtd_entry(tier, token, files.mtd, state.today),
        "daily": [daily_entry(tier, token, daily) for daily in files.daily],
        "retention_days": settings.DAILY_RETENTION_DAYS,
        "last_updated": files.last_build_at,
        "next_update": state.next_update,
        "build_time": settings.BUILD_TIME_UTC,
        "chart": chart_data(chart_days(files, state.newest_expected)),
        "columns": explore.column_profiles(tier, profile),
        "column_count": len(schema_for(tier)),
        "profiled": newest if profile else None,
        "preview": explore.preview_table(newest_part(files, "preview")),
        "preview_of": newest,
        "query": query_target(tier, token, files),
        "snippet": snippet_for(files),
        "api_url": tier_url("api_tier", tier, token),
        "feed_url": tier_url("feed", tier, token),
        "today": state.today,
        "csp_nonce": NONCE_MARK,
    }


def rendered_page(request, state):
    """The page's HTML with the marks in it: from the cache, or rendered and kept there."""

    def render():
        files = listing.cached_files(state.tier, state.version, newest_parts=True)
        return render_to_string("deliveries/tier.html", page_context(state, files), request)

    return cache.get_or_set(state.cache_key, render, listing.CACHE_SECONDS) if state.version else render()


@require_safe
@tier_token
def tier_page(request):
    """The subscriber's page: files, freshness, schema and snippets."""
    state = PageState.of(request.tier, request.listing_version, request.validation, timezone.now())
    html = rendered_page(request, state)
    return HttpResponse(with_token(html, request.token).replace(NONCE_MARK, str(request.csp_nonce)))


@require_safe
def ping(request):
    """A bare view returning "ok": the benchmark's baseline, and a cheap liveness probe."""
    return HttpResponse("ok", content_type="text/plain")
