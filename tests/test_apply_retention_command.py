"""manage.py apply_retention: thin over deliveries.retention; says what it did or would do."""

import io
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.core.management import CommandError, call_command

from deliveries import locks, mtd, storage
from deliveries.models import BuildRun, DailyFile

from .factories import publish_day

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(datetime(2026, 11, 25, 1, 0, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def ten_days():
    days = [date(2026, 11, 15) + timedelta(days=i) for i in range(10)]
    for day in days:
        publish_day("tier1", day)
    mtd.build_month("tier1", date(2026, 11, 1), today=date(2026, 11, 25))
    return days


def run(*args):
    out = io.StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue().splitlines()


def test_deletes_past_the_default_window_and_reports_per_tier_and_in_total(ten_days):
    lines = run()
    assert lines == [
        "tier1: kept 7, deleted 3 (2026-11-15, 2026-11-16, 2026-11-17)",
        "tier2: kept 0, deleted 0",
        "tier3: kept 0, deleted 0",
        "retention keep 7: deleted 3 days, protected 0, orphans 0 found, 0 removed",
    ]
    assert DailyFile.objects.published().count() == 7
    assert BuildRun.objects.get(command="apply_retention").outcome == BuildRun.Outcome.SUCCESS


def test_dry_run_says_what_it_would_delete_and_deletes_nothing(ten_days):
    lines = run("--keep-days", "8", "--tier", "tier1", "--dry-run", "--delete-orphans")
    assert lines == [
        "tier1: kept 8, would delete 2 (2026-11-15, 2026-11-16)",
        "retention keep 8: would delete 2 days, protected 0, orphans 0 found, 0 removed (dry run: nothing changed)",
    ]
    assert DailyFile.objects.published().count() == 10
    assert BuildRun.objects.get().outcome == BuildRun.Outcome.DRY_RUN


def test_protected_days_and_orphans_are_listed(ten_days):
    publish_day("tier1", date(2026, 11, 25))  # not in the bundle yet
    storage.put_bytes("tier1/mtd/2026-08/data.parquet", b"x", storage.PARQUET_CONTENT_TYPE)
    lines = run("--keep-days", "1", "--tier", "tier1")
    assert lines[0].startswith("tier1: kept 1, deleted 10 (2026-11-15, ")
    assert lines[1] == "orphan tier1/mtd/2026-08/data.parquet: kept (use --delete-orphans)"
    assert run("--keep-days", "1", "--tier", "tier1", "--delete-orphans")[1:] == [
        "orphan tier1/mtd/2026-08/data.parquet: removed",
        "retention keep 1: deleted 0 days, protected 0, orphans 1 found, 1 removed",
    ]


def test_a_day_the_bundle_lacks_is_reported_protected(ten_days):
    publish_day("tier1", date(2026, 11, 26))
    publish_day("tier1", date(2026, 11, 14))
    lines = run("--keep-days", "2", "--tier", "tier1")
    assert "protected 1 the month's bundle lacks (2026-11-14; run build_mtd)" in lines[0]


def test_keep_days_below_one_is_refused():
    with pytest.raises(CommandError, match="at least 1"):
        run("--keep-days", "0")


def test_a_held_lock_refuses_to_delete_and_exits_75(ten_days):
    with locks.build_lock(holder="other-host:1"), pytest.raises(CommandError, match="not applied") as refused:
        run()
    assert refused.value.returncode == locks.EXIT_LOCKED
    assert DailyFile.objects.published().count() == 10
    assert BuildRun.objects.get().outcome == BuildRun.Outcome.LOCKED


def test_a_storage_failure_is_a_command_error_that_a_rerun_completes(ten_days):
    outage = mock.patch.object(storage, "delete", side_effect=storage.StorageError("outage"))
    with outage, pytest.raises(CommandError, match=r"a rerun completes it\): outage"):
        run()
    assert BuildRun.objects.get().outcome == BuildRun.Outcome.FAILED
    assert run()[-1].startswith("retention keep 7: deleted 3 days")
