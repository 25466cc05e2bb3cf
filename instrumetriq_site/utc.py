"""UTC dates and schedules, written once: every time setting is ``HH:MM`` in UTC, weekdays are
numbered as cron numbers them (0 = Sunday), and a moment is written for machines as ISO 8601 with
a ``Z``.

The settings module imports this file (for its cron lines), so it reads settings only inside the
functions that say so, never at import.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

DAY, WEEK = timedelta(days=1), timedelta(days=7)
CRON_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def parse_hhmm(value):
    """``"00:30"`` as a time; ValueError for anything that is not a time of day as HH:MM."""
    hour, minute = (int(part) for part in str(value).split(":"))
    return time(hour, minute)


def iso_z(moment):
    """``2026-11-10T06:00:00Z`` (whole seconds, UTC), or None for None: the API, the index, the
    manifests and /healthz write every moment this way."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def today(now=None):
    """The UTC date of ``now`` (default: the current time)."""
    return (now or timezone.now()).astimezone(UTC).date()


def yesterday(now=None):
    """The newest UTC day that is over: the one a nightly build publishes."""
    return today(now) - DAY


def cron_line(at, weekday="*"):
    """The five time fields of a crontab line running at ``at`` (a time or ``HH:MM``) UTC."""
    at = parse_hhmm(at) if isinstance(at, str) else at
    return f"{at.minute} {at.hour} * * {weekday}"


def python_weekday(cron_weekday):
    """datetime.weekday() counts Monday = 0; cron counts Sunday = 0 (and 7)."""
    return (int(cron_weekday) - 1) % 7


@dataclass(frozen=True)
class Daily:
    """Every day at ``at`` UTC."""

    at: time

    def next_after(self, moment):
        """The first occurrence strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        candidate = datetime.combine(moment.date(), self.at, tzinfo=UTC)
        return candidate if candidate > moment else candidate + DAY


@dataclass(frozen=True)
class Weekly:
    """Every week on a cron-numbered weekday at ``at`` UTC."""

    cron_weekday: int
    at: time

    @property
    def cron_line(self):
        return cron_line(self.at, self.cron_weekday)

    @property
    def day_name(self):
        return CRON_DAY_NAMES[self.cron_weekday % 7]

    @property
    def time_text(self):
        return f"{self.at:%H:%M}"

    @property
    def label(self):
        return f"{self.day_name} {self.time_text} UTC"

    def next_after(self, moment):
        """The first occurrence strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        days = (python_weekday(self.cron_weekday) - moment.weekday()) % 7
        candidate = datetime.combine(moment.date() + timedelta(days=days), self.at, tzinfo=UTC)
        return candidate if candidate > moment else candidate + WEEK

    def last_at_or_before(self, moment):
        return self.next_after(moment) - WEEK


# --- The nightly build's schedule (BUILD_TIME_UTC, BUILD_DEADLINE_UTC) ----------------------------


def next_build(now):
    """The next nightly build (BUILD_TIME_UTC) after ``now``."""
    return Daily(parse_hhmm(settings.BUILD_TIME_UTC)).next_after(now)


def expected_newest_day(now):
    """The newest day that must be published by ``now``: yesterday once today's BUILD_DEADLINE_UTC
    has passed, the day before until then (last night's build may still be running)."""
    now = now.astimezone(UTC)
    late = now.time() >= parse_hhmm(settings.BUILD_DEADLINE_UTC)
    return now.date() - timedelta(days=1 if late else 2)
