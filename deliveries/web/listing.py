"""What a tier shows: the files on its page, feed and API (the newest month bundle and the
retained days), read from the database with only the fields those show."""

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Case, OuterRef, Q, Subquery, TextField, When
from django.db.models.fields.json import KT

from instrumetriq_site.compiled_queries import fetch, placeholder

from ..models import DailyFile, MonthBundle

# A parameter value no tier has, replaced by the real tier when a compiled query runs.
TIER_PARAM = placeholder("tier")


@dataclass(frozen=True)
class Listing:
    """The files on a tier's page, feed and API: the newest month bundle and the retained days."""

    tier: str
    mtd: MonthBundle | None
    daily: list = field(default_factory=list)
    newest: dict = field(default_factory=dict)  # the newest day's profile and preview, as JSON text

    @property
    def last_build_at(self):
        """Newest build among the shown files: no query for BuildRun needed."""
        stamps = [daily.built_at for daily in self.daily]
        if self.mtd is not None:
            stamps.append(self.mtd.built_at)
        return max(stamps, default=None)

    def mtd_day_rows(self):
        """Rows per included day of the month bundle, from its manifest's ``days`` list."""
        if self.mtd is None:
            return {}
        days = (self.mtd.manifest or {}).get("days") or []
        return {day["date"]: day["row_count"] for day in days if isinstance(day, dict) and "date" in day}


# Only what the page, API and feed show: manifests (their profiles are tens of KB) and
# ``input_fingerprint`` stay behind, but for the few keys named here.
DAILY_FIELDS = (
    "id", "tier", "date", "key", "manifest_key", "size_bytes", "sha256", "row_count", "hours_found", "is_partial",
    "built_at", "published_at", "deleted_at",
)  # fmt: skip
MTD_FIELDS = (
    "id", "tier", "month", "key", "manifest_key", "coverage_start", "coverage_end", "days_included", "days_missing",
    "partial_days", "row_count", "size_bytes", "sha256", "built_at",
)  # fmt: skip
NEWEST_ONLY = ("profile", "preview")  # manifest keys the page shows for the newest day alone
MTD_SHOWN = MTD_FIELDS + ("listed_days",)

# The newest day's profile and preview as last read, per tier: (sha256, {key: JSON text}). They are
# tens of KB and computed from the file alone, so while the newest day is the same file (same
# SHA-256) the page's query does not send them again; they are decoded only when a page is rendered.
KNOWN_SHA = placeholder("known_sha")
_newest_parts = {}


def _of_newest_day(name):
    """A manifest key of the tier's newest published day, unless that day's SHA-256 is the known
    one; null on the other rows. Part of the daily files' query: no query of its own."""
    newest = DailyFile.objects.published().filter(tier=OuterRef("tier")).order_by("-date").values("pk")[:1]
    sent = Q(pk=Subquery(newest)) & ~Q(sha256=KNOWN_SHA)
    return Case(When(sent, then=KT(f"manifest__{name}")), default=None, output_field=TextField())


def _daily_instance(values):
    daily = DailyFile(**{name: values[name] for name in DAILY_FIELDS})
    daily.manifest = {"missing_hours": values["listed_missing_hours"] or []}  # all the page reads of it
    return daily


def _newest_texts(tier, rows, parts):
    """{key: JSON text} of the newest day's ``parts``: as the query sent them, or as kept."""
    if not parts or not rows:
        return {}
    known = _newest_parts.get(tier)
    sha256 = rows[0]["sha256"]
    if known is not None and known[0] == sha256:
        return known[1]
    texts = {name: rows[0][name] for name in parts if rows[0][name] is not None}
    if texts:  # a day built before profiles has none: asked again, until a rebuild adds them
        _newest_parts[tier] = (sha256, texts)
    return texts


def newest_part(listing, name):
    """A manifest key of the newest shown day (``profile``, ``preview``), decoded, or None."""
    text = listing.newest.get(name)
    return json.loads(text) if isinstance(text, str | bytes) else text


def _mtd_instance(values):
    bundle = MonthBundle(**{name: values[name] for name in MTD_FIELDS})
    bundle.manifest = {"days": values["listed_days"] or []}  # the rows of each day, for the chart
    return bundle


def list_files(tier, *, newest_parts=False):
    """Two queries: the retained daily files (newest first) and the newest month bundle.

    Built with the ORM, compiled once, run with the tier as parameter; instances carry only the
    shown fields (a day's ``manifest`` is reduced to its ``missing_hours``; a bundle's to its
    ``days``, both read from their generated columns, not from the manifest). With
    ``newest_parts`` (the page) the listing has the newest day's ``profile`` and ``preview`` too,
    as text (``newest_part`` decodes them), sent by the query only when the newest file changed.
    """
    limit = settings.DAILY_RETENTION_DAYS
    tier = str(tier)
    parts = NEWEST_ONLY if newest_parts else ()
    names = DAILY_FIELDS + ("listed_missing_hours", *parts)
    daily = fetch(
        f"daily-{limit}" + ("-newest" if parts else ""),
        DailyFile,
        names,
        lambda: (
            DailyFile.objects.for_tier(TIER_PARAM)
            .published()
            .newest_first()
            .annotate(**{name: _of_newest_day(name) for name in parts})
            .values_list(*names)[:limit]
        ),
        {TIER_PARAM: tier, KNOWN_SHA: _newest_parts.get(tier, ("",))[0]},
        json_names=("listed_missing_hours",),
        text_names=parts,
    )
    bundles = fetch(
        "mtd",
        MonthBundle,
        MTD_SHOWN,
        lambda: MonthBundle.objects.for_tier(TIER_PARAM).newest_first().values_list(*MTD_SHOWN)[:1],
        {TIER_PARAM: tier},
        json_names=("listed_days",),
    )
    mtd = _mtd_instance(bundles[0]) if bundles else None
    return Listing(
        tier=tier,
        mtd=mtd,
        daily=[_daily_instance(values) for values in daily],
        newest=_newest_texts(tier, daily, parts),
    )
