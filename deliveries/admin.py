"""Delivery state for the operator: what is published, what was built, what failed."""

from django.contrib import admin
from django.template.defaultfilters import filesizeformat

from .models import BuildRun, DailyFile, DownloadCount, Lease, MonthBundle


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows are written by the build; editing them by hand would desync them from storage."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DailyFile)
class DailyFileAdmin(ReadOnlyAdmin):
    list_display = (
        "date",
        "tier",
        "row_count",
        "size",
        "coverage",
        "is_partial",
        "skipped_lines",
        "published_at",
        "deleted_at",
    )
    list_filter = ("tier", "is_partial", ("deleted_at", admin.EmptyFieldListFilter), "date")
    date_hierarchy = "date"
    search_fields = ("sha256", "key")
    ordering = ("-date", "tier")

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)

    @admin.display(description="hours")
    def coverage(self, obj):
        return f"{obj.hours_found}/24"


@admin.register(MonthBundle)
class MonthBundleAdmin(ReadOnlyAdmin):
    list_display = ("month_label", "tier", "coverage_start", "coverage_end", "row_count", "size", "built_at")
    list_filter = ("tier", "month")
    ordering = ("-month", "tier")

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


@admin.register(Lease)
class LeaseAdmin(admin.ModelAdmin):
    """Visible so an operator can see a stuck build lock; deleting one frees it."""

    list_display = ("name", "holder", "acquired_at", "expires_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
