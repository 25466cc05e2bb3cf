"""Child processes as cron and the operator start them: each its own Django, set up from a clean
environment, every step a ``manage.py`` command or a Python snippet."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from .databases import shared_database

BASE_DIR = Path(settings.BASE_DIR)
WAIT_SECONDS = 120


def child_env(**values):
    """A clean environment for a child process: nothing of the parent's Django or database settings."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="instrumetriq_site.settings", PYTHONUNBUFFERED="1", TZ="UTC")
    env.update({key: str(value) for key, value in values.items()})
    return env


def production_env(**values):
    """``child_env`` with what every production deployment sets: DEBUG off, a secret key and a token
    secret of its own (60 characters each)."""
    return child_env(DEBUG="0", SECRET_KEY=secrets.token_urlsafe(45), TOKEN_SECRET=secrets.token_urlsafe(45), **values)


def manage(env, *args, timeout=300):
    """Run ``manage.py`` in a child process; fail the test with its output if it fails."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, (
        f"manage.py {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}"
    )
    return completed.stdout


def python(env, code, timeout=120):
    """Run a snippet of Python in a child process with ``env``; its stdout."""
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def start_python(env, code, *args):
    """A snippet of Python started in a child process with ``env``; its output (stderr too) piped."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until(condition, what, timeout=WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextmanager
def reaped(*children):
    """Kill whichever of ``children`` still runs on the way out, whatever happened."""
    try:
        yield
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


@contextmanager
def sharing_one_database(tmp_path, **values):
    """The environment of child processes that share one migrated database (``shared_database``),
    the archive, var and local storage folders under ``tmp_path``; ``values`` add or override settings."""
    with shared_database(tmp_path) as url:
        env = child_env(
            **{
                "DATABASE_URL": url,
                "ARCHIVE_ROOT": tmp_path / "archive",
                "VAR_DIR": tmp_path / "var",
                "STORAGE_BACKEND": "local",
                "LOCAL_STORAGE_ROOT": tmp_path / "storage",
                **values,
            }
        )
        manage(env, "migrate", "--noinput")
        yield env


RECORDED = r"""
import json
import django

django.setup()
from deliveries.models import BuildRun, DailyFile

print(json.dumps({
    "runs": list(BuildRun.objects.order_by("pk").values("outcome", "error", "results", "steps", "holder")),
    "daily_files": sorted(DailyFile.objects.values_list("tier", "date")),
}, default=str))
"""


def recorded(env):
    """What the children's database holds: ``runs`` (each BuildRun's outcome, error, results, steps
    and holder, oldest first) and ``daily_files`` ([tier, ISO date] of every DailyFile, sorted)."""
    return json.loads(python(env, RECORDED))


# The child writes the day's files to scratch, says so, and waits there to be killed.
HANGING_BUILD = r"""
import sys, time
from pathlib import Path

import django

django.setup()
from django.core.management import execute_from_command_line

from deliveries import build

marker = Path(sys.argv[1])
real_write_day_files = build.write_day_files


def write_then_hang(*args, **kwargs):
    written = real_write_day_files(*args, **kwargs)
    marker.write_text(str(written.paths[next(iter(written.paths))]))
    time.sleep(600)


build.write_day_files = write_then_hang
execute_from_command_line(["manage.py", "build_daily", "--date", sys.argv[2]])
"""


@contextmanager
def build_holding_the_lock(env, day, marker):
    """A child ``manage.py build_daily --date DAY`` that holds the build lock and has written the
    day's Parquet files to scratch (``marker`` names one), hanging there until it is killed."""
    child = start_python(env, HANGING_BUILD, marker, day.isoformat())
    with reaped(child):
        wait_until(lambda: marker.exists() or child.poll() is not None, "the child to write its files")
        assert marker.exists(), child.communicate()[0]
        yield child


def sigkill(child):
    """Kill as the OOM killer or a power cut does: no cleanup, no ``finally``."""
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
