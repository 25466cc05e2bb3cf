"""manage.py build_mtd: thin over deliveries.mtd; one line per bundle, a summary, a BuildRun."""

import io
from datetime import UTC, date, datetime

import pytest
from django.core.management import CommandError, call_command

from deliveries import locks, storage
from deliveries.models import BuildRun, DailyFile, MonthBundle
from deliveries.outcomes import Outcome
from tests.support.clock import frozen_clock_at
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db

NOV = date(2026, 11, 1)


frozen_clock = frozen_clock_at(datetime(2026, 11, 6, 0, 40, tzinfo=UTC))


def run(*args):
    out = io.StringIO()
    call_command("build_mtd", *args, stdout=out)
    return out.getvalue().splitlines()


def test_builds_the_due_month_for_every_tier_and_prints_a_line_each_and_a_summary():
    for tier in ("tier1", "tier2", "tier3"):
        publish_day(tier, date(2026, 11, 4), rows=4)
        publish_day(tier, date(2026, 11, 5), rows=6)
    lines = run()
    for tier, line in zip(("tier1", "tier2", "tier3"), lines, strict=False):
        assert line.startswith(f"{tier} 2026-11: built: 2 days, 10 rows, ")
        assert line.endswith(" bytes, 3 missing")
    assert lines[3] == "3 bundles: 3 built"
    assert MonthBundle.objects.count() == 3
    run_record = BuildRun.objects.get(command="build_mtd")
    assert run_record.outcome == Outcome.SUCCESS
    assert [r["outcome"] for r in run_record.results] == ["built"] * 3


def test_a_second_run_reports_unchanged_and_nothing_to_do():
    publish_day("tier1", date(2026, 11, 5))
    run("--tier", "tier1")
    assert run("--tier", "tier1") == [
        "tier1 2026-11: unchanged: 1 days, the bundle already holds them",
        "1 bundle: 1 unchanged",
    ]
    assert BuildRun.objects.order_by("-pk").first().outcome == Outcome.NOTHING_TO_DO


def test_month_option_builds_a_past_month_to_its_last_day():
    publish_day("tier2", date(2026, 10, 31))
    lines = run("--tier", "tier2", "--month", "2026-10")
    assert lines[0].startswith("tier2 2026-10: built: 1 days")
    assert MonthBundle.objects.get().coverage_end == date(2026, 10, 31)


def test_dry_run_writes_nothing():
    publish_day("tier1", date(2026, 11, 5))
    lines = run("--tier", "tier1", "--dry-run")
    assert lines[0].startswith("tier1 2026-11: dry_run: would build 1 days")
    assert lines[-1] == "1 bundle: 1 would build"
    assert not MonthBundle.objects.exists()
    assert storage.list_keys("tier1/mtd/") == []
    assert BuildRun.objects.get().outcome == Outcome.DRY_RUN


def test_nothing_due_says_so():
    assert run() == ["nothing to build: no month has a published day before today"]


def test_a_failed_bundle_exits_non_zero_after_reporting_every_tier():
    publish_day("tier1", date(2026, 11, 5))
    publish_day("tier2", date(2026, 11, 5))
    storage.delete(DailyFile.objects.get(tier="tier1").key)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 built, 1 failed"):
        call_command("build_mtd", "--tier", "tier1", "--tier", "tier2", stdout=out)
    assert "tier1 2026-11: failed: storage read of tier1/daily/2026-11-05/" in out.getvalue()
    assert "/data.parquet failed" in out.getvalue()
    assert "tier2 2026-11: built" in out.getvalue()
    assert BuildRun.objects.get().outcome == Outcome.FAILED


def test_a_held_lock_refuses_to_build_and_exits_75():
    publish_day("tier1", date(2026, 11, 5))
    with locks.build_lock(holder="other-host:1"), pytest.raises(CommandError, match="held by other-host:1") as refused:
        run()
    assert refused.value.returncode == locks.EXIT_LOCKED
    assert not MonthBundle.objects.exists()
    assert BuildRun.objects.get().outcome == Outcome.LOCKED


def test_a_bad_month_is_a_usage_error():
    with pytest.raises(CommandError, match="YYYY-MM"):
        run("--month", "2026-1")
