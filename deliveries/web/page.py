"""Subscriber views: the tier page, the token-checked downloads, the JSON API and the signed links.

Thin on purpose: check the token (``tokens.validation.validate``, nothing else of tokens), ask
``deliveries.downloads`` for files and bytes, and turn the outcomes into statuses. The page itself
costs three queries: the token, the daily files, the month bundle.
"""

import logging
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import expected_newest_day, iso_z, next_build
from tokens.schedule import Schedule
from tokens.validation import validate as validate_token

from .. import storage
from ..storage import StorageError
from ..tiers import TIER_DESCRIPTIONS, Tier, schema_for
from . import downloads, explore
from .downloads import DAILY, MTD

logger = logging.getLogger(__name__)


# --- Small helpers -------------------------------------------------------------------------------


def tier_or_404(value):
    try:
        return Tier(value)
    except ValueError:
        raise Http404("No such tier.")


def token_from(request):
    """The token of ``?t=`` or ``?token=``; the empty string when there is none."""
    return request.GET.get("t") or request.GET.get("token") or ""


def validate(tier, token):
    """The token's Validation, or None without a token (no query for an empty string)."""
    if not token:
        return None
    return validate_token(tier, token)


def outgoing_until(validation, now):
    """When an outgoing token stops working (None for a token that is not outgoing)."""
    if not validation.is_outgoing:
        return None
    return validation.promotes_at or Schedule.from_settings().promote.next_after(now)


def token_query(token):
    return f"?t={quote(token, safe='')}"


def file_links(tier, token, kind, label, *, absolute=False, version=None):
    """The token-checked links of one file: data, manifest view, manifest download. With
    ``version`` (the listed one's, as the page, feed and API give) they fetch that version, even
    after a rebuild listed another, so the bytes match the SHA-256 shown beside the link."""
    prefix = settings.SITE_URL if absolute else ""
    query = token_query(token) + (f"&v={version}" if version else "")
    kwargs = {"tier": tier.value, "label": label}
    data = reverse(f"deliveries:{kind}_file", kwargs=kwargs)
    manifest = reverse(f"deliveries:{kind}_manifest", kwargs=kwargs)
    return {
        "url": f"{prefix}{data}{query}",
        "manifest_url": f"{prefix}{manifest}{query}",
        "manifest_download_url": f"{prefix}{manifest}{query}&download=1",
    }


# --- Error responses -----------------------------------------------------------------------------


def forbidden(request, tier):
    """The friendly 403: which plan, where the current link is, when links change. Never why."""
    context = {"tier": tier, "plan": tier.plan, "schedule": Schedule.from_settings()}
    return render(request, "deliveries/forbidden.html", context, status=403)


def file_missing(request, tier, token):
    context = {"tier": tier, "plan": tier.plan, "page_url": reverse("deliveries:tier_page", args=[tier.value])}
    context["page_url"] += token_query(token)
    return render(request, "deliveries/file_missing.html", context, status=404)


def unavailable(request, exc):
    logger.error("storage unavailable while serving %s: %s", request.path, exc)
    return render(request, "503.html", status=503)


def json_error(status, code, message):
    return JsonResponse({"error": code, "message": message}, status=status)


# --- The tier page -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One day of the rows chart."""

    day: date
    rows: int | None
    state: str  # "full", "partial", "missing"
    in_mtd: bool
    in_daily: bool


def chart_days(listing, today):
    """The retained days and the month's days, oldest first, with gaps and partial days marked.

    A day inside the shown span with no file is a gap; so is an expected day not published yet
    (yesterday after the build deadline) when it is within the retention window.
    """
    rows, partial = {}, set()
    mtd_days = set()
    if listing.mtd is not None:
        rows.update(downloads.mtd_day_rows(listing.mtd))
        mtd_days = {date.fromisoformat(d) for d in listing.mtd.days_included}
        partial.update(listing.mtd.partial_days)
    daily_days = set()
    for daily in listing.daily:
        label = daily.date.isoformat()
        rows[label] = daily.row_count
        daily_days.add(daily.date)
        if daily.is_partial:
            partial.add(label)
    known = mtd_days | daily_days
    if listing.mtd is not None:
        known |= {listing.mtd.coverage_start, listing.mtd.coverage_end}
    if not known:
        return []
    first, last = min(known), max(known)
    expected_last = expected_newest_day(timezone.now())
    if last < expected_last <= last + timedelta(days=settings.DAILY_RETENTION_DAYS):
        last = expected_last
    bars = []
    day = first
    while day <= last:
        label = day.isoformat()
        present = day in known and (day in mtd_days or day in daily_days)
        state = "missing" if not present else ("partial" if label in partial else "full")
        bars.append(Bar(day, rows.get(label) if present else None, state, day in mtd_days, day in daily_days))
        day += timedelta(days=1)
    return bars


