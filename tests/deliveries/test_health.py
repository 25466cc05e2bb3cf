"""Health checks: each failing state gives one safe, one-line problem; a healthy system gives none."""

from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.db import DatabaseError

from deliveries import health, mtd, storage
from deliveries.models import BuildRun, DailyFile
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier
from tests.support.factories import daily_keys, mtd_keys, publish_day

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 20)
AFTER_DEADLINE = datetime(2026, 11, 20, 3, 30, tzinfo=UTC)
BEFORE_DEADLINE = datetime(2026, 11, 20, 2, 30, tzinfo=UTC)


def record_build(outcome, started_at, command="build_daily", days=None):
    """A finished run; with ``days`` a manual one (``--date``/``--from``), as the pipeline records it."""
    arguments = {"days": days, "explicit": True} if days else {"days": [], "explicit": False}
    return BuildRun.objects.create(
        command=command,
        started_at=started_at,
        finished_at=started_at + timedelta(minutes=5),
        outcome=outcome,
        arguments=arguments,
    )


def healthy_system(through=TODAY - timedelta(days=1)):
    """Every tier published through ``through``, bundled, and a successful build recorded."""
    for tier in Tier.values:
        for offset in range(3):
            publish_day(tier, through - timedelta(days=offset))
        mtd.build_month(tier, mtd.month_start(through), today=through + timedelta(days=1))
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 0, 30, tzinfo=UTC))


def codes(problems):
    return [(problem.code, problem.tier) for problem in problems]


def test_a_healthy_system_has_no_problems():
    healthy_system()
    assert health.run_checks(now=AFTER_DEADLINE) == []


def test_newest_day_older_than_yesterday_after_the_deadline_is_stale():
    healthy_system(through=TODAY - timedelta(days=2))
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("stale", "tier1"), ("stale", "tier2"), ("stale", "tier3")]
    assert problems[0].message == (
        "tier1: newest published day is 2026-11-18, expected 2026-11-19 (deadline 03:00 UTC)"
    )


def test_before_the_deadline_the_day_before_yesterday_is_still_fresh():
    healthy_system(through=TODAY - timedelta(days=2))
    assert health.run_checks(now=BEFORE_DEADLINE) == []
    healthy_system(through=TODAY - timedelta(days=4))
    DailyFile.objects.filter(date__gt=TODAY - timedelta(days=4)).delete()
    assert codes(health.run_checks(now=BEFORE_DEADLINE))[0] == ("stale", "tier1")


def test_the_deadline_comes_from_settings(settings):
    settings.BUILD_DEADLINE_UTC = "04:15"
    healthy_system(through=TODAY - timedelta(days=2))
    assert health.run_checks(now=datetime(2026, 11, 20, 4, 0, tzinfo=UTC)) == []
    assert "deadline 04:15 UTC" in health.run_checks(now=datetime(2026, 11, 20, 4, 15, tzinfo=UTC))[0].message


def test_a_tier_with_no_published_day_is_a_problem():
    healthy_system()
    DailyFile.objects.filter(tier="tier2").delete()
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("no_published_day", "tier2")]
    assert problems[0].message == "tier2: no published day"


def test_the_last_finished_build_daily_run_failing_is_a_problem_until_one_succeeds():
    healthy_system()
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    BuildRun.objects.create(command="build_daily", started_at=datetime(2026, 11, 20, 2, 0, tzinfo=UTC))  # running
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 2, 0, tzinfo=UTC), command="build_mtd")
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("build_failed", None)]
    assert problems[0].message == "last build_daily run (started 2026-11-20 01:00 UTC) failed"
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 1, 30, tzinfo=UTC))
    assert health.run_checks(now=AFTER_DEADLINE) == []


def test_a_failed_manual_backfill_of_a_past_day_is_a_warning_not_a_failure():
    healthy_system()
    run = record_build(Outcome.FAILED, datetime(2026, 11, 20, 2, 0, tzinfo=UTC), days=["2026-10-05"])
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("backfill_failed", None)]
    assert health.failures(problems) == []
    assert problems[0].message == (
        f"manual build_daily run #{run.pk} (2026-10-05, started 2026-11-20 02:00 UTC) failed; "
        "what subscribers see is unchanged"
    )


