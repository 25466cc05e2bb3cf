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

from deliveries import locks, sample
from tests.support.processes import WAIT_SECONDS, reaped, recorded, sharing_one_database, start_python, wait_until

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


def test_two_processes_one_build(tmp_path):
    day = sample.yesterday_utc()
    sample.write_day(tmp_path / "archive", day)
    work = tmp_path / "work"
    work.mkdir()
    with sharing_one_database(tmp_path) as env:
        children = [start_python(env, CHILD, work, day.isoformat()) for _ in range(2)]
        with reaped(*children):
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
        loser = next(child for child in children if child.pid != winner_pid)
        winner = next(child for child in children if child.pid == winner_pid)
        assert winner.returncode == 0, outputs[winner_pid]
        assert loser.returncode == locks.EXIT_LOCKED, outputs[loser.pid]  # "try again later", not success
        loser_pid = loser.pid
        assert "another build is running" in outputs[loser_pid]
        assert f":{winner_pid}:" in outputs[loser_pid]  # the holder id names the winning process
        assert "build_daily success" in outputs[winner_pid]

        report = recorded(env)

    outcomes = sorted(run["outcome"] for run in report["runs"])
    assert outcomes == ["locked", "success"]
    locked = next(run for run in report["runs"] if run["outcome"] == "locked")
    assert locked["results"] == [] and locked["steps"] == []  # it did nothing at all
    assert "the build lock is held by" in locked["error"] and locked["holder"] == ""
    winner_run = next(run for run in report["runs"] if run["outcome"] == "success")
    assert f":{winner_pid}:" in winner_run["holder"]
    assert report["daily_files"] == [[tier, day.isoformat()] for tier in ("tier1", "tier2", "tier3")]
