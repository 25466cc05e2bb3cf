"""The doctor's cron probe: the user's crontab holds the lines ``manage.py crontab add`` would
install (django-crontab's own, from ``CRONJOBS``), none stale, from this deployment's paths."""

import os
import shutil
import subprocess

from django.conf import settings

from .report import WARNING, fail, ok, scrub, short

CRON_HINT = "run `manage.py crontab add` as the user that runs the site"


class CrontabUnavailable(Exception):
    """The crontab could not be read (no ``crontab`` binary, permission, ...)."""


def read_user_crontab():
    """The current user's crontab text ('' when the user has none)."""
    executable = getattr(settings, "CRONTAB_EXECUTABLE", "/usr/bin/crontab")
    if not (os.path.exists(executable) or shutil.which(executable)):
        raise CrontabUnavailable(f"{executable} is not installed (apt install cron)")
    try:
        completed = subprocess.run(  # noqa: S603 (fixed argv)
            [executable, "-l"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CrontabUnavailable(f"crontab -l failed ({type(exc).__name__})") from None
    if completed.returncode != 0:
        if "no crontab" in completed.stderr.lower():
            return ""
        raise CrontabUnavailable(f"crontab -l failed: {completed.stderr.strip()[:200]}")
    return completed.stdout


def expected_cron_lines():
    """The lines ``manage.py crontab add`` would install, from django-crontab itself."""
    from django_crontab.crontab import Crontab

    crontab = Crontab(verbosity=0, readonly=True)
    crontab.crontab_lines = []
    crontab.add_jobs()
    return [line.rstrip("\n") for line in crontab.crontab_lines]


def _job_key(line):
    """(schedule, job hash) of a django-crontab line: what must match, whatever the python path."""
    fields = line.split()
    if "run" not in fields or len(fields) < 6:
        return None
    position = fields.index("run")
    if position == 0 or fields[position - 1] != "crontab" or position + 1 >= len(fields):
        return None
    return tuple(fields[:5]), fields[position + 1]


def _job_label(job):
    args = job[2] if len(job) > 2 and not isinstance(job[2], str) else []
    kwargs = job[3] if len(job) > 3 and isinstance(job[3], dict) else {}
    return " ".join([*map(str, args), *(f"--{k} {v}" for k, v in kwargs.items())])


def check_cron(read_crontab=None):
    read_crontab = read_crontab or read_user_crontab
    try:
        text = read_crontab()
    except CrontabUnavailable as exc:
        return [fail("cron.installed", f"cannot read the crontab: {scrub(exc)}; then {CRON_HINT}.")]
    try:
        expected = expected_cron_lines()
    except Exception as exc:
        return [fail("cron.installed", f"cannot work out the expected cron lines ({short(exc)}).")]
    installed = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    installed_keys = {_job_key(line): line for line in installed}
    missing, moved = [], []
    for job, line in zip(settings.CRONJOBS, expected, strict=True):
        if line.strip() in installed:
            continue
        key = _job_key(line)
        if key in installed_keys:
            moved.append(_job_label(job))
        else:
            missing.append(f"{_job_label(job)} at {job[0]!r}")
    comment = expected[0].rsplit("#", 1)[-1].strip() if expected else ""
    stale = [
        line
        for line in installed
        if comment
        and line.endswith(comment)
        and line not in {e.strip() for e in expected}
        and _job_key(line) not in {_job_key(e) for e in expected}
    ]
    results = []
    if missing:
        results.append(
            fail(
                "cron.installed",
                f"{len(missing)} of {len(expected)} cron jobs are not installed ({'; '.join(missing)}): {CRON_HINT}.",
            )
        )
    if stale:
        results.append(
            fail(
                "cron.installed",
                f"{len(stale)} django-crontab line(s) no longer match CRONJOBS (the schedule or a setting "
                f"changed): {CRON_HINT} (it replaces them).",
            )
        )
    if moved:
        results.append(
            fail(
                "cron.installed",
                f"installed with another python or manage.py path ({', '.join(moved)}): "
                f"{CRON_HINT} from this deployment's virtualenv.",
                WARNING,
            )
        )
    if not results:
        results.append(ok("cron.installed", f"all {len(expected)} cron jobs are installed (build_daily, rotations)."))
    return results