def test_a_backfill_warning_lasts_until_a_later_run_succeeds():
    healthy_system()
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 2, 0, tzinfo=UTC), days=["2026-10-01", "2026-10-31"])
    assert "(2026-10-01 to 2026-10-31," in health.run_checks(now=AFTER_DEADLINE)[0].message
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 2, 30, tzinfo=UTC), days=["2026-10-05"])
    assert health.run_checks(now=AFTER_DEADLINE) == []


def test_a_failed_backfill_does_not_hide_a_failed_nightly_run():
    healthy_system()
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 1, 0, tzinfo=UTC))  # the nightly run
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 1, 30, tzinfo=UTC), days=["2026-10-05"])
    assert codes(health.run_checks(now=AFTER_DEADLINE)) == [("build_failed", None)]


def test_a_backfill_that_left_a_listed_day_broken_fails_through_the_object_check():
    healthy_system()
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 2, 0, tzinfo=UTC), days=["2026-11-18"])
    storage.delete(DailyFile.objects.get(tier="tier2", date=date(2026, 11, 18)).key)
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert [(p.code, p.severity) for p in problems] == [("backfill_failed", "warn"), ("object_missing", "fail")]
    assert health.failures(problems) == [problems[1]]


def test_any_outcome_but_success_or_nothing_to_do_counts_as_failed():
    """A new outcome (such as a crashed run) must not pass as healthy just because it is not "failed"."""
    healthy_system()
    BuildRun.objects.filter(pk=record_build("failed", datetime(2026, 11, 20, 1, 0, tzinfo=UTC)).pk).update(
        outcome="crashed"
    )
    assert codes(health.run_checks(now=AFTER_DEADLINE)) == [("build_failed", None)]


def test_a_later_dry_run_or_locked_run_does_not_hide_a_failed_build():
    healthy_system()
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    record_build(Outcome.DRY_RUN, datetime(2026, 11, 20, 1, 10, tzinfo=UTC))
    record_build(Outcome.LOCKED, datetime(2026, 11, 20, 1, 20, tzinfo=UTC))
    assert codes(health.run_checks(now=AFTER_DEADLINE)) == [("build_failed", None)]


def test_a_crashed_last_build_is_a_failed_build_until_a_later_one_finishes():
    healthy_system()
    record_build(Outcome.CRASHED, datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    BuildRun.objects.create(command="build_daily", started_at=datetime(2026, 11, 20, 1, 5, tzinfo=UTC))  # the rerun
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("build_failed", None)]
    assert problems[0].message == "last build_daily run (started 2026-11-20 01:00 UTC) crashed"
    record_build(Outcome.SUCCESS, datetime(2026, 11, 20, 1, 30, tzinfo=UTC))
    assert health.run_checks(now=AFTER_DEADLINE) == []


def test_an_mtd_that_lacks_a_published_day_is_a_problem():
    healthy_system(through=TODAY - timedelta(days=2))
    for tier in Tier.values:
        publish_day(tier, TODAY - timedelta(days=1))  # published, bundle not rebuilt
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("mtd_lacks_day", "tier1"), ("mtd_lacks_day", "tier2"), ("mtd_lacks_day", "tier3")]
    assert problems[0].message == "tier1: 2026-11 bundle lacks published day(s) 2026-11-19"
    assert health.run_checks(now=BEFORE_DEADLINE) == [], "the nightly run may still be bundling it"


def test_on_the_2nd_the_month_just_ended_must_hold_its_last_day():
    healthy_system(through=date(2026, 11, 30))
    publish_day("tier1", date(2026, 12, 1))
    mtd.build_month("tier1", date(2026, 12, 1), today=date(2026, 12, 2))
    DailyFile.objects.filter(tier="tier1", date=date(2026, 11, 30)).update(sha256="0" * 64)
    problems = health.run_checks(now=datetime(2026, 12, 2, 2, 0, tzinfo=UTC), check_objects=False)
    assert ("mtd_lacks_day", "tier1") in codes(problems)
    assert "2026-11 bundle lacks published day(s) 2026-11-30" in problems[-1].message


