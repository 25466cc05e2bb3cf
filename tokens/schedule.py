"""The weekly rotation schedule, read from settings in one place.

Cron, the "works until" times shown to subscribers and the Patreon text all come from here, so
they cannot disagree. Weekdays use cron's numbering (0 = Sunday) as the settings do.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from instrumetriq_site.utc import Weekly, parse_hhmm


def format_when(moment):
    """One way to write a moment for people: "Mon 09 Jun 2025 00:00 UTC"."""
    return f"{moment.astimezone(UTC):%a %d %b %Y %H:%M} UTC"


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
