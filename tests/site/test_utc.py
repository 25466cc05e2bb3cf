"""instrumetriq_site.utc: the one place that reads HH:MM, writes ISO-Z and knows the nightly schedule."""

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from instrumetriq_site.utc import Daily, cron_line, expected_newest_day, iso_z, next_build, parse_hhmm, today, yesterday


@pytest.mark.parametrize("value", ["24:00", "12:60", "noon", "12", "12:30:00", "", "-1:00"])
def test_parse_hhmm_refuses_anything_but_a_time_of_day(value):
    with pytest.raises(ValueError):
        parse_hhmm(value)


def test_parse_hhmm_reads_hours_and_minutes():
    assert parse_hhmm("00:30") == time(0, 30)
    assert parse_hhmm("23:59") == time(23, 59)


def test_iso_z_writes_utc_whole_seconds_with_a_z():
    paris = timezone(timedelta(hours=1))
    assert iso_z(datetime(2026, 11, 10, 7, 0, 5, 999999, tzinfo=paris)) == "2026-11-10T06:00:05Z"
    assert iso_z(None) is None


def test_today_and_yesterday_are_utc_dates_whatever_the_moment_s_offset():
    tokyo = timezone(timedelta(hours=9))
    assert today(datetime(2026, 11, 10, 8, 0, tzinfo=tokyo)) == date(2026, 11, 9)
    assert yesterday(datetime(2026, 11, 10, 8, 0, tzinfo=tokyo)) == date(2026, 11, 8)


def test_cron_line_takes_a_time_or_hhmm():
    assert cron_line("00:30") == "30 0 * * *"
    assert cron_line(time(18, 5), 5) == "5 18 * * 5"


def test_daily_next_after_is_strictly_after():
    build = Daily(time(0, 30))
    at = datetime(2026, 11, 10, 0, 30, tzinfo=UTC)
    assert build.next_after(at - timedelta(seconds=1)) == at
    assert build.next_after(at) == at + timedelta(days=1)


def test_next_build_follows_build_time_utc(settings):
    settings.BUILD_TIME_UTC = "02:15"
    assert next_build(datetime(2026, 11, 10, 6, 0, tzinfo=UTC)) == datetime(2026, 11, 11, 2, 15, tzinfo=UTC)


def test_the_newest_expected_day_is_yesterday_only_once_the_deadline_passed(settings):
    settings.BUILD_DEADLINE_UTC = "03:00"
    assert expected_newest_day(datetime(2026, 11, 10, 2, 59, tzinfo=UTC)) == date(2026, 11, 8)
    assert expected_newest_day(datetime(2026, 11, 10, 3, 0, tzinfo=UTC)) == date(2026, 11, 9)
