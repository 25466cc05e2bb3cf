"""The tier's Atom feed: one entry per published file, so a feed reader shows new data.

A month bundle is rebuilt as a new version every night; its entry id includes the file's SHA-256 so
each rebuild shows up as new, and a daily file rebuilt with late hours does the same.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.syndication.views import Feed
from django.template.defaultfilters import filesizeformat
from django.utils.feedgenerator import Atom1Feed, Enclosure
from django.views.decorators.http import require_safe

from .. import storage
from .access import tier_token
from .downloads import DAILY, MTD
from .links import file_links, tier_url
from .listing import cached_files


@dataclass(frozen=True)
class Entry:
    title: str
    description: str
    link: str
    guid: str
    updated: datetime
    size: int


def entries(tier, token, listing):
    items = []
    if listing.mtd is not None:
        bundle = listing.mtd
        links = file_links(tier, token, MTD, bundle.month_label, absolute=True, version=bundle.sha256[:16])
        notes = []
        if bundle.days_missing:
            notes.append(f"missing days: {', '.join(bundle.days_missing)}")
        if bundle.partial_days:
            notes.append(f"partial days: {', '.join(bundle.partial_days)}")
        items.append(
            Entry(
                title=f"{tier.plan} month to date {bundle.month_label} "
                f"(to {bundle.coverage_end.isoformat()}, {bundle.row_count:,} rows)",
                description=(
                    f"{len(bundle.days_included)} days, {bundle.coverage_start} to {bundle.coverage_end}; "
                    f"{bundle.row_count:,} rows; {filesizeformat(bundle.size_bytes)}; SHA-256 {bundle.sha256}"
                    + (f"; {'; '.join(notes)}" if notes else "")
                    + "."
                ),
                link=links["url"],
                guid=f"urn:instrumetriq:{tier.value}:mtd:{bundle.month_label}:{bundle.sha256}",
                updated=bundle.built_at,
                size=bundle.size_bytes,
            )
        )
    for daily in listing.daily:
        label = daily.date.isoformat()
        links = file_links(tier, token, DAILY, label, absolute=True, version=daily.sha256[:16])
        partial = f"; partial day, {daily.hours_found}/24 hours" if daily.is_partial else ""
        items.append(
            Entry(
                title=f"{tier.plan} daily file {label} ({daily.row_count:,} rows)",
                description=(
                    f"{daily.row_count:,} rows; {filesizeformat(daily.size_bytes)}; SHA-256 {daily.sha256}{partial}."
                ),
                link=links["url"],
                guid=f"urn:instrumetriq:{tier.value}:daily:{label}:{daily.sha256}",
                updated=daily.published_at,
                size=daily.size_bytes,
            )
        )
    return sorted(items, key=lambda item: item.updated, reverse=True)


class TierFeed(Feed):
    feed_type = Atom1Feed

    def __init__(self, tier, token, listing):
        self.tier, self.token, self.listing = tier, token, listing

    def get_object(self, request, *args, **kwargs):
        return self.listing

    def title(self):
        return f"Instrumetriq {self.tier.plan} downloads"

    def subtitle(self):
        return f"New {self.tier.plan} Parquet files, nightly. All times UTC."

    def link(self):
        return tier_url("tier_page", self.tier, self.token, absolute=True)

    def feed_url(self):
        """The self link keeps the token: a reader that follows rel="self" must not lose it."""
        return tier_url("feed", self.tier, self.token, absolute=True)

    def feed_guid(self):
        return f"urn:instrumetriq:{self.tier.value}:feed"

    def items(self, listing):
        return entries(self.tier, self.token, listing)

    def item_title(self, item):
        return item.title

    def item_description(self, item):
        return item.description

    def item_link(self, item):
        return item.link

    def item_guid(self, item):
        return item.guid

    item_guid_is_permalink = False

    def item_pubdate(self, item):
        return item.updated

    def item_updateddate(self, item):
        return item.updated

    def item_enclosures(self, item):
        return [Enclosure(item.link, str(item.size), storage.PARQUET_CONTENT_TYPE)]


@require_safe
@tier_token
def tier_feed(request):
    """Token checked like the page; the feed's links are the token-checked download endpoints."""
    return TierFeed(request.tier, request.token, cached_files(request.tier, request.listing_version))(request)
