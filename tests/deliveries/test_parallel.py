"""Backfills on both cores: days written by worker processes, published by the run holding the lock."""

import io
import json
import multiprocessing
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from deliveries import build, locks, parallel, pipeline, sample, storage
from deliveries.models import BuildRun, DailyFile
from deliveries.outcomes import Outcome
from deliveries.parquet import profile
from tests.support.clock import frozen_clock_at

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
DAYS = [date(2026, 11, 18) + timedelta(days=n) for n in range(4)]


frozen_clock = frozen_clock_at(NOW)


def write(*days):
    for day in days:
        sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=2, samples_per_entry=3)


def build_daily(*args):
    out = io.StringIO()
    call_command("build_daily", *args, stdout=out)
    return out.getvalue()


def published():
    return {(row.tier, row.date): row.sha256 for row in DailyFile.objects.all()}


def scratch_leftovers():
    return [p.name for p in Path(storage.scratch_dir()).iterdir() if p.name.startswith("instrumetriq-build-")]


def test_two_jobs_publish_every_day_with_progress_and_the_same_bytes_as_one_job():
    write(*DAYS)
    output = build_daily("--from", "2026-11-18", "--to", "2026-11-21", "--jobs", "2")
    assert "building 4 days, 2 at a time" in output
    for n, day in enumerate(DAYS, 1):
        assert f"[{n}/4] {day}: building" in output
        assert f"[{n}/4] {day}: published" in output
    run = BuildRun.objects.get()
    assert output.strip().splitlines()[-1].endswith(f"UTC build_daily success: days 4 published (run #{run.pk})")
    assert sorted(r["date"] for r in run.results) == [d.isoformat() for d in DAYS]
    assert [s["name"] for s in run.steps] == ["daily", "mtd", "retention", "index", "collect"]
    in_parallel = published()
    assert len(in_parallel) == 12
    build_daily("--from", "2026-11-18", "--to", "2026-11-21", "--jobs", "1", "--force")
    assert published() == in_parallel  # byte for byte the same files
    assert scratch_leftovers() == []
    assert multiprocessing.active_children() == []


def test_days_not_to_write_are_answered_without_a_worker():
    write(DAYS[0], DAYS[2])
    build_daily("--date", "2026-11-18")
    with pytest.raises(CommandError):
        build_daily("--from", "2026-11-18", "--to", "2026-11-20", "--jobs", "2")
    results = {r["date"]: r for r in BuildRun.objects.latest("pk").results}
    assert results["2026-11-18"]["outcome"] == "skipped"
    assert results["2026-11-19"]["outcome"] == "failed" and "no archive folder" in results["2026-11-19"]["message"]
    assert results["2026-11-20"]["outcome"] == "published"


@dataclass
class DyingPlan(build.DayPlan):
    """A day whose worker process dies while writing it (as the kernel's OOM killer would kill it)."""

    def write(self, out_dir, progress=None):
        os._exit(9)


@dataclass
class ProbePlan(build.DayPlan):
    """Writes down, from inside the worker, what the worker shares with the parent."""

    probe: str = ""

    def write(self, out_dir, progress=None):
        import pyarrow
        from django.db import connections

        with open(self.probe, "w") as fh:
            json.dump(
                {
                    "start_method": multiprocessing.get_start_method(),
                    "parent": os.getppid(),
                    "pid": os.getpid(),
                    "database_connection_open": connections["default"].connection is not None,
                    "out_dir": str(out_dir),
                    "arrow_threads": pyarrow.cpu_count(),
                },
                fh,
            )
        return super().write(out_dir, progress)


def replace_plan(monkeypatch, day, plan_class, **extra):
    real = build.plan_day

    def plan_day(planned, **kwargs):
        plan = real(planned, **kwargs)
        if planned == day and isinstance(plan, build.DayPlan):
            return plan_class(**vars(plan), **extra)
        return plan

    monkeypatch.setattr(build, "plan_day", plan_day)


def test_a_worker_that_dies_fails_the_days_it_held_and_a_new_pool_builds_the_rest(monkeypatch):
    write(*DAYS)
    replace_plan(monkeypatch, DAYS[1], DyingPlan)
    result = pipeline.run_nightly(days=DAYS, jobs=2)
    outcomes = {d.date: d for d in result.days}
    assert outcomes[DAYS[1]].outcome == "failed"
    assert "the process writing it stopped (killed, or out of memory)" in outcomes[DAYS[1]].message
    assert outcomes[DAYS[2]].outcome == outcomes[DAYS[3]].outcome == "published"  # after the crash
    assert outcomes[DAYS[0]].outcome in ("published", "failed")  # it was in the pool that broke
    dates = {row_date for _, row_date in published()}
    assert DAYS[1] not in dates and {DAYS[2], DAYS[3]} <= dates
    assert result.run.outcome == Outcome.FAILED
    assert result.run.steps[0]["name"] == "daily" and result.run.steps[0]["outcome"] == "failed"
    assert scratch_leftovers() == []
    assert multiprocessing.active_children() == []


