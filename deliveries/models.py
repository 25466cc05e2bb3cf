"""Delivery state. The database is the index: a row is what subscribers are shown, so a row is
written only after its bytes are fully in storage. Bytes never change under a listed key: every
version has keys of its own (``StoredVersion``), and a version's objects are deleted only
``SIGNED_URL_EXPIRY`` after it stopped being listed (``deliveries.collect``)."""

from datetime import timedelta

from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import KT
from django.utils import timezone

from .outcomes import RUN_CHOICES, Outcome
from .storage import download_name
from .tiers import Tier


def next_month(first):
    """First day of the month after the one starting at ``first``."""
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_end(first):
    """Last day of the month starting at ``first``."""
    return next_month(first) - timedelta(days=1)


class DailyFileQuerySet(models.QuerySet):
    def for_tier(self, tier):
        return self.filter(tier=tier)

    def published(self):
        return self.filter(deleted_at__isnull=True)

    def deleted(self):
        return self.filter(deleted_at__isnull=False)

    def in_month(self, month_start):
        return self.filter(date__gte=month_start, date__lt=next_month(month_start))

    def newest_first(self):
        return self.order_by("-date")


class DailyFile(models.Model):
    """One tier's Parquet file for one UTC day: the version subscribers are shown (``key``), or,
    once retention delisted it (``deleted_at``), the history of what was last shown."""

    tier = models.CharField(max_length=8, choices=Tier.choices)
    date = models.DateField()
    key = models.CharField(max_length=200)
    manifest_key = models.CharField(max_length=200)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    row_count = models.IntegerField()
    hours_found = models.PositiveSmallIntegerField()
    coverage_ratio = models.FloatField()
    is_partial = models.BooleanField(default=False)
    skipped_lines = models.IntegerField(default=0)
    # What the day was built from (hour file names and sizes): an unchanged input is not rebuilt.
    input_fingerprint = models.CharField(max_length=64)
    manifest = models.JSONField()
    # What every page, API and feed request reads of the manifest, kept apart by the database as
    # JSON text: reading it then does not parse the whole manifest (its profile and preview are
    # tens of KB).
    listed_missing_hours = models.GeneratedField(
        expression=KT("manifest__missing_hours"), output_field=models.TextField(null=True), db_persist=True
    )
    built_at = models.DateTimeField()
    published_at = models.DateTimeField()
    # Delisted (by retention): no longer on the page, API or index. Its objects are collected later.
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = DailyFileQuerySet.as_manager()

    class Meta:
        ordering = ["-date", "tier"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "date"], name="dailyfile_one_per_tier_and_day"),
            models.CheckConstraint(condition=Q(hours_found__gte=0, hours_found__lte=24), name="dailyfile_hours_in_day"),
        ]
        indexes = [models.Index(fields=["tier", "deleted_at", "-date"], name="dailyfile_tier_visible")]

    def __str__(self):
        return f"{self.tier} {self.date}"

    @property
    def missing_hours(self):
        return self.manifest.get("missing_hours", [])

    @property
    def download_filename(self):
        return download_name(self.tier, "daily", self.date.isoformat())

    @property
    def manifest_filename(self):
        return download_name(self.tier, "daily", self.date.isoformat(), manifest=True)


class MonthBundleQuerySet(models.QuerySet):
    def for_tier(self, tier):
        return self.filter(tier=tier)

    def newest_first(self):
        return self.order_by("-month")


class MonthBundle(models.Model):
    """One tier's month-to-date file: the version of the month's bundle last published (``key``).
    Rebuilt nightly as a new version; a tier lists only its newest month's bundle."""

    tier = models.CharField(max_length=8, choices=Tier.choices)
    month = models.DateField(help_text="First day of the month.")
    key = models.CharField(max_length=200)
    manifest_key = models.CharField(max_length=200)
    coverage_start = models.DateField()
    coverage_end = models.DateField()
    days_included = models.JSONField(default=list)
    days_missing = models.JSONField(default=list)
    partial_days = models.JSONField(default=list)
    row_count = models.BigIntegerField()
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField()
    # The included days' rows, for the page's chart: apart, as for DailyFile.listed_missing_hours.
    listed_days = models.GeneratedField(
        expression=KT("manifest__days"), output_field=models.TextField(null=True), db_persist=True
    )
    built_at = models.DateTimeField()

    objects = MonthBundleQuerySet.as_manager()

    class Meta:
        ordering = ["-month", "tier"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "month"], name="monthbundle_one_per_tier_and_month"),
            models.CheckConstraint(
                condition=Q(coverage_start__lte=F("coverage_end")), name="monthbundle_coverage_ordered"
            ),
        ]

    def __str__(self):
        return f"{self.tier} {self.month_label}"

    @property
    def month_label(self):
        return self.month.strftime("%Y-%m")

    @property
    def month_end(self):
        return month_end(self.month)

    @property
    def download_filename(self):
        return download_name(self.tier, "mtd", self.month_label)

    @property
    def manifest_filename(self):
        return download_name(self.tier, "mtd", self.month_label, manifest=True)


