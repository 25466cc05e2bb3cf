"""The weekly schedule comes from settings and uses cron's weekday numbering (0 = Sunday)."""

from datetime import UTC, datetime, time, timedelta

import pytest

from instrumetriq_site.utc import Weekly, python_weekday
from tokens.schedule import Schedule, format_when, promote_after

MONDAY = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
SUNDAY = datetime(2025, 6, 8, tzinfo=UTC)


@pytest.mark.parametrize(("cron", "python"), [(0, 6), (1, 0), (6, 5), (7, 6)])
def test_cron_weekday_maps_to_python_weekday(cron, python):
    assert python_weekday(cron) == python


def test_default_schedule_announces_sunday_and_promotes_monday_at_midnight_utc():
    schedule = Schedule.from_settings()
    assert schedule.announce == Weekly(0, time(0, 0))
    assert schedule.promote == Weekly(1, time(0, 0))
    assert schedule.overlap == timedelta(days=1)
    assert schedule.announce.label == "Sunday 00:00 UTC"


def test_next_after_is_strictly_after():
    promote = Weekly(1, time(0, 0))
    assert promote.next_after(MONDAY - timedelta(seconds=1)) == MONDAY
    assert promote.next_after(MONDAY) == MONDAY + timedelta(days=7)
    assert promote.last_at_or_before(MONDAY) == MONDAY
    assert promote.last_at_or_before(MONDAY + timedelta(hours=5)) == MONDAY


def test_schedule_follows_the_settings(settings):
    settings.ROTATION_ANNOUNCE_WEEKDAY = 5
    settings.ROTATION_ANNOUNCE_TIME_UTC = "18:30"
    settings.ROTATION_PROMOTE_WEEKDAY = 6
    settings.ROTATION_PROMOTE_TIME_UTC = "06:00"
    schedule = Schedule.from_settings()
    assert schedule.announce.cron_line == "30 18 * * 5"
    assert schedule.promote.cron_line == "0 6 * * 6"
    assert schedule.overlap == timedelta(hours=11, minutes=30)
    assert schedule.announce.next_after(MONDAY) == datetime(2025, 6, 6, 18, 30, tzinfo=UTC)  # Friday


def test_promote_after_is_anchored_on_the_announcement_not_on_now():
    assert promote_after(SUNDAY) == SUNDAY + timedelta(days=1)
    # A late Monday announce (after a missed Sunday) runs until the following Monday.
    assert promote_after(SUNDAY + timedelta(days=1, seconds=5)) == SUNDAY + timedelta(days=8)


def test_format_when_is_utc():
    assert format_when(SUNDAY) == "Sun 08 Jun 2025 00:00 UTC"
