"""Two real OS processes run ``build_daily`` at the same moment against one database: one builds, the
other records a ``locked`` run, builds nothing and exits 75.

This is the guarantee that lets several hosts share one PostgreSQL (docs/deployment.md): the build
lock is held by the database server (a session-level advisory lock), on SQLite by the kernel (a
file lock beside the database). The processes are released together from a barrier and race for
the lock; the winner then holds it (it waits inside the build for the test's signal) until the
loser has finished, so the overlap is certain rather than left to timing. On the PostgreSQL leg
the children share a scratch PostgreSQL database, on the SQLite leg a SQLite file: pytest-django's
own test databases cannot be shared with other processes.
"""

import json
import os
import secrets
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from deliveries import locks, sample

BASE_DIR = Path(settings.BASE_DIR)
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
WAIT_SECONDS = 120

# Each child: set Django up, say it is ready, wait at the barrier, then run the real command. Its
# build_day marks that it holds the lock and waits for the release file before building.
CHILD = r"""
import os, sys, time
from pathlib import Path

import django

django.setup()
from django.core.management import execute_from_command_line

from deliveries import build

work, day = Path(sys.argv[1]), sys.argv[2]


def wait_for(path):
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {path.name}")
        time.sleep(0.02)


real_build_day = build.build_day


def build_day_holding_the_lock(*args, **kwargs):
    (work / f"building-{os.getpid()}").touch()
    wait_for(work / "release")
    return real_build_day(*args, **kwargs)


build.build_day = build_day_holding_the_lock
(work / f"ready-{os.getpid()}").touch()
wait_for(work / "go")
execute_from_command_line(["manage.py", "build_daily", "--date", day])  # exits as manage.py does
"""

REPORT = r"""
import json
import django

django.setup()
from deliveries.models import BuildRun, DailyFile

print(json.dumps({
    "runs": list(BuildRun.objects.order_by("pk").values("outcome", "error", "results", "steps", "holder")),
    "daily_files": list(DailyFile.objects.values_list("tier", "date")),
}, default=str))
"""


def postgres_params():
    """Connection parameters of the PostgreSQL server to make scratch databases on: the test
    database's server on the PostgreSQL leg, else TEST_POSTGRES_URL (default postgres@127.0.0.1)."""
    if connection.vendor == "postgresql":
        db = settings.DATABASES["default"]
        return {
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
            "user": db["USER"],
            "password": db["PASSWORD"],
        }
    import dj_database_url

    db = dj_database_url.parse(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}


@contextmanager
def scratch_postgres(prefix):
    """A new, empty PostgreSQL database for child processes; dropped afterwards whatever happens."""
    import psycopg
    from psycopg import sql

    params = postgres_params()
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **params)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"this test needs PostgreSQL at {params['host']}:{params['port']} (CI starts it; elsewhere set "
            f"TEST_POSTGRES_URL): {exc}"
        )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    credentials = quote(params["user"] or "", safe="")
    if params["password"]:
        credentials += ":" + quote(params["password"], safe="")
    try:
        yield f"postgres://{credentials}@{params['host']}:{params['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **params) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def child_env(**values):
    """A clean environment for a child process: nothing of the parent's Django or database settings."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR") if key in os.environ}
    env.update(DJANGO_SETTINGS_MODULE="instrumetriq_site.settings", PYTHONUNBUFFERED="1", TZ="UTC")
    env.update({key: str(value) for key, value in values.items()})
    return env


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


@contextmanager
def shared_database(tmp_path):
    """The database URL both children use: scratch PostgreSQL on that leg, a SQLite file on the other."""
    if connection.vendor == "postgresql":
        with scratch_postgres("instrumetriq_lock") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'lock.sqlite3'}"


def wait_until(condition, what, timeout=WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_two_processes_one_build(tmp_path):
    day = sample.yesterday_utc()
    archive = tmp_path / "archive"
    sample.write_day(archive, day)
    work = tmp_path / "work"
    work.mkdir()
    with shared_database(tmp_path) as url:
        env = child_env(
            DATABASE_URL=url,
            ARCHIVE_ROOT=archive,
            VAR_DIR=tmp_path / "var",
            STORAGE_BACKEND="local",
            LOCAL_STORAGE_ROOT=tmp_path / "storage",
        )
        manage(env, "migrate", "--noinput")
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(work), day.isoformat()],
                cwd=BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            wait_until(lambda: len(list(work.glob("ready-*"))) == 2, "both processes to be ready")
            (work / "go").touch()  # the barrier: both race for the lock from here
            # The winner is inside the build, holding the lock; the loser must finish without building.
            # (Two in the build at once is the failure this test exists for: stop waiting then too.)
            wait_until(
                lambda: (
                    len(list(work.glob("building-*"))) == 2
                    or (list(work.glob("building-*")) and any(c.poll() is not None for c in children))
                ),
                "one process to hold the lock and the other to give up",
            )
            building = list(work.glob("building-*"))
            assert len(building) == 1, f"both processes entered the build: {building}"
            winner_pid = int(building[0].name.split("-", 1)[1])
            (work / "release").touch()
            outputs = {child.pid: child.communicate(timeout=WAIT_SECONDS)[0] for child in children}
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        loser = next(child for child in children if child.pid != winner_pid)
        winner = next(child for child in children if child.pid == winner_pid)
        assert winner.returncode == 0, outputs[winner_pid]
        assert loser.returncode == locks.EXIT_LOCKED, outputs[loser.pid]  # "try again later", not success
        loser_pid = loser.pid
        assert "another build is running" in outputs[loser_pid]
        assert f":{winner_pid}:" in outputs[loser_pid]  # the holder id names the winning process
        assert "build_daily success" in outputs[winner_pid]

        report = json.loads(python(env, REPORT))

    outcomes = sorted(run["outcome"] for run in report["runs"])
    assert outcomes == ["locked", "success"]
    locked = next(run for run in report["runs"] if run["outcome"] == "locked")
    assert locked["results"] == [] and locked["steps"] == []  # it did nothing at all
    assert "the build lock is held by" in locked["error"] and locked["holder"] == ""
    winner_run = next(run for run in report["runs"] if run["outcome"] == "success")
    assert f":{winner_pid}:" in winner_run["holder"]
    assert sorted(report["daily_files"]) == [[tier, day.isoformat()] for tier in ("tier1", "tier2", "tier3")]
