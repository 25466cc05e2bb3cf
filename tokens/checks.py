"""Start-up checks: the cron lines that rotate tokens must agree with the schedule settings.

The settings drive what subscribers are told ("works until Monday 00:00 UTC"); CRONJOBS drives
what actually happens. If someone edits one and not the other, links would die at a time nobody
announced. Ids: tokens.E001 (a rotation job is missing or at the wrong time), tokens.W001 (no overlap).
"""

from datetime import timedelta

from django.conf import settings
from django.core.checks import Error, Warning

from .schedule import Schedule


def parse_cron_line(line):
    """(minute, hour, cron weekday) of a weekly "M H * * D" line, or None for anything else."""
    fields = line.split()
    if len(fields) != 5 or fields[2:4] != ["*", "*"]:
        return None
    try:
        minute, hour, weekday = int(fields[0]), int(fields[1]), int(fields[4])
    except ValueError:
        return None
    return minute, hour, weekday % 7


def rotation_jobs(cronjobs=None):
    """{mode: [cron line, ...]} for the rotate_tokens jobs in CRONJOBS."""
    jobs = {}
    for job in settings.CRONJOBS if cronjobs is None else cronjobs:
        args = job[2] if len(job) > 2 and not isinstance(job[2], str) else []
        kwargs = job[3] if len(job) > 3 and isinstance(job[3], dict) else {}
        if list(args[:1]) == ["rotate_tokens"]:
            jobs.setdefault(kwargs.get("mode"), []).append(job[0])
    return jobs


def check_rotation_cron(app_configs=None, **kwargs):
    try:
        schedule = Schedule.from_settings()
    except (AttributeError, TypeError, ValueError):
        return []  # malformed schedule settings are reported by instrumetriq.E007/E008
    messages = []
    jobs = rotation_jobs()
    for mode, weekly in (("announce", schedule.announce), ("promote", schedule.promote)):
        wanted = (weekly.at.minute, weekly.at.hour, weekly.cron_weekday % 7)
        lines = jobs.get(mode, [])
        if [parse_cron_line(line) for line in lines] != [wanted]:
            messages.append(
                Error(
                    f"CRONJOBS must run rotate_tokens --mode {mode} exactly once, at {weekly.cron_line!r} "
                    f"({weekly.label}, from the ROTATION_* settings); found {lines or 'none'}.",
                    id="tokens.E001",
                )
            )
    if (schedule.announce.cron_weekday % 7, schedule.announce.at) == (
        schedule.promote.cron_weekday % 7,
        schedule.promote.at,
    ):
        messages.append(Warning("Announce and promote run at the same minute: there is no overlap.", id="tokens.W001"))
    elif schedule.overlap < timedelta(hours=1):
        messages.append(
            Warning(
                f"The overlap between announce and promote is only {schedule.overlap}: subscribers "
                "have almost no time to pick up the new link.",
                id="tokens.W001",
            )
        )
    return messages