def chart_data(bars, *, unit=10, plot=100):
    """Geometry for the rows chart: SVG bars in a viewBox stretched to the card (``unit`` per day,
    ``plot`` high), and day labels and spans as HTML on a grid of the same columns, so their text
    stays readable at any width. No JS."""
    if not bars:
        return None
    peak = max((bar.rows or 0) for bar in bars) or 1
    count = len(bars)
    shapes = []
    for index, bar in enumerate(bars):
        if bar.state == "missing":
            h = 6
        elif bar.rows is None:
            h = 12
        else:
            h = max(3, round(bar.rows / peak * (plot - 4), 1))
        shapes.append(
            {"x": index * unit + unit * 0.15, "y": plot - h, "w": unit * 0.7, "h": h, "cls": bar.state, "bar": bar}
        )
    step = 1 if count <= 16 else (2 if count <= 32 else 3)
    labels = []
    for index, bar in enumerate(bars):
        last = index == count - 1
        if last or (index % step == 0 and count - 1 - index >= step):
            minor = not last and index % (2 * step) != 0
            labels.append({"column": index + 1, "text": bar.day.day, "minor": minor})
    bands = []
    for name, attr in (("Month to date", "in_mtd"), ("Daily files", "in_daily")):
        indexes = [i for i, bar in enumerate(bars) if getattr(bar, attr)]
        if indexes:
            bands.append({"name": name, "start": indexes[0] + 1, "end": indexes[-1] + 2, "key": attr})
    return {
        "days": count,
        "width": count * unit,
        "height": plot,
        "shapes": shapes,
        "labels": labels,
        "bands": bands,
        "peak": peak,
        "has_gap": any(bar.state == "missing" for bar in bars),
        "has_partial": any(bar.state == "partial" for bar in bars),
        "first": bars[0].day,
        "last": bars[-1].day,
    }


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


def snippet_for(listing):
    """A copy-paste snippet that checks the SHA-256 and loads the newest file with pandas."""
    newest = listing.daily[0] if listing.daily else listing.mtd
    filename = newest.download_filename if newest else storage.download_name(listing.tier, "daily", "YYYY-MM-DD")
    sha = newest.sha256 if newest else "<sha256 from this page or the manifest>"
    return (
        "import hashlib\n"
        "import pandas as pd\n\n"
        f'path = "{filename}"\n'
        f'expected = "{sha}"\n\n'
        "digest = hashlib.sha256()\n"
        'with open(path, "rb") as fh:\n'
        '    for block in iter(lambda: fh.read(1 << 20), b""):\n'
        "        digest.update(block)\n"
        'assert digest.hexdigest() == expected, "checksum mismatch: download again"\n\n'
        "df = pd.read_parquet(path)\n"
        "print(df.shape)\n"
        "print(df.dtypes)\n"
    )


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


def query_target(tier, token, listing):
    """The file the page's query snippets read in place: the month bundle (the big one), else the
    newest day; its absolute token-checked URL, which answers HEAD and Range."""
    if listing.mtd is not None:
        kind, label = MTD, listing.mtd.month_label
    elif listing.daily:
        kind, label = DAILY, listing.daily[0].date.isoformat()
    else:
        return None
    url = file_links(tier, token, kind, label, absolute=True)["url"]
    return {"kind": kind, "label": label, "url": url, "snippets": explore.query_snippets(url)}


