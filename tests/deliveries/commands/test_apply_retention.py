"""manage.py apply_retention: thin over deliveries.retention; says what it delisted or would delist."""

import io
import json
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from deliveries import locks, mtd, storage
from deliveries.models import BuildRun, DailyFile
from deliveries.outcomes import Outcome
from tests.support.clock import frozen_clock_at
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


frozen_clock = frozen_clock_at(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))


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


def test_delists_past_the_default_window_and_reports_per_tier_and_in_total(ten_days):
    lines = run()
    assert lines == [
        "tier1: kept 7, delisted 3 (2026-11-15, 2026-11-16, 2026-11-17)",
        "tier2: kept 0, delisted 0",
        "tier3: kept 0, delisted 0",
        "retention keep 7: delisted 3 days, protected 0",
    ]
    assert DailyFile.objects.published().count() == 7
    assert all(storage.exists(daily.key) for daily in DailyFile.objects.deleted()), "collect_garbage deletes later"
    assert BuildRun.objects.get(command="apply_retention").outcome == Outcome.SUCCESS


def test_dry_run_says_what_it_would_delist_and_changes_nothing(ten_days):
    lines = run("--keep-days", "8", "--tier", "tier1", "--dry-run")
    assert lines == [
        "tier1: kept 8, would delist 2 (2026-11-15, 2026-11-16)",
        "retention keep 8: would delist 2 days, protected 0 (dry run: nothing changed)",
    ]
    assert DailyFile.objects.published().count() == 10
    assert BuildRun.objects.get().outcome == Outcome.DRY_RUN


def test_orphans_are_no_longer_retentions_business():
    with pytest.raises(CommandError, match="unrecognized arguments: --delete-orphans"):
        run("--delete-orphans")


def test_a_day_the_bundle_lacks_is_reported_protected(ten_days):
    publish_day("tier1", date(2026, 11, 26))
    publish_day("tier1", date(2026, 11, 14))
    lines = run("--keep-days", "2", "--tier", "tier1")
    assert "protected 1 the month's bundle lacks (2026-11-14; run build_mtd)" in lines[0]


def test_keep_days_below_one_is_refused():
    with pytest.raises(CommandError, match="at least 1"):
        run("--keep-days", "0")


def test_a_held_lock_refuses_to_delist_and_exits_75(ten_days):
    with locks.build_lock(holder="other-host:1"), pytest.raises(CommandError, match="not applied") as refused:
        run()
    assert refused.value.returncode == locks.EXIT_LOCKED
    assert DailyFile.objects.published().count() == 10
    assert BuildRun.objects.get().outcome == Outcome.LOCKED


def test_a_storage_failure_is_a_command_error_and_a_rerun_rewrites_the_index(ten_days):
    outage = mock.patch.object(storage, "put_bytes", side_effect=storage.StorageError("outage"))
    with outage, pytest.raises(CommandError, match=r"a rerun completes it\): outage"):
        run()
    assert BuildRun.objects.get().outcome == Outcome.FAILED
    assert len(json.loads(storage.read_bytes("index/tier1.json"))["daily"]) == 10, "the delisting went first"
    assert run()[-1] == "retention keep 7: delisted 0 days, protected 0"
    assert len(json.loads(storage.read_bytes("index/tier1.json"))["daily"]) == 7
