"""Delivery state for the operator: what is published, what was built, what failed."""

from django.contrib import admin
from django.db.models import CharField, IntegerField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Cast, Coalesce, Substr
from django.template.defaultfilters import filesizeformat, pluralize
from django.utils.html import format_html, format_html_join

from instrumetriq_site.admin import ReadOnlyAdmin, lines_html

from .models import BuildRun, DailyFile, DownloadCount, MonthBundle
from .outcomes import Outcome


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


def human_duration(value):
    """A timedelta as people read it: "0.4 s", "12 s", "3 min 05 s", "1 h 02 min"."""
    if value is None:
        return "–"
    seconds = value.total_seconds()
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def step_lines(run):
    """ "daily: success in 4.2 s: 3 days" for each step of a run."""
    return [
        f"{step.get('name')}: {step.get('outcome')} in {step.get('seconds', 0):.1f} s"
        + (f": {step['detail']}" if step.get("detail") else "")
        for step in run.steps
    ]


def result_lines(run):
    """ "2026-11-23 tier1: published: published 84 rows" for each day (or month) result of a run."""
    lines = []
    for result in run.results:
        what = " ".join(str(result[key]) for key in ("date", "month", "tier") if result.get(key))
        lines.append(f"{what or 'result'}: {result.get('outcome')}: {result.get('message', '')}".rstrip(": "))
    return lines


def first_failure(run):
    """The first thing that went wrong in a run, in one line, or "" when nothing did."""
    if run.error:
        return run.error.strip().splitlines()[0]
    for step in run.steps:
        if step.get("outcome") == Outcome.FAILED:
            return f"{step.get('name')}: {step.get('detail', '')}"
    for line, result in zip(result_lines(run), run.results, strict=True):
        if result.get("outcome") == Outcome.FAILED:
            return line
    return ""


class ListedFilter(admin.SimpleListFilter):
    """Listed (what subscribers are offered) or delisted (kept as history), from the queryset's own
    ``published()``/``deleted()``: the one place that says what "listed" means."""

    title = "listed"
    parameter_name = "listed"

    def lookups(self, request, model_admin):
        return (("listed", "listed"), ("delisted", "delisted"))

    def queryset(self, request, queryset):
        if self.value() == "listed":
            return queryset.published()
        if self.value() == "delisted":
            return queryset.deleted()
        return queryset


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
    # What fits at 1280 px beside the filters; manifest views and skipped lines are on the detail page.
    list_display = ("date", "tier", "listed", "row_count", "size", "coverage", "downloads", "published_at")
    list_filter = ("tier", ListedFilter, "is_partial", "date")
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

    @admin.display(description="hours", ordering="hours_found")
    def coverage(self, obj):
        return f"{obj.hours_found}/24" + (" partial" if obj.is_partial else "")

    @admin.display(description="listed", ordering="deleted_at")
    def listed(self, obj):
        """Whether subscribers are offered the file now (not delisted), else since when not."""
        if obj.deleted_at is None:
            return "listed"
        return format_html('delisted <span class="quiet">{}</span>', f"{obj.deleted_at:%Y-%m-%d %H:%M} UTC")


@admin.register(MonthBundle)
class MonthBundleAdmin(DownloadCountsAdmin):
    list_display = ("month_label", "tier", "days", "row_count", "size", "downloads", "built_at")
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

    @admin.display(description="days")
    def days(self, obj):
        """ "2026-11-01 to 2026-11-23: 22 days, 1 missing" """
        text = f"{obj.coverage_start} to {obj.coverage_end}: {len(obj.days_included)} days"
        return text + (f", {len(obj.days_missing)} missing" if obj.days_missing else "")

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        return filesizeformat(obj.size_bytes)


@admin.register(BuildRun)
class BuildRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "command", "outcome", "took", "summary")
    list_filter = ("outcome", "command", "started_at")
    date_hierarchy = "started_at"
    fields = (
        "command",
        "arguments_line",
        "outcome",
        "started_at",
        "finished_at",
        "took",
        "holder",
        "error",
        "steps_lines",
        "results_lines",
    )
    readonly_fields = fields

    @admin.display(description="summary")
    def summary(self, obj):
        failure = first_failure(obj)
        if failure:
            return failure[:120]
        return f"{len(obj.results)} result{pluralize(len(obj.results))}, none failed"

    @admin.display(description="duration")
    def took(self, obj):
        return human_duration(obj.duration)

    @admin.display(description="arguments")
    def arguments_line(self, obj):
        def text(value):
            if isinstance(value, list):
                return ", ".join(str(item) for item in value) or "none"
            return str(value)

        return "; ".join(f"{key}: {text(value)}" for key, value in obj.arguments.items()) or "none"

    @admin.display(description="steps")
    def steps_lines(self, obj):
        return lines_html(step_lines(obj))

    @admin.display(description="results")
    def results_lines(self, obj):
        return lines_html(result_lines(obj))


@admin.register(DownloadCount)
class DownloadCountAdmin(ReadOnlyAdmin):
    list_display = ("day", "tier", "kind", "file_label", "count")
    list_filter = ("tier", "kind", "day")
