"""Cron jobs exit non-zero when their command fails, so cron (and its MAILTO) notice."""

import pytest
from django.conf import settings

from instrumetriq_site.cron import run_command

pytestmark = pytest.mark.django_db


def test_failing_command_exits_with_status_1_and_says_why(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_command("build_daily", date="not-a-date")
    assert exit_info.value.code == 1
    assert "build_daily: 'not-a-date' is not a date" in capsys.readouterr().err


def test_successful_command_returns_normally(capsys):
    run_command("rotate_tokens", mode="init")
    assert "init" in capsys.readouterr().out


def test_every_cron_job_goes_through_the_exit_status_wrapper():
    assert {job[1] for job in settings.CRONJOBS} == {"instrumetriq_site.cron.run_command"}
    assert [job[2][0] for job in settings.CRONJOBS] == ["build_daily", "rotate_tokens", "rotate_tokens"]