def test_unreachable_storage_is_one_problem_without_the_error_text():
    healthy_system()
    secret = "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG"
    with mock.patch.object(storage, "ping", side_effect=storage.StorageError(f"ping failed: {secret}")):
        problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("storage_unreachable", None)]
    assert problems[0].message == "storage (local) is unreachable"


def test_a_missing_object_and_a_wrong_size_are_problems():
    healthy_system()
    daily = DailyFile.objects.get(tier="tier2", date=TODAY - timedelta(days=2))
    storage.delete(daily.key)
    other = DailyFile.objects.get(tier="tier3", date=TODAY - timedelta(days=1))
    storage.put_bytes(other.key, b"short", storage.PARQUET_CONTENT_TYPE)
    storage.delete(other.manifest_key)
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert [(p.code, p.message) for p in problems] == [
        ("object_missing", f"tier2 2026-11-18: data object {daily.key} is missing"),
        ("object_size", f"tier3 2026-11-19: data object {other.key} is 5 bytes, expected {other.size_bytes}"),
        ("object_missing", f"tier3 2026-11-19: manifest {other.manifest_key} is missing"),
    ]
    assert daily.key == f"tier2/daily/2026-11-18/{daily.sha256[:16]}/data.parquet", "the listed version's key"
    assert health.run_checks(now=AFTER_DEADLINE, check_objects=False) == []


def test_a_missing_bundle_object_is_a_problem():
    healthy_system()
    key = mtd_keys("tier1", date(2026, 11, 1))[0]
    storage.delete(key)
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert [(p.code, p.message) for p in problems] == [
        ("object_missing", f"tier1 2026-11 bundle: data object {key} is missing")
    ]


def test_deleted_days_are_history_and_not_checked_in_storage():
    healthy_system()
    daily = DailyFile.objects.get(tier="tier1", date=TODAY - timedelta(days=3))
    storage.delete(daily.key)
    DailyFile.objects.filter(pk=daily.pk).update(deleted_at=AFTER_DEADLINE)
    assert health.run_checks(now=AFTER_DEADLINE) == []


def test_an_unreachable_database_is_reported_not_raised():
    with mock.patch.object(health, "expected_newest_day", side_effect=DatabaseError("password=hunter2")):
        problems = health.run_checks(now=AFTER_DEADLINE)
    assert [(p.code, p.message) for p in problems] == [("database_unreachable", "database is unreachable")]


def test_messages_are_one_line():
    healthy_system(through=TODAY - timedelta(days=3))
    record_build(Outcome.FAILED, datetime(2026, 11, 20, 1, 0, tzinfo=UTC))
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert problems and all("\n" not in p.message for p in problems)


@pytest.mark.s3
def test_checks_against_s3_find_missing_objects_and_an_unreachable_bucket(s3_storage, settings):
    healthy_system()
    assert health.run_checks(now=AFTER_DEADLINE) == []
    manifest_key = daily_keys("tier1", date(2026, 11, 19))[1]
    s3_storage.delete_object(Bucket=s3_storage.bucket, Key=manifest_key)
    assert [(p.code, p.message) for p in health.run_checks(now=AFTER_DEADLINE)] == [
        ("object_missing", f"tier1 2026-11-19: manifest {manifest_key} is missing")
    ]
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {
            **settings.STORAGES["deliveries"],
            "OPTIONS": {**settings.STORAGES["deliveries"]["OPTIONS"], "bucket_name": "no-such-bucket"},
        },
    }
    settings.STORAGE_BACKEND = "s3"
    problems = health.run_checks(now=AFTER_DEADLINE)
    assert codes(problems) == [("storage_unreachable", None)]
    assert problems[0].message == "storage (s3) is unreachable"
    assert "testing" not in problems[0].message
