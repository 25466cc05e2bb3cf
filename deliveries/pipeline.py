"""The nightly order of steps: daily files, then month-to-date, then retention, then the index,
then collection.

A step runs only if what it depends on succeeded: retention never runs after a failed build (it
could delist the last good days while the new one is missing), and the index is rewritten only
from what is really published. Each step that changes what is listed rewrites the index of the
tiers it changed at once; the index step rewrites every tier's, so a run cut short is healed by
the next. Collection runs whatever happened before it: it deletes only what was delisted
``SIGNED_URL_EXPIRY`` ago (or orphans as old), so it is safe after a failure, and space is not
left to pile up over a run of bad nights. One BuildRun records every step; the build lock (``locks``) keeps a
second, overlapping run (the next cron tick, another host) from doing anything at all, and dies
with its holder, so a run after a crash proceeds at once.
"""

import logging
import urllib.request
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from instrumetriq_site import utc

from . import build, collect, index, locks, mtd, parallel, retention, storage
from .models import BuildRun, DailyFile
from .outcomes import Outcome
from .parquet import archive
from .runs import start_locked_run

log = logging.getLogger("deliveries.pipeline")


@dataclass
class PipelineResult:
    run: BuildRun
    days: list = field(default_factory=list)  # build.DayResult
    months: list = field(default_factory=list)  # mtd.MonthResult
    retention: object = None
    index_keys: list = field(default_factory=list)
    collection: object = None
    locked_by: str = ""

    @property
    def outcome(self):
        return self.run.outcome

    @property
    def ok(self):
        return self.run.outcome != Outcome.FAILED

    def summary(self):
        if self.locked_by:
            return f"not run: {self.locked_by}; nothing done, run it again once that one has finished"
        counts = Counter(day.outcome for day in self.days)
        parts = [f"{n} {outcome.replace('_', ' ')}" for outcome, n in sorted(counts.items())] or ["no days to build"]
        failed_steps = [s["name"] for s in self.run.steps if s["outcome"] == Outcome.FAILED]
        tail = f"; failed steps: {', '.join(failed_steps)}" if failed_steps else ""
        return f"{self.run.outcome}: days {', '.join(parts)}{tail}"


def catch_up_days(now=None):
    """The days a plain nightly run builds: yesterday plus every earlier day it missed.

    The window reaches back to the start of yesterday's month (so the month-to-date bundle is
    complete) or the retention window, whichever is longer. A day counts as missed when the
    archive has it and not every tier has a row for it (published, or delisted by retention).
    Yesterday is always tried; an older day whose hour files changed later is rebuilt with
    ``build_daily --date`` (its new input is noticed, no ``--force`` needed).
    """
    last = utc.yesterday(now)
    window_start = min(last.replace(day=1), last - timedelta(days=settings.DAILY_RETENTION_DAYS - 1))
    try:
        archived = [d for d in archive.available_days(settings.ARCHIVE_ROOT) if window_start <= d < last]
    except archive.ArchiveError:
        archived = []
    rows = DailyFile.objects.filter(date__gte=window_start, date__lt=last).values("date").annotate(n=Count("id"))
    published = {row["date"]: row["n"] for row in rows}
    missed = [d for d in archived if published.get(d, 0) < len(build.Tier)]
    return [*missed, last]


