"""The cron lines (django-crontab CRONJOBS) must say what the schedule settings say."""

import importlib
import io

import pytest
from django.conf import settings
from django.core.management import call_command

from tokens.checks import check_rotation_cron, parse_cron_line, rotation_jobs
from tokens.schedule import Schedule


def jobs_for(command):
    return [job for job in settings.CRONJOBS if job[2][:1] == [command]]


def test_cronjobs_announce_and_promote_at_the_schedule_settings():
    schedule = Schedule.from_settings()
    assert rotation_jobs() == {"announce": [schedule.announce.cron_line], "promote": [schedule.promote.cron_line]}
    assert parse_cron_line(schedule.announce.cron_line) == (0, 0, 0)  # Sunday 00:00
    assert parse_cron_line(schedule.promote.cron_line) == (0, 0, 1)  # Monday 00:00


def test_cronjobs_build_daily_nightly_at_build_time():
    (job,) = jobs_for("build_daily")
    hour, minute = (int(part) for part in settings.BUILD_TIME_UTC.split(":"))
    assert job[0] == f"{minute} {hour} * * *"


def test_cron_runs_in_utc_and_logs_to_the_cron_log_dir():
    assert settings.CRONTAB_COMMAND_PREFIX.startswith("TZ=UTC")
    for job in jobs_for("rotate_tokens"):
        assert job[4] == f">> {settings.CRON_LOG_DIR / 'rotate_tokens.log'} 2>&1"


@pytest.mark.django_db
def test_each_rotation_job_runs_as_django_crontab_calls_it():
    call_command("rotate_tokens", mode="init", stdout=io.StringIO())
    for job in jobs_for("rotate_tokens"):
        module, name = job[1].rsplit(".", 1)
        getattr(importlib.import_module(module), name)(*job[2], **job[3], stdout=io.StringIO())


def test_system_check_passes_with_the_settings_as_shipped():
    assert check_rotation_cron() == []


def test_system_check_catches_a_schedule_setting_changed_without_the_cron_line(settings):
    settings.ROTATION_PROMOTE_TIME_UTC = "06:00"
    (error,) = check_rotation_cron()
    assert error.id == "tokens.E001"
    assert "--mode promote" in error.msg and "'0 6 * * 1'" in error.msg


@pytest.mark.parametrize(
    "cronjobs",
    [
        [],
        [("0 0 * * 0", "django.core.management.call_command", ["rotate_tokens"], {"mode": "announce"})] * 2,
        [("0 0 1 * 0", "django.core.management.call_command", ["rotate_tokens"], {"mode": "announce"})],
    ],
    ids=["missing", "twice", "not-weekly"],
)
def test_system_check_catches_missing_duplicate_or_odd_cron_lines(settings, cronjobs):
    promote = [("0 0 * * 1", "django.core.management.call_command", ["rotate_tokens"], {"mode": "promote"})]
    settings.CRONJOBS = cronjobs + promote
    assert [message.id for message in check_rotation_cron()] == ["tokens.E001"]


def test_sunday_may_be_written_as_7(settings):
    settings.CRONJOBS = [
        ("0 0 * * 7", "django.core.management.call_command", ["rotate_tokens"], {"mode": "announce"}),
        ("0 0 * * 1", "django.core.management.call_command", ["rotate_tokens"], {"mode": "promote"}),
    ]
    assert check_rotation_cron() == []


@pytest.mark.parametrize(
    ("announce", "promote", "warning"),
    [((1, "00:00"), (1, "00:00"), "same minute"), ((0, "23:30"), (1, "00:00"), "only 0:30:00")],
)
def test_system_check_warns_when_the_overlap_is_too_short(settings, announce, promote, warning):
    settings.ROTATION_ANNOUNCE_WEEKDAY, settings.ROTATION_ANNOUNCE_TIME_UTC = announce
    settings.ROTATION_PROMOTE_WEEKDAY, settings.ROTATION_PROMOTE_TIME_UTC = promote
    schedule = Schedule.from_settings()
    settings.CRONJOBS = [
        (schedule.announce.cron_line, "django.core.management.call_command", ["rotate_tokens"], {"mode": "announce"}),
        (schedule.promote.cron_line, "django.core.management.call_command", ["rotate_tokens"], {"mode": "promote"}),
    ]
    (message,) = check_rotation_cron()
    assert message.id == "tokens.W001" and warning in message.msg


def test_system_check_leaves_malformed_schedule_settings_to_the_site_checks(settings):
    settings.ROTATION_ANNOUNCE_TIME_UTC = "midnight"
    assert check_rotation_cron() == []


def test_parse_cron_line_accepts_weekly_lines_only():
    assert parse_cron_line("30 18 * * 5") == (30, 18, 5)
    for line in ("0 0 * *", "*/5 0 * * 1", "0 0 1 * 1", "0 0 * * mon"):
        assert parse_cron_line(line) is None
