"""The nightly pipeline: step order, skip-on-failure, catch-up, the build lock, the ping."""

import json
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.conf import settings

from deliveries import locks, pipeline, sample, storage
from deliveries.models import BuildRun, DailyFile, MonthBundle
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier
from tests.support.clock import frozen_clock_at
from tests.support.databases import lose_the_lock
from tests.support.factories import publish_days

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 12, 0, 30, tzinfo=UTC)  # the nightly run for 2026-11-11
YESTERDAY = date(2026, 11, 11)


frozen_clock = frozen_clock_at(NOW)


def write_days(*days, **kwargs):
    for day in days:
        sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=2, samples_per_entry=3, **kwargs)


def days_back(n, end=YESTERDAY):
    return [end - timedelta(days=k) for k in range(n - 1, -1, -1)]


def step_names_and_outcomes(run):
    return [(s["name"], s["outcome"]) for s in run.steps]


def test_nightly_runs_daily_then_mtd_then_retention_then_index_then_collect():
    write_days(*days_back(2))
    result = pipeline.run_nightly()
    assert result.ok
    run = BuildRun.objects.get(pk=result.run.pk)
    assert run.outcome == Outcome.SUCCESS
    assert step_names_and_outcomes(run) == [
        ("daily", "success"),
        ("mtd", "success"),
        ("retention", "success"),
        ("index", "success"),
        ("collect", "success"),
    ]
    assert all(step["seconds"] >= 0 for step in run.steps)
    assert DailyFile.objects.filter(date=YESTERDAY).count() == 3
    assert MonthBundle.objects.filter(month=date(2026, 11, 1)).count() == 3
    index = json.loads(storage.read_bytes("index/tier1.json"))
    assert [d["date"] for d in index["daily"]][:2] in (["2026-11-11", "2026-11-10"], ["2026-11-10", "2026-11-11"])
    assert run.finished_at is not None


def test_failed_build_skips_mtd_retention_and_index_but_still_collects():
    write_days(*days_back(9, YESTERDAY - timedelta(days=1)))  # yesterday is missing from the archive
    publish_days(days_back(9, YESTERDAY - timedelta(days=1)))  # published: more days than retention keeps
    published_before = set(DailyFile.objects.published().values_list("tier", "date"))
    index_before = storage.read_bytes("index/tier1.json")

    result = pipeline.run_nightly()
    assert not result.ok
    run = BuildRun.objects.get(pk=result.run.pk)
    assert run.outcome == Outcome.FAILED
    assert step_names_and_outcomes(run) == [
        ("daily", "failed"),
        ("mtd", "skipped"),
        ("retention", "skipped"),
        ("index", "skipped"),
        ("collect", "success"),
    ]
    assert "no archive folder for 2026-11-11" in run.error
    assert set(DailyFile.objects.published().values_list("tier", "date")) == published_before
    assert storage.read_bytes("index/tier1.json") == index_before


def test_next_night_catches_up_every_missed_day_the_archive_has():
    write_days(*days_back(5))
    publish_days(days_back(2, YESTERDAY - timedelta(days=3)))  # 11-07, 11-08 published
    result = pipeline.run_nightly()
    built = sorted(d.date for d in result.days if d.outcome == "published")
    assert built == [date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 11)]
    assert DailyFile.objects.count() == 15


def test_old_day_that_is_still_incomplete_does_not_fail_every_night(settings):
    write_days(YESTERDAY)
    write_days(YESTERDAY - timedelta(days=2), missing_hours=tuple(range(10)))
    result = pipeline.run_nightly()
    outcomes = {d.date: d.outcome for d in result.days}
    assert outcomes[YESTERDAY - timedelta(days=2)] == "skipped"
    assert outcomes[YESTERDAY] == "published"
    assert result.ok


def test_second_overlapping_run_sees_the_first_and_leaves():
    write_days(YESTERDAY)
    with locks.build_lock(holder="other-host:123"):
        result = pipeline.run_nightly()
    assert result.outcome == Outcome.LOCKED
    assert "other-host:123" in result.locked_by
    assert "another build is running" in result.summary()
    assert not DailyFile.objects.exists()
    locked = BuildRun.objects.get(pk=result.run.pk)
    assert locked.steps == [] and locked.results == [] and locked.holder == ""


