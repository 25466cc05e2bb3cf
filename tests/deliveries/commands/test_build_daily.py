"""build_daily as cron and the operator run it: arguments, output, exit status, BuildRun."""

import io
import json
from datetime import UTC, date, datetime

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from deliveries import locks, sample, storage
from deliveries.models import BuildRun, DailyFile
from tests.support.clock import frozen_clock_at

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)


frozen_clock = frozen_clock_at(NOW)


def build_daily(*args):
    out = io.StringIO()
    call_command("build_daily", *args, stdout=out)
    return out.getvalue()


def write(day, **kwargs):
    sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=2, samples_per_entry=3, **kwargs)


STAMP = "2026-11-24 00:30:00 UTC "  # every line of the cron log says when it was written


def test_default_builds_yesterday_with_progress_and_one_summary_line():
    write(date(2026, 11, 23))
    output = build_daily()
    lines = output.strip().splitlines()
    assert any("2026-11-23: published" in line for line in lines)
    assert all(line.startswith(STAMP) for line in lines), lines
    assert lines[-1].startswith(STAMP + "build_daily success: days 1 published")
    assert DailyFile.objects.filter(date=date(2026, 11, 23)).count() == 3
    run = BuildRun.objects.get()
    assert run.command == "build_daily" and run.outcome == "success"
    assert run.arguments["days"] == ["2026-11-23"]
    assert run.results[0]["outcome"] == "published"


def test_rerun_is_skipped_with_a_one_line_message():
    write(date(2026, 11, 23))
    build_daily("--date", "2026-11-23")
    output = build_daily("--date", "2026-11-23")
    assert "2026-11-23: skipped: already published from the same input" in output
    assert "nothing_to_do" in output.splitlines()[-1]


def test_force_rebuilds():
    write(date(2026, 11, 23))
    build_daily("--date", "2026-11-23")
    output = build_daily("--date", "2026-11-23", "--force")
    assert "2026-11-23: published" in output


def test_failed_day_exits_non_zero_and_the_other_days_still_run():
    write(date(2026, 11, 20))
    write(date(2026, 11, 22))
    with pytest.raises(CommandError) as failure:
        build_daily("--from", "2026-11-20", "--to", "2026-11-22")
    assert str(failure.value).startswith(STAMP + "build_daily failed: days ")
    assert set(DailyFile.objects.values_list("date", flat=True)) == {date(2026, 11, 20), date(2026, 11, 22)}
    run = BuildRun.objects.get()
    assert run.outcome == "failed"
    assert "2026-11-21: no archive folder" in run.error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-11-24"], "today or later"),
        (["--date", "2026-12-01"], "today or later"),
        (["--date", "yesterday"], "is not a date"),
        (["--from", "2026-11-20"], "--from and --to go together"),
        (["--from", "2026-11-22", "--to", "2026-11-20"], "is after --to"),
    ],
)
def test_impossible_dates_are_refused_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        build_daily(*args)
    assert not BuildRun.objects.exists()


def test_unknown_tier_is_refused():
    with pytest.raises(CommandError):
        build_daily("--tier", "tier9")


def test_dry_run_reports_and_writes_nothing():
    write(date(2026, 11, 23))
    output = build_daily("--dry-run")
    assert "would build tier1, tier2, tier3 from 24 hour files" in output
    assert "dry_run" in output.splitlines()[-1]
    assert not DailyFile.objects.exists()


def test_unreadable_archive_root_fails_cleanly(settings, tmp_path):
    settings.ARCHIVE_ROOT = tmp_path / "missing"
    with pytest.raises(CommandError):
        build_daily("--date", "2026-11-23")
    assert "does not exist" in BuildRun.objects.get().error


def test_force_index_rewrites_the_index_from_what_is_published_and_nothing_else():
    write(date(2026, 11, 23))
    build_daily("--date", "2026-11-23")
    storage.delete("index/tier1.json")
    storage.delete("index/tier2.json")
    write(date(2026, 11, 22))  # in the archive, not published: --force-index must not build it
    runs = BuildRun.objects.count()
    output = build_daily("--force-index", "--tier", "tier1")
    assert output.splitlines() == [STAMP + "wrote index/tier1.json", STAMP + "1 index file written"]
    assert json.loads(storage.read_bytes("index/tier1.json"))["daily"][0]["date"] == "2026-11-23"
    assert not storage.exists("index/tier2.json")  # only the selected tiers
    assert not DailyFile.objects.filter(date=date(2026, 11, 22)).exists()
    assert BuildRun.objects.count() == runs


@pytest.mark.parametrize("other", [["--date", "2026-11-23"], ["--force"], ["--dry-run"]])
def test_force_index_refuses_build_options(other):
    with pytest.raises(CommandError, match="--force-index rewrites the index only: drop --"):
        build_daily("--force-index", *other)


def test_force_index_waits_for_no_build_it_refuses_while_one_holds_the_lock():
    with (
        locks.build_lock(holder="host-a:11:cafe0001"),
        pytest.raises(CommandError, match="index not rewritten: another build is running") as refused,
    ):
        build_daily("--force-index")
    assert refused.value.returncode == locks.EXIT_LOCKED