def run_nightly(
    *, days=None, tiers=None, force=False, dry_run=False, now=None, progress=None, command="build_daily", jobs=1
):
    """Run the whole nightly job (or a backfill of ``days``). Returns a PipelineResult.

    ``jobs``: days written at once by worker processes (``parallel``); 1 writes them here, one by one."""
    now = now or timezone.now()
    explicit = days is not None
    days = sorted(set(days)) if explicit else catch_up_days(now)
    arguments = {
        "days": [d.isoformat() for d in days],
        "tiers": list(tiers or []),
        "force": force,
        "dry_run": dry_run,
        "explicit": explicit,
    }
    say = progress or (lambda message: None)
    try:
        recorder = start_locked_run(command, arguments)  # finish() records the outcome, then releases
    except locks.BuildLocked as held:
        return PipelineResult(held.run, locked_by=str(held))
    result = PipelineResult(recorder.run)
    try:
        _run_steps(recorder, result, days, tiers, force, dry_run, explicit, now, say, recorder.lock, jobs)
    except Exception as exc:
        log.exception("nightly pipeline crashed")
        recorder.finish(Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        _ping(failed=True, dry_run=dry_run)
        return result
    except BaseException as exc:  # interrupted (Ctrl-C): say so rather than leave it to look crashed
        recorder.finish(Outcome.FAILED, error=f"interrupted: {type(exc).__name__}")
        raise
    failed = any(step["outcome"] == Outcome.FAILED for step in recorder.run.steps)
    if dry_run:
        outcome = Outcome.DRY_RUN
    elif failed:
        outcome = Outcome.FAILED
    elif all(day.outcome == Outcome.SKIPPED for day in result.days):
        outcome = Outcome.NOTHING_TO_DO
    else:
        outcome = Outcome.SUCCESS
    errors = [f"{d.date}: {d.message}" for d in result.days if d.outcome == Outcome.FAILED]
    errors += [
        f"{s['name']}: {s['detail']}"
        for s in recorder.run.steps
        if s["outcome"] == Outcome.FAILED and s["name"] != "daily"
    ]
    recorder.finish(outcome, error="\n".join(errors))
    _ping(failed=failed, dry_run=dry_run)
    return result


def _run_steps(recorder, result, days, tiers, force, dry_run, explicit, now, say, lock, jobs=1):
    _publish_steps(recorder, result, days, tiers, force, dry_run, explicit, now, say, lock, jobs)
    with recorder.step("collect") as step:
        try:
            result.collection = collect.collect_garbage(dry_run=dry_run, now=now)
            step["detail"] = result.collection.summary()
        except storage.StorageError as exc:  # nothing listed is touched; the next run finishes the job
            step["outcome"], step["detail"] = Outcome.FAILED, f"{exc}; the next run finishes it"
    say(f"collect: {step['detail']}")


def _publish_steps(recorder, result, days, tiers, force, dry_run, explicit, now, say, lock, jobs=1):
    last = utc.yesterday(now)
    with recorder.step("daily") as step, closing(_day_results(days, tiers, force, dry_run, now, jobs, say)) as done:
        for position, day_result in done:  # closing: workers stop even if this loop stops early
            day = day_result.date
            if (
                day_result.outcome == Outcome.FAILED
                and not explicit
                and day < last
                and day_result.cause == build.Cause.INPUT
            ):
                # An old day the archive cannot complete is reported, not retried as a failure nightly.
                day_result.outcome = Outcome.SKIPPED
                day_result.message = f"still not buildable: {day_result.message}"
            result.days.append(day_result)
            recorder.add_result(**day_result.as_dict())
            say(f"[{position}/{len(days)}] {day}: {day_result.outcome}: {day_result.message}")
            lock.ensure_held()
        result.days.sort(key=lambda d: d.date)
        failures = [d for d in result.days if d.outcome == Outcome.FAILED]
        step["detail"] = "; ".join(f"{d.date}: {d.message}" for d in failures) or f"{len(result.days)} days"
        if failures:
            step["outcome"] = Outcome.FAILED
    if any(s["outcome"] == Outcome.FAILED for s in recorder.run.steps):
        for name in ("mtd", "retention", "index"):
            recorder.skip_step(name, "the daily build failed")
        return

    today = utc.today(now)
    months = sorted({d.replace(day=1) for d in days} | set(mtd.months_to_build(today)))
    with recorder.step("mtd") as step:
        result.months = mtd.build_months(tiers=tiers, months=months, today=today, dry_run=dry_run)
        failed = [m for m in result.months if m.outcome == Outcome.FAILED]
        step["detail"] = "; ".join(f"{m.tier} {m.month:%Y-%m}: {m.outcome}" for m in result.months)
        if failed:
            step["outcome"] = Outcome.FAILED
    for month in result.months:
        say(f"mtd {month.tier} {month.month:%Y-%m}: {month.outcome}: {month.message}")
    if failed:
        recorder.skip_step("retention", "the month-to-date build failed")
    else:
        with recorder.step("retention") as step:
            report = result.retention = retention.apply_retention(dry_run=dry_run)
            verb = "would delist" if dry_run else "delisted"
            step["detail"] = f"{verb} {report.delisted_count} daily files, {report.protected_count} kept for the MTD"
        say(f"retention: {step['detail']}")
    if dry_run:
        recorder.skip_step("index", "dry run")
        return
    with recorder.step("index") as step:
        result.index_keys = index.publish_index()
        step["detail"] = ", ".join(result.index_keys)


def _build_one_day(day, tiers, force, dry_run, now):
    """build_day, with an unexpected error contained to its day so the other days still run."""
    try:
        return build.build_day(day, tiers=tiers, force=force, dry_run=dry_run, now=now)
    except Exception as exc:
        return build.unexpected_failure(day, exc)


def _day_results(days, tiers, force, dry_run, now, jobs, say):
    """Yield ``(position, DayResult)`` of each day as it is done: one after the other in this
    process, or with ``jobs`` > 1 written by worker processes (``parallel``), as they finish."""
    position = {day: n for n, day in enumerate(days, 1)}
    if jobs <= 1 or len(days) < 2 or dry_run:
        for day in days:
            say(f"[{position[day]}/{len(days)}] {day}: building")
            yield position[day], _build_one_day(day, tiers, force, dry_run, now)
        return

    def starting(day):
        say(f"[{position[day]}/{len(days)}] {day}: building")

    say(f"building {len(days)} days, {min(jobs, len(days))} at a time")
    results = parallel.build_days(days, jobs=jobs, tiers=tiers, force=force, now=now, on_start=starting)
    for day_result in results:
        yield position[day_result.date], day_result


def _ping(*, failed, dry_run):
    url = settings.HEALTHCHECK_PING_URL
    if not url or dry_run:
        return
    target = url.rstrip("/") + ("/fail" if failed else "")
    try:
        with urllib.request.urlopen(target, timeout=10) as response:  # noqa: S310 (operator-set https URL)
            response.read()
    except Exception as exc:
        log.warning("healthcheck ping failed: %s", type(exc).__name__)
