"""Health checks shared by ``manage.py healthcheck`` and ``/healthz``.

Every message is one line and safe to show publicly: tiers, dates, storage keys and counts, never
an exception text (it could carry an endpoint with credentials, a bucket policy, a token).
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from instrumetriq_site.utc import expected_newest_day

from . import mtd, storage
from .models import BuildRun, DailyFile, MonthBundle
from .outcomes import Outcome
from .tiers import Tier

FAIL, WARN = "fail", "warn"


@dataclass(frozen=True)
class Problem:
    """One finding. A ``fail`` means delivery to subscribers is not OK now; a ``warn`` is worth a
    look (a manual backfill that failed) but subscribers are unaffected."""

    code: str
    tier: str | None
    message: str
    severity: str = FAIL

    @property
    def is_failure(self):
        return self.severity == FAIL

    def as_dict(self):
        return {"code": self.code, "message": self.message}


def failures(problems):
    return [problem for problem in problems if problem.is_failure]


def warnings(problems):
    return [problem for problem in problems if not problem.is_failure]


def _freshness(tier, expected):
    newest = DailyFile.objects.for_tier(tier).published().newest_first().first()
    if newest is None:
        return [Problem("no_published_day", tier, f"{tier}: no published day")]
    if newest.date < expected:
        return [
            Problem(
                "stale",
                tier,
                f"{tier}: newest published day is {newest.date}, expected {expected} "
                f"(deadline {settings.BUILD_DEADLINE_UTC} UTC)",
            )
        ]
    return []


def _mtd_complete(tier, expected):
    """The bundle of the month of the expected newest day holds every published day up to it."""
    lacking = mtd.days_lacking(tier, mtd.month_start(expected), through=expected)
    if not lacking:
        return []
    days = ", ".join(daily.date.isoformat() for daily in lacking)
    return [Problem("mtd_lacks_day", tier, f"{tier}: {expected:%Y-%m} bundle lacks published day(s) {days}")]


GOOD_OUTCOMES = (Outcome.SUCCESS, Outcome.NOTHING_TO_DO)


def _days_of(run):
    days = run.arguments.get("days") or []
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "no days"


def _last_build():
    """The nightly run's failure fails health; a manual run's (``--date``, ``--from``) only warns.

    Health answers "is delivery to subscribers OK now?". A failed one-off rebuild of a past day
    published nothing (a day's rows change only once its files are in storage), so subscribers see
    what they saw before; if it did leave something listed broken, the freshness, month bundle and
    object checks fail on their own. The nightly run (a plain ``build_daily``) is the one that
    keeps delivery going: its failure stays a failure until the next good nightly run. Dry runs
    and runs that found the build lock taken say nothing either way; any outcome other than success
    or nothing-to-do counts as failed.
    """
    runs = BuildRun.objects.filter(command="build_daily").conclusive().order_by("-started_at")
    problems = []
    manual_runs = runs.filter(arguments__explicit=True)
    nightly = runs.exclude(pk__in=manual_runs.values("pk")).first()  # (a plain exclude drops rows without the key)
    if nightly is not None and nightly.outcome not in GOOD_OUTCOMES:
        problems.append(
            Problem(
                "build_failed",
                None,
                f"last build_daily run (started {nightly.started_at:%Y-%m-%d %H:%M} UTC) {nightly.outcome}",
            )
        )
    manual = manual_runs.first()
    if (
        manual is not None
        and manual.outcome not in GOOD_OUTCOMES
        and not runs.filter(started_at__gt=manual.started_at, outcome__in=GOOD_OUTCOMES).exists()
    ):
        problems.append(
            Problem(
                "backfill_failed",
                None,
                f"manual build_daily run #{manual.pk} ({_days_of(manual)}, started "
                f"{manual.started_at:%Y-%m-%d %H:%M} UTC) failed; what subscribers see is unchanged",
                WARN,
            )
        )
    return problems


def _object_problems(tier, label, key, manifest_key, size_bytes):
    problems = []
    actual = storage.size(key)
    if actual is None:
        problems.append(Problem("object_missing", tier, f"{label}: data object {key} is missing"))
    elif actual != size_bytes:
        problems.append(
            Problem("object_size", tier, f"{label}: data object {key} is {actual} bytes, expected {size_bytes}")
        )
    if not storage.exists(manifest_key):
        problems.append(Problem("object_missing", tier, f"{label}: manifest {manifest_key} is missing"))
    return problems


def _objects(tiers):
    """Every live daily file and each tier's newest bundle: present, at the recorded size."""
    problems = []
    for daily in DailyFile.objects.published().filter(tier__in=tiers).order_by("tier", "date"):
        label = f"{daily.tier} {daily.date}"
        problems += _object_problems(daily.tier, label, daily.key, daily.manifest_key, daily.size_bytes)
    for tier in tiers:
        bundle = MonthBundle.objects.for_tier(tier).newest_first().first()
        if bundle is not None:
            label = f"{tier} {bundle.month_label} bundle"
            problems += _object_problems(tier, label, bundle.key, bundle.manifest_key, bundle.size_bytes)
    return problems


def run_checks(*, now=None, check_objects=True, tiers=None):
    """Every problem found (failures and warnings), in a stable order; no failure means healthy."""
    now = now or timezone.now()
    tiers = [tier.value for tier in Tier.selected(tiers)]
    problems = []
    try:
        storage.ping()
        reachable = True
    except storage.StorageError:
        reachable = False
        problems.append(Problem("storage_unreachable", None, f"storage ({settings.STORAGE_BACKEND}) is unreachable"))
    try:
        expected = expected_newest_day(now)
        for tier in tiers:
            problems += _freshness(tier, expected)
        problems += _last_build()
        for tier in tiers:
            problems += _mtd_complete(tier, expected)
        if check_objects and reachable:
            try:
                problems += _objects(tiers)
            except storage.StorageError:
                problems.append(Problem("storage_error", None, "storage failed while checking objects"))
    except DatabaseError:
        problems.append(Problem("database_unreachable", None, "database is unreachable"))
    return problems