def test_a_run_left_running_by_a_dead_lock_holder_is_marked_crashed_and_the_next_run_proceeds():
    write_days(YESTERDAY)
    dead = BuildRun.objects.create(command="build_daily", holder="gone-host:41:deadbeef", steps=[{"name": "daily"}])
    dry = BuildRun.objects.create(command="build_mtd")  # a dry run never holds the lock: not judged
    result = pipeline.run_nightly()
    assert result.outcome == Outcome.SUCCESS
    dead.refresh_from_db()
    assert dead.outcome == Outcome.CRASHED
    assert "the process ended without recording an outcome" in dead.error
    assert result.run.holder in dead.error  # which run noticed it
    assert dead.steps == [{"name": "daily"}]  # how far it got stays readable
    dry.refresh_from_db()
    assert dry.outcome == Outcome.RUNNING


def test_the_lock_is_released_when_the_run_has_recorded_its_outcome():
    write_days(YESTERDAY)
    result = pipeline.run_nightly()
    assert BuildRun.objects.get(pk=result.run.pk).holder == result.run.holder != ""
    with locks.build_lock() as lock:  # free again
        assert lock.is_held()


def test_a_run_that_loses_the_lock_stops_before_its_next_day():
    write_days(*days_back(2))
    real = pipeline._build_one_day
    seen = []

    def build_then_lose_the_lock(day, *args):
        seen.append(day)
        if len(seen) == 1:
            lose_the_lock()
        return real(day, *args)

    with mock.patch.object(pipeline, "_build_one_day", build_then_lose_the_lock):
        result = pipeline.run_nightly(days=days_back(2))
    assert seen == days_back(2)[:1]
    run = BuildRun.objects.get(pk=result.run.pk)
    assert run.outcome == Outcome.FAILED
    assert "the build lock was lost" in run.error
    assert [s["name"] for s in run.steps] == ["daily"]  # mtd, retention, index never ran


def test_backfill_builds_every_day_and_the_mtd_once():
    days = days_back(4)
    write_days(*days)
    result = pipeline.run_nightly(days=days)
    run = BuildRun.objects.get(pk=result.run.pk)
    assert [s["name"] for s in run.steps].count("mtd") == 1
    assert len(run.results) == 4
    bundle = MonthBundle.objects.get(tier=Tier.TIER2, month=date(2026, 11, 1))
    assert bundle.days_included == [d.isoformat() for d in days]


def test_dry_run_publishes_nothing_and_says_so():
    write_days(YESTERDAY)
    result = pipeline.run_nightly(dry_run=True)
    assert result.outcome == Outcome.DRY_RUN
    assert result.days[-1].outcome == "dry_run"
    assert not DailyFile.objects.exists()
    assert not MonthBundle.objects.exists()
    assert storage.list_keys() == []


def test_nothing_to_do_when_everything_is_already_published():
    write_days(YESTERDAY)
    pipeline.run_nightly()
    result = pipeline.run_nightly()
    assert result.outcome == Outcome.NOTHING_TO_DO
    assert result.ok


@pytest.fixture
def ping_server(settings, cron_monitor):
    url, paths = cron_monitor
    settings.HEALTHCHECK_PING_URL = f"{url}/ping/abc"
    return paths


def test_ping_url_is_requested_on_success_and_fail_on_failure(ping_server):
    write_days(YESTERDAY)
    pipeline.run_nightly()
    assert ping_server == ["/ping/abc"]
    pipeline.run_nightly(days=[YESTERDAY - timedelta(days=1)])  # not in the archive: fails
    assert ping_server == ["/ping/abc", "/ping/abc/fail"]


def test_unexpected_error_on_one_day_is_contained_and_the_other_days_still_run(monkeypatch):
    days = days_back(3)
    write_days(*days)
    real_write = pipeline.build.write_day_files

    def explode_on_the_middle_day(day_files, *args, **kwargs):
        if day_files.day == days[1]:
            raise RuntimeError("pyarrow went sideways")
        return real_write(day_files, *args, **kwargs)

    monkeypatch.setattr(pipeline.build, "write_day_files", explode_on_the_middle_day)
    result = pipeline.run_nightly(days=days)
    assert [d.outcome for d in result.days] == ["published", "failed", "published"]
    assert "unexpected error: RuntimeError: pyarrow went sideways" in result.run.error
    assert result.outcome == Outcome.FAILED
