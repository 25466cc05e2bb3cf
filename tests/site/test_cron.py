"""Cron jobs exit non-zero when their command fails, so cron (and its MAILTO) notice."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from instrumetriq_site import cron

ROOT = Path(settings.BASE_DIR)


class Exited(Exception):
    pass


@pytest.fixture
def exit_status(monkeypatch):
    def fake_exit(code):
        raise Exited(code)

    monkeypatch.setattr(cron.os, "_exit", fake_exit)


@pytest.mark.django_db
def test_failing_command_exits_with_status_1_and_says_why(exit_status, capsys):
    with pytest.raises(Exited) as exit_info:
        cron.run_command("build_daily", date="not-a-date")
    assert exit_info.value.args == (1,)
    assert "build_daily: 'not-a-date' is not a date" in capsys.readouterr().err


@pytest.mark.django_db
def test_unexpected_error_also_exits_with_status_1(exit_status, capsys, monkeypatch):
    monkeypatch.setattr(cron, "call_command", lambda *a, **k: 1 / 0)
    with pytest.raises(Exited):
        cron.run_command("build_daily")
    assert "ZeroDivisionError" in capsys.readouterr().err


@pytest.mark.django_db
def test_successful_command_returns_normally(capsys):
    cron.run_command("rotate_tokens", mode="init")
    assert "init" in capsys.readouterr().out


def test_every_cron_job_goes_through_the_exit_status_wrapper():
    assert {job[1] for job in settings.CRONJOBS} == {"instrumetriq_site.cron.run_command"}
    assert [job[2][0] for job in settings.CRONJOBS] == ["build_daily", "rotate_tokens", "rotate_tokens"]


def manage(*args, env):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_real_crontab_run_of_a_failing_build_exits_1_and_of_a_clean_job_exits_0(tmp_path):
    """Through django-crontab itself, as cron would run the lines `crontab add` installs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "DJANGO_ALLOW"))}
    env.update(VAR_DIR=str(tmp_path), ARCHIVE_ROOT=str(tmp_path / "no-archive"), DEBUG="1")
    assert manage("migrate", "-v0", env=env).returncode == 0
    # django-crontab names each job by the md5 of its JSON (CRONTAB_COMMENT lines carry it).
    code = (
        "import hashlib, json; from django.conf import settings; "
        "[print('JOB', job[2][0], job[3].get('mode', '-'), "
        "hashlib.md5(json.JSONEncoder(sort_keys=True).encode(job).encode()).hexdigest()) for job in settings.CRONJOBS]"
    )
    listing = manage("shell", "-c", code, env=env).stdout.split("\n")
    jobs = [line.split()[1:] for line in listing if line.startswith("JOB ")]
    hashes = {(name, mode): digest for name, mode, digest in jobs}
    build_hash = hashes[("build_daily", "-")]
    promote_hash = hashes[("rotate_tokens", "promote")]

    failed = manage("crontab", "run", build_hash, env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert re.search(r"^build_daily: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC build_daily failed", failed.stderr, re.M)

    assert manage("rotate_tokens", "--mode", "init", env=env).returncode == 0
    clean = manage("crontab", "run", promote_hash, env=env)  # nothing announced: does nothing, says so
    assert clean.returncode == 0, clean.stdout + clean.stderr
