"""manage.py healthcheck: ``ok`` and exit 0, or one line per problem and a non-zero exit."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command

from deliveries import mtd, storage
from deliveries.models import BuildRun, DailyFile
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier
from tests.support.clock import frozen_clock_at
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


frozen_clock = frozen_clock_at(datetime(2026, 11, 20, 6, 0, tzinfo=UTC))


@pytest.fixture
def healthy():
    for tier in Tier.values:
        publish_day(tier, date(2026, 11, 19))
        mtd.build_month(tier, date(2026, 11, 1))
    BuildRun.objects.create(
        command="build_daily",
        outcome=Outcome.SUCCESS,
        started_at=datetime(2026, 11, 20, 0, 30, tzinfo=UTC),
        finished_at=datetime(2026, 11, 20, 0, 35, tzinfo=UTC),
    )


def test_healthy_prints_ok_and_exits_zero(healthy):
    out = io.StringIO()
    call_command("healthcheck", stdout=out)
    assert out.getvalue() == "ok: all checks passed\n"


def test_each_problem_is_one_line_and_the_exit_is_non_zero(healthy):
    missing = DailyFile.objects.get(tier="tier2").key
    storage.delete(missing)
    BuildRun.objects.create(
        command="build_daily",
        started_at=datetime(2026, 11, 20, 1, 0, tzinfo=UTC),
        finished_at=datetime(2026, 11, 20, 1, 5, tzinfo=UTC),
        outcome=Outcome.FAILED,
        error="botocore.exceptions.ClientError: secret stuff",
    )
    out = io.StringIO()
    with pytest.raises(CommandError, match="unhealthy: 2 problem"):
        call_command("healthcheck", stdout=out)
    assert out.getvalue().splitlines() == [
        "FAIL build_failed: last build_daily run (started 2026-11-20 01:00 UTC) failed",
        f"FAIL object_missing: tier2 2026-11-19: data object {missing} is missing",
    ]


def test_skip_objects_and_tier_narrow_the_checks(healthy):
    storage.delete(DailyFile.objects.get(tier="tier2").key)
    out = io.StringIO()
    call_command("healthcheck", "--skip-objects", stdout=out)
    assert out.getvalue() == "ok: all checks passed\n"
    call_command("healthcheck", "--tier", "tier1", stdout=io.StringIO())


def test_a_stale_tier_fails():
    publish_day("tier1", date(2026, 11, 19) - timedelta(days=1))
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("healthcheck", "--tier", "tier1", stdout=out)
    assert out.getvalue().splitlines() == [
        "FAIL stale: tier1: newest published day is 2026-11-18, expected 2026-11-19 (deadline 03:00 UTC)",
        "FAIL mtd_lacks_day: tier1: 2026-11 bundle lacks published day(s) 2026-11-18",
    ]


def test_a_failed_manual_backfill_warns_and_exits_zero(healthy):
    with pytest.raises(CommandError, match="build_daily failed"):
        call_command("build_daily", "--date", "2026-10-05", stdout=io.StringIO())  # the archive lacks it
    run = BuildRun.objects.latest("started_at")
    out = io.StringIO()
    call_command("healthcheck", stdout=out)
    assert out.getvalue().splitlines() == [
        f"WARN backfill_failed: manual build_daily run #{run.pk} (2026-10-05, started 2026-11-20 06:00 UTC) failed; "
        "what subscribers see is unchanged",
        "ok: delivery is healthy, 1 warning(s)",
    ]