class StoredVersionQuerySet(models.QuerySet):
    def listed(self):
        return self.filter(delisted_at__isnull=True)

    def delisted(self):
        return self.filter(delisted_at__isnull=False)

    def uncollected(self):
        return self.filter(collected_at__isnull=True)

    def due(self, cutoff):
        """Delisted at or before ``cutoff`` and still in storage: what the collector may delete."""
        return self.filter(delisted_at__lte=cutoff, collected_at__isnull=True)


class StoredVersion(models.Model):
    """One published version's two objects in storage (data and manifest, in a folder of their
    own) and its life: listed, delisted, collected.

    ``DailyFile`` and ``MonthBundle`` say which version subscribers are shown; this ledger
    remembers every version they were ever shown, so that its objects are deleted only
    ``SIGNED_URL_EXPIRY`` after it was delisted (a signed URL handed out while it was listed still
    fetches the bytes it was listed with) and never while it is listed. Listing, delisting and
    collecting happen under ``versions.ledger_lock``.
    """

    class Kind(models.TextChoices):
        DAILY = "daily", "Daily file"
        MTD = "mtd", "Month-to-date bundle"

    tier = models.CharField(max_length=8, choices=Tier.choices)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    label = models.CharField(max_length=10, help_text="The date (daily) or month (MTD).")
    key = models.CharField(max_length=200)
    manifest_key = models.CharField(max_length=200)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    listed_at = models.DateTimeField()
    delisted_at = models.DateTimeField(null=True, blank=True, help_text="Empty while listed.")
    collected_at = models.DateTimeField(null=True, blank=True, help_text="When its objects were deleted.")

    objects = StoredVersionQuerySet.as_manager()

    class Meta:
        ordering = ["-listed_at", "tier", "kind", "label"]
        constraints = [
            models.UniqueConstraint(fields=["key"], name="storedversion_one_row_per_key"),
            models.UniqueConstraint(
                fields=["tier", "kind", "label"],
                condition=Q(delisted_at__isnull=True),
                name="storedversion_one_listed_per_file",
            ),
            models.CheckConstraint(
                condition=Q(collected_at__isnull=True) | Q(delisted_at__isnull=False),
                name="storedversion_collected_only_once_delisted",
            ),
        ]
        indexes = [models.Index(fields=["collected_at", "delisted_at"], name="storedversion_collectable")]

    def __str__(self):
        return f"{self.tier} {self.kind} {self.label} {self.sha256[:16] or self.key}"

    @property
    def is_listed(self):
        return self.delisted_at is None


class BuildRunQuerySet(models.QuerySet):
    def conclusive(self):
        """Runs that say something about the deliveries: not running, not a dry run, not locked out."""
        return self.exclude(outcome__in=[Outcome.RUNNING, Outcome.DRY_RUN, Outcome.LOCKED])

    def latest_conclusive(self):
        return self.conclusive().order_by("-started_at").first()


class BuildRun(models.Model):
    """One run of a build command, with what it did step by step and day by day."""

    command = models.CharField(max_length=64)
    arguments = models.JSONField(default=dict)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=RUN_CHOICES, default=Outcome.RUNNING)
    steps = models.JSONField(default=list, help_text="Each step: name, outcome, seconds, detail.")
    results = models.JSONField(default=list, help_text="Each day and tier: date, tier, outcome, message.")
    error = models.TextField(blank=True)
    holder = models.CharField(
        max_length=64,
        blank=True,
        help_text="The process (host:pid:id) that held the build lock for this run; blank for runs without it.",
    )

    objects = BuildRunQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="buildrun_recent")]

    def __str__(self):
        return f"{self.command} {self.started_at:%Y-%m-%d %H:%M} UTC {self.outcome}"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class DownloadCount(models.Model):
    """Aggregated downloads per tier, file and UTC day. Nothing about who downloaded."""

    class Kind(models.TextChoices):
        DAILY = "daily", "Daily file"
        MTD = "mtd", "Month-to-date bundle"
        DAILY_MANIFEST = "daily_manifest", "Daily manifest"
        MTD_MANIFEST = "mtd_manifest", "MTD manifest"

    tier = models.CharField(max_length=8, choices=Tier.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    file_label = models.CharField(max_length=10, help_text="The file's date (daily) or month (MTD).")
    day = models.DateField(help_text="UTC day of the downloads.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-day", "tier", "kind", "file_label"]
        constraints = [
            models.UniqueConstraint(
                fields=["tier", "kind", "file_label", "day"], name="downloadcount_one_per_file_and_day"
            )
        ]

    def __str__(self):
        return f"{self.tier} {self.kind} {self.file_label} on {self.day}: {self.count}"


class ListingVersion(models.Model):
    """A tier's listing version: a fresh random value, written in the same transaction as every
    change to what the tier lists or to the tokens that open it (``versions.touch_listing``: a
    version listed or delisted, a token rotation).

    The web side keys what it caches (the live tokens, the listing, the rendered page) by it and
    reads it with every request, so nothing cached from an older state is used again, by any
    worker on any host: the database is what they and the nightly jobs share. Random rather than
    counted, so a database restored from a backup or rolled back never meets something cached
    from another state under the same value.
    """

    tier = models.CharField(max_length=8, choices=Tier.choices)
    value = models.CharField(max_length=32)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tier"], name="listingversion_one_per_tier")]

    def __str__(self):
        return f"{self.tier} listing {self.value}"
