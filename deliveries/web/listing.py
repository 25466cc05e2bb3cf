"""What a tier shows: the files on its page, feed and API (the newest month bundle and the
retained days), read with plain ORM queries that fetch only the fields those show, and kept in
Django's cache under the tier's listing version (``ListingVersion``), which every change to the
listing renews. The version is read first (``version_of``), then the files: a listing cached
under a version is that version's or a newer one, never an older one.
"""

import json
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db.models import Case, OuterRef, Subquery, TextField, When
from django.db.models.fields.json import KT

from ..models import DailyFile, ListingVersion, MonthBundle

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
CACHE_SECONDS = 6 * 3600  # what is cached is keyed by the listing version: this only bounds memory


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


def _of_newest_day(name):
    """A manifest key of the tier's newest published day (JSON text), null on the other rows."""
    newest = DailyFile.objects.published().filter(tier=OuterRef("tier")).order_by("-date").values("pk")[:1]
    return Case(When(pk=Subquery(newest), then=KT(f"manifest__{name}")), default=None, output_field=TextField())


def version_of(tier):
    """The tier's listing version: one small query, the only one of a request served from the
    cache. None before anything was ever listed or rotated for the tier (then nothing is cached)."""
    found = list(ListingVersion.objects.filter(tier=tier).values_list("value", flat=True)[:1])  # no ORDER BY
    return found[0] if found else None


def list_files(tier, *, newest_parts=False):
    """The tier's listing: two queries, the newest month bundle, then the retained daily files
    (newest first). Instances carry only the shown fields (a bundle's ``manifest`` is reduced to
    its ``days``, a day's to its ``missing_hours``, both read from their generated columns). With
    ``newest_parts`` (the page) the newest day's ``profile`` and ``preview`` come too, as JSON text
    (``newest_part`` decodes them).
    """
    tier = str(tier)
    bundle = MonthBundle.objects.for_tier(tier).newest_first().values_list(*MTD_FIELDS, "listed_days").first()
    mtd = None
    if bundle is not None:
        mtd = MonthBundle(**dict(zip(MTD_FIELDS, bundle[:-1], strict=True)))
        mtd.manifest = {"days": _json(bundle[-1]) or []}  # the rows of each day, for the chart
    parts = NEWEST_ONLY if newest_parts else ()
    names = (*DAILY_FIELDS, "listed_missing_hours", *parts)
    rows = [
        dict(zip(names, row, strict=True))
        for row in DailyFile.objects.for_tier(tier)
        .published()
        .newest_first()
        .annotate(**{name: _of_newest_day(name) for name in parts})
        .values_list(*names)[: settings.DAILY_RETENTION_DAYS]
    ]
    return Listing(
        tier=tier,
        mtd=mtd,
        daily=[_daily_instance(row) for row in rows],
        newest={name: rows[0][name] for name in parts if rows[0][name] is not None} if rows else {},
    )


def cached_files(tier, version, *, newest_parts=False):
    """``list_files`` from Django's cache while the tier's listing ``version`` (read before, by the
    caller) is the same; read and kept there otherwise. Without a version, read every time."""
    if version is None:
        return list_files(tier, newest_parts=newest_parts)
    key = f"tier-files:{tier}:{version}:{int(newest_parts)}"
    return cache.get_or_set(key, lambda: list_files(tier, newest_parts=newest_parts), CACHE_SECONDS)


def newest_part(listing, name):
    """A manifest key of the newest shown day (``profile``, ``preview``), decoded, or None."""
    return _json(listing.newest.get(name))


def _daily_instance(values):
    daily = DailyFile(**{name: values[name] for name in DAILY_FIELDS})
    daily.manifest = {"missing_hours": _json(values["listed_missing_hours"]) or []}  # all the page reads of it
    return daily


def _json(text):
    """A generated column's or a key's JSON text, decoded (None stays None)."""
    return json.loads(text) if isinstance(text, str | bytes) else text
