"""The weekly rotation schedule, read from settings in one place.

Cron, the "works until" times shown to subscribers and the Patreon text all come from here, so
they cannot disagree. Weekdays use cron's numbering (0 = Sunday) as the settings do.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.conf import settings

WEEK = timedelta(days=7)
CRON_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def parse_hhmm(value):
    hour, minute = (int(part) for part in value.split(":"))
    return time(hour, minute)


def format_when(moment):
    """One way to write a moment for people: "Mon 09 Jun 2025 00:00 UTC"."""
    return f"{moment.astimezone(UTC):%a %d %b %Y %H:%M} UTC"


def python_weekday(cron_weekday):
    """datetime.weekday() counts Monday = 0; cron counts Sunday = 0 (and 7)."""
    return (int(cron_weekday) - 1) % 7


@dataclass(frozen=True)
class Weekly:
    cron_weekday: int
    at: time

    @property
    def cron_line(self):
        return f"{self.at.minute} {self.at.hour} * * {self.cron_weekday}"

    @property
    def label(self):
        return f"{CRON_DAY_NAMES[self.cron_weekday % 7]} {self.at:%H:%M} UTC"

    def next_after(self, moment):
        """The first occurrence strictly after ``moment``."""
        moment = moment.astimezone(UTC)
        days = (python_weekday(self.cron_weekday) - moment.weekday()) % 7
        candidate = datetime.combine(moment.date() + timedelta(days=days), self.at, tzinfo=UTC)
        return candidate if candidate > moment else candidate + WEEK

    def last_at_or_before(self, moment):
        return self.next_after(moment) - WEEK


@dataclass(frozen=True)
class Schedule:
    announce: Weekly
    promote: Weekly

    @classmethod
    def from_settings(cls):
        return cls(
            announce=Weekly(settings.ROTATION_ANNOUNCE_WEEKDAY, parse_hhmm(settings.ROTATION_ANNOUNCE_TIME_UTC)),
            promote=Weekly(settings.ROTATION_PROMOTE_WEEKDAY, parse_hhmm(settings.ROTATION_PROMOTE_TIME_UTC)),
        )

    @property
    def overlap(self):
        """How long both links work in a week that runs to schedule."""
        announce = self.announce.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        return self.promote.next_after(announce) - announce


def promote_after(announced_at):
    """When a ``next`` token announced at ``announced_at`` is due to become the only one.

    Anchored on the announcement rather than on "now", so a promote that runs a few seconds late
    does not make the outgoing link claim another week of life.
    """
    return Schedule.from_settings().promote.next_after(announced_at)