def test_workers_are_spawned_and_share_no_database_connection_with_the_run(monkeypatch, tmp_path):
    write(*DAYS[:2])
    probe = tmp_path / "probe.json"
    replace_plan(monkeypatch, DAYS[1], ProbePlan, probe=str(probe))
    result = pipeline.run_nightly(days=DAYS[:2], jobs=2)
    assert [d.outcome for d in result.days] == ["published", "published"]
    seen = json.loads(probe.read_text())
    assert seen["start_method"] == "spawn" and seen["pid"] != os.getpid()
    assert seen["database_connection_open"] is False
    assert Path(seen["out_dir"]).parent == Path(storage.scratch_dir())  # the run's scratch, made by the run
    assert seen["arrow_threads"] == 1  # the workers are the parallelism


def test_the_workers_profile_their_days_so_the_run_reads_no_file_back(monkeypatch):
    write(*DAYS[:2])

    def read_back_in_the_run(path, **kwargs):
        raise AssertionError(f"the run read {path} back for its profile")

    monkeypatch.setattr(profile, "manifest_parts", read_back_in_the_run)  # in this process, not the workers
    result = pipeline.run_nightly(days=DAYS[:2], jobs=2)
    assert [d.outcome for d in result.days] == ["published", "published"], [d.message for d in result.days]
    for row in DailyFile.objects.all():
        manifest = json.loads(storage.read_bytes(row.manifest_key))
        assert manifest["profile"] and manifest["preview"]["rows"], row.tier


def test_a_run_that_loses_the_lock_stops_its_workers_and_publishes_nothing_more(monkeypatch):
    write(*DAYS)
    calls = []

    def ensure_held(self):
        calls.append(1)
        raise locks.LockLost("the build lock was lost (test)")

    monkeypatch.setattr(locks.HeldLock, "ensure_held", ensure_held)
    result = pipeline.run_nightly(days=DAYS, jobs=2)
    run = BuildRun.objects.get(pk=result.run.pk)
    assert run.outcome == Outcome.FAILED and "the build lock was lost" in run.error
    assert len(calls) == 1
    assert len({row_date for _, row_date in published()}) == 1  # the day that finished first, no other
    assert [s["name"] for s in run.steps] == ["daily"]
    assert scratch_leftovers() == []
    assert multiprocessing.active_children() == []


def test_default_jobs_are_the_cpus_capped_by_the_memory_budget(monkeypatch):
    monkeypatch.setattr(parallel, "cpu_count", lambda: 8)
    capped = (parallel.MEMORY_BUDGET_MB - parallel.PARENT_MB) // parallel.WORKER_PEAK_MB
    assert parallel.default_jobs() == min(8, capped) >= 2
    assert parallel.PARENT_MB + parallel.default_jobs() * parallel.WORKER_PEAK_MB <= parallel.MEMORY_BUDGET_MB
    monkeypatch.setattr(parallel, "cpu_count", lambda: 1)
    assert parallel.default_jobs() == 1


def test_jobs_below_one_are_refused():
    with pytest.raises(CommandError, match="--jobs must be at least 1"):
        build_daily("--from", "2026-11-18", "--to", "2026-11-19", "--jobs", "0")


def test_two_jobs_on_s3_upload_every_day_from_the_run_and_leave_no_scratch(s3_storage):
    write(*DAYS[:3])
    result = pipeline.run_nightly(days=DAYS[:3], jobs=2)
    assert [d.outcome for d in result.days] == ["published"] * 3, [d.message for d in result.days]
    keys = {obj["Key"] for obj in s3_storage.list_objects_v2(Bucket=s3_storage.bucket)["Contents"]}
    for row in DailyFile.objects.all():
        assert row.key in keys and row.manifest_key in keys
        body = s3_storage.get_object(Bucket=s3_storage.bucket, Key=row.key)["Body"].read()
        assert len(body) == row.size_bytes
    assert DailyFile.objects.count() == 9
    assert scratch_leftovers() == []
