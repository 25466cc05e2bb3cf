"""Delivery state for the operator: what is published, what was built, what failed."""

from django.contrib import admin
from django.db.models import CharField, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, Substr
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join

from .models import BuildRun, DailyFile, DownloadCount, MonthBundle


def downloads_of(kind, label):
    """Total downloads of each listed file, as a subquery: one query for the whole changelist.

    Counts are aggregated per tier, file and UTC day (nothing about who); ``label`` is the file's
    date (daily) or month (MTD) as text, the way DownloadCount.file_label stores it.
    """
    totals = (
        DownloadCount.objects.filter(tier=OuterRef("tier"), kind=kind, file_label=label)
        .order_by()
        .values("tier")
        .annotate(total=Sum("count"))
        .values("total")
    )
    return Coalesce(Subquery(totals, output_field=IntegerField()), Value(0))


def download_history(obj, kinds, label):
    """Per UTC day, for the detail page: "2026-11-24: 12 downloads, 3 manifests"."""
    rows = {}
    for count in DownloadCount.objects.filter(tier=obj.tier, kind__in=kinds, file_label=label).order_by("-day"):
        rows.setdefault(count.day, {})[count.kind] = count.count
    if not rows:
        return "No downloads yet."
    return format_html(
        "<table><tr><th>UTC day</th><th>Parquet</th><th>Manifest</th></tr>{}</table>",
        format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((day, kinds_.get(kinds[0], 0), kinds_.get(kinds[1], 0)) for day, kinds_ in rows.items()),
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are written by the build; editing them by hand would desync them from storage."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DownloadCountsAdmin(ReadOnlyAdmin):
    """Download counts next to each file: the file's kinds (data, manifest) and how its label reads."""

    count_kinds = ()  # (data kind, manifest kind)
    readonly_fields = ("download_history",)

    def label_expression(self):
        """The file's label as SQL text, as DownloadCount.file_label stores it."""
        raise NotImplementedError

    def label_of(self, obj):
        raise NotImplementedError

    def get_queryset(self, request):
        label = self.label_expression()
        data_kind, manifest_kind = self.count_kinds
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_downloads=downloads_of(data_kind, label), n_manifest_downloads=downloads_of(manifest_kind, label)
            )
        )

    @admin.display(description="downloads", ordering="n_downloads")
    def downloads(self, obj):
        return obj.n_downloads

    @admin.display(description="manifest views", ordering="n_manifest_downloads")
    def manifest_downloads(self, obj):
        return obj.n_manifest_downloads

    @admin.display(description="downloads by UTC day")
    def download_history(self, obj):
        return download_history(obj, self.count_kinds, self.label_of(obj))


@admin.register(DailyFile)
class DailyFileAdmin(DownloadCountsAdmin):
    list_display = (
        "date",
        "tier",
        "row_count",
        "size",
        "coverage",
        "is_partial",
        "skipped_lines",
        "downloads",
        "manifest_downloads",
        "published_at",
        "deleted_at",
    )
    list_filter = ("tier", "is_partial", ("deleted_at", admin.EmptyFieldListFilter), "date")
    date_hierarchy = "date"
    search_fields = ("sha256", "key")
    ordering = ("-date", "tier")
    count_kinds = (DownloadCount.Kind.DAILY, DownloadCount.Kind.DAILY_MANIFEST)

    def label_expression(self):
        return Cast(OuterRef("date"), CharField())

    def label_of(self, obj):
        return obj.date.isoformat()

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)

    @admin.display(description="hours")
    def coverage(self, obj):
        return f"{obj.hours_found}/24"


@admin.register(MonthBundle)
class MonthBundleAdmin(DownloadCountsAdmin):
    list_display = (
        "month_label",
        "tier",
        "coverage_start",
        "coverage_end",
        "row_count",
        "size",
        "downloads",
        "manifest_downloads",
        "built_at",
    )
    list_filter = ("tier", "month")
    ordering = ("-month", "tier")
    count_kinds = (DownloadCount.Kind.MTD, DownloadCount.Kind.MTD_MANIFEST)

    def label_expression(self):
        return Substr(Cast(OuterRef("month"), CharField()), 1, 7)

    def label_of(self, obj):
        return obj.month_label

    @admin.display(description="month", ordering="month")
    def month_label(self, obj):
        return obj.month_label

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)


@admin.register(BuildRun)
class BuildRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "command", "outcome", "duration", "summary")
    list_filter = ("outcome", "command", "started_at")
    date_hierarchy = "started_at"

    @admin.display(description="summary")
    def summary(self, obj):
        failed = [r for r in obj.results if r.get("outcome") == "failed"]
        if obj.error:
            return obj.error.splitlines()[0][:120]
        return f"{len(obj.results)} day results, {len(failed)} failed"


@admin.register(DownloadCount)
class DownloadCountAdmin(ReadOnlyAdmin):
    list_display = ("day", "tier", "kind", "file_label", "count")
    list_filter = ("tier", "kind", "day")
