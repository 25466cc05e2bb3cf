"""A week, hour by hour, with the rotations fired by the CRONJOBS lines themselves.

At every hour: which token opens which tier, what an outgoing link is told, and afterwards the
same answers read back from the history alone.
"""

import importlib
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from deliveries.tiers import Tier
from tokens import crypto
from tokens.models import TierToken
from tokens.schedule import Schedule
from tokens.validation import validate

pytestmark = pytest.mark.django_db

START = datetime(2025, 6, 2, tzinfo=UTC)  # a Monday
HOURS = 8 * 24 + 1  # Monday 00:00 to the Tuesday after next Monday, inclusive


def due(line, moment):
    minute, hour, day, month, weekday = line.split()
    return (
        (minute == "*" or int(minute) == moment.minute)
        and (hour == "*" or int(hour) == moment.hour)
        and day == "*"
        and month == "*"
        and (weekday == "*" or int(weekday) % 7 == (moment.weekday() + 1) % 7)
    )


def fire_due_jobs(moment, cronjobs, monkeypatch):
    """What cron plus django-crontab would run at ``moment``: the rotate_tokens jobs."""
    fired = []
    for job in cronjobs:
        line, path, args, kwargs = job[0], job[1], job[2], job[3]
        if args[:1] != ["rotate_tokens"] or not due(line, moment):
            continue
        module, name = path.rsplit(".", 1)
        monkeypatch.setattr("sys.argv", ["manage.py", "crontab", "run", "hash"])
        getattr(importlib.import_module(module), name)(*args, **kwargs, stdout=io.StringIO())
        fired.append(kwargs["mode"])
    return fired


def rotation_cronjobs(schedule):
    return [
        (schedule.announce.cron_line, "django.core.management.call_command", ["rotate_tokens"], {"mode": "announce"}),
        (schedule.promote.cron_line, "django.core.management.call_command", ["rotate_tokens"], {"mode": "promote"}),
    ]


SCHEDULES = {
    "settings": None,  # the real CRONJOBS and ROTATION_* settings
    "friday-evening-to-saturday-morning": {
        "ROTATION_ANNOUNCE_WEEKDAY": 5,
        "ROTATION_ANNOUNCE_TIME_UTC": "18:00",
        "ROTATION_PROMOTE_WEEKDAY": 6,
        "ROTATION_PROMOTE_TIME_UTC": "06:00",
    },
}


@pytest.mark.parametrize("schedule_name", list(SCHEDULES))
def test_a_full_week_hour_by_hour(schedule_name, settings, monkeypatch):
    if SCHEDULES[schedule_name]:
        for name, value in SCHEDULES[schedule_name].items():
            setattr(settings, name, value)
        settings.CRONJOBS = rotation_cronjobs(Schedule.from_settings())
    schedule = Schedule.from_settings()
    # The real schedule checks every token against every tier; the variant only needs tier1's tokens.
    owners = list(Tier.values) if SCHEDULES[schedule_name] is None else ["tier1"]
    announce_at = schedule.announce.next_after(START - timedelta(seconds=1))
    promote_at = schedule.promote.next_after(announce_at)
    if schedule_name == "settings":
        assert (announce_at, promote_at) == (datetime(2025, 6, 8, tzinfo=UTC), datetime(2025, 6, 9, tzinfo=UTC))

    with time_machine.travel(START - timedelta(days=1, hours=12), tick=False):
        from django.core.management import call_command

        call_command("rotate_tokens", mode="init", stdout=io.StringIO())
    old = {tier: crypto.unseal_row(TierToken.objects.get(tier=tier)) for tier in Tier.values}
    new = {}
    observed = {}
    fired_at = []

    for hour in range(HOURS):
        moment = START + timedelta(hours=hour)
        with time_machine.travel(moment, tick=False):
            fired = fire_due_jobs(moment, settings.CRONJOBS, monkeypatch)
            fired_at += [(mode, moment) for mode in fired]
            if "announce" in fired:
                new = {tier: crypto.unseal_row(TierToken.objects.get(tier=tier, state="next")) for tier in Tier.values}
            in_overlap = announce_at <= moment < promote_at
            for owner in owners:
                for name, token in (("old", old[owner]), ("new", new.get(owner))):
                    if token is None:
                        continue
                    for tier in Tier.values:
                        result = validate(tier, token)
                        observed[moment, owner, name, tier] = result
                        expected_ok = tier == owner and (
                            (name == "old" and moment < promote_at) or (name == "new" and moment >= announce_at)
                        )
                        assert result.ok is expected_ok, (moment, owner, name, tier)
                        if not expected_ok:
                            continue
                        if name == "old":
                            assert result.state == "current"
                            assert result.is_outgoing is in_overlap
                            assert result.promotes_at == (promote_at if in_overlap else None)
                        else:
                            assert result.state == ("next" if in_overlap else "current")
                            assert not result.is_outgoing and result.promotes_at is None

    window = [START + timedelta(hours=hour) for hour in range(HOURS)]
    expected = [
        (mode, moment)
        for moment in window
        for mode, weekly in (("announce", schedule.announce), ("promote", schedule.promote))
        if weekly.last_at_or_before(moment) == moment
    ]
    assert ("announce", announce_at) in expected and ("promote", promote_at) in expected
    assert fired_at == expected
    assert TierToken.objects.filter(state="current").count() == 3
    assert TierToken.objects.filter(state="retired", retired_at=promote_at).count() == 3
    assert set(TierToken.objects.filter(state="current").values_list("reason", flat=True)) == {"scheduled"}

    # The history alone gives the same answers, hour by hour, after the fact.
    for (moment, owner, name, tier), live in observed.items():
        token = old[owner] if name == "old" else new[owner]
        assert validate(tier, token, at=moment) == live, (moment, owner, name, tier)