def page_context(tier, token, validation, listing, now):
    today = now.date()
    newest = listing.daily[0] if listing.daily else None
    profile = downloads.newest_part(listing, "profile")
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
        "chart": chart_data(chart_days(listing, today)),
        "columns": explore.column_profiles(tier, profile),
        "column_count": len(schema_for(tier)),
        "profiled": newest if profile else None,
        "preview": explore.preview_table(downloads.newest_part(listing, "preview")),
        "preview_of": newest,
        "query": query_target(tier, token, listing),
        "snippet": snippet_for(listing),
        "api_url": reverse("deliveries:api_tier", args=[tier.value]) + token_query(token),
        "feed_url": reverse("deliveries:feed", args=[tier.value]) + token_query(token),
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
def tier_page(request, tier):
    """The subscriber's page: files, freshness, schema and a snippet, all rendered on the server."""
    tier = tier_or_404(tier)
    token = token_from(request)
    validation = validate(tier, token)
    if not validation:
        return forbidden(request, tier)
    html = render_page(request, tier, validation, downloads.listing(tier, newest_parts=True), timezone.now())
    return HttpResponse(html.replace(TOKEN_MARK, quote(token, safe="")).replace(NONCE_MARK, str(request.csp_nonce)))


# --- Downloads -----------------------------------------------------------------------------------


def _download(request, tier, kind, label, *, manifest):
    tier = tier_or_404(tier)
    token = token_from(request)
    if not validate(tier, token):
        return forbidden(request, tier)
    try:
        target = downloads.find(tier, kind, label, manifest=manifest, version=request.GET.get("v"))
        attachment = not manifest or request.GET.get("download") == "1"
        response = downloads.respond(request, target, attachment=attachment)
    except downloads.NotAvailable:
        return file_missing(request, tier, token)
    except StorageError as exc:
        return unavailable(request, exc)
    if downloads.is_new_download(request, response):
        downloads.count(target)
    return response


@require_safe
def daily_file(request, tier, label):
    """A day's Parquet: token checked again here, then a presigned redirect or a local stream."""
    return _download(request, tier, DAILY, label, manifest=False)


@require_safe
def daily_manifest(request, tier, label):
    """A day's manifest, shown inline (``?download=1`` for an attachment)."""
    return _download(request, tier, DAILY, label, manifest=True)


@require_safe
def mtd_file(request, tier, label):
    return _download(request, tier, MTD, label, manifest=False)


@require_safe
def mtd_manifest(request, tier, label):
    return _download(request, tier, MTD, label, manifest=True)


@require_safe
def signed_file(request, filename):
    """A local-storage file by a signed, expiring ticket (the API's ``signed_url``): no token.

    The ticket rides in ``?t=`` so the log filter and the recommended access-log format drop it.
    """
    ref = storage.unsign_local_key(request.GET.get("t", "")) if storage.is_local() else None
    if ref is None or ref[1] != filename:
        response = render(request, "deliveries/link_expired.html", status=403)
    else:
        try:
            target = downloads.target_for_key(*ref)
            response = downloads.stream_local(
                request,
                storage.open_local(target.key),
                filename=target.filename,
                content_type=target.content_type,
            )
        except downloads.NotAvailable:
            response = render(request, "404.html", status=404)
        except StorageError as exc:
            response = unavailable(request, exc)
        else:
            if downloads.is_new_download(request, response):
                downloads.count(target)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store, private"
    return response


# --- JSON API ------------------------------------------------------------------------------------


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
def api_tier(request, tier):
    """The tier's files as JSON for scripts. Errors are JSON too, never an HTML page or a traceback."""
    try:
        tier = Tier(tier)
    except ValueError:
        return json_error(404, "unknown_tier", "No such tier: use tier1, tier2 or tier3.")
    token = token_from(request)
    if not token:
        return json_error(401, "token_required", "Add ?t=TOKEN: the link is in your tier's pinned Patreon post.")
    validation = validate(tier, token)
    if not validation:
        return json_error(
            403,
            "token_not_valid",
            f"This link is not, or no longer, valid for {tier.plan}. "
            "The current link is in your tier's pinned Patreon post.",
        )
    try:
        payload = api_payload(tier, token, validation, downloads.listing(tier), timezone.now())
    except StorageError as exc:
        logger.error("storage unavailable while serving the %s API: %s", tier.value, exc)
        return json_error(503, "storage_unavailable", "Downloads are briefly unavailable. Try again in a few minutes.")
    except Exception:
        logger.exception("API failure for %s", tier.value)
        return json_error(500, "server_error", "Something went wrong on our side. Try again later.")
    return JsonResponse(payload, json_dumps_params={"indent": 2})


# --- Plain -------------------------------------------------------------------------------------


@require_safe
def ping(request):
    """A bare view returning "ok": the benchmark's baseline, and a cheap liveness probe."""
    return HttpResponse("ok", content_type="text/plain")
