"""A build killed with SIGKILL never blocks the next one: real processes, on both databases.

A child process runs ``manage.py build_daily`` and is killed (SIGKILL: no cleanup, no ``finally``)
while it holds the build lock, after it has written its Parquet files to the scratch folder. The
very next ``manage.py build_daily`` must build at once (the lock died with its holder: the
PostgreSQL server ended the session, the kernel dropped the file lock), record the killed run as
``crashed``, and leave no scratch behind, on local storage and on S3 (moto over HTTP).
"""

import signal
import subprocess
import sys

import pytest

from deliveries import sample
from tests.support.processes import (
    BASE_DIR,
    build_holding_the_lock,
    manage,
    recorded,
    sharing_one_database,
    sigkill,
)
from tests.support.servers import create_bucket


def storage_env(kind, tmp_path, moto_server):
    if kind == "local":
        return {"STORAGE_BACKEND": "local"}
    _, bucket = create_bucket(moto_server, "crash")
    return {
        "STORAGE_BACKEND": "s3",
        "R2_ENDPOINT": moto_server,
        "R2_BUCKET": bucket,
        "R2_ACCESS_KEY_ID": "testing",
        "R2_SECRET_ACCESS_KEY": "testing",
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


def scratch_of(kind, tmp_path):
    return tmp_path / "storage" / ".incoming-work" if kind == "local" else tmp_path / "scratch"


@pytest.mark.parametrize("kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_rerun_right_after_a_sigkill_builds_and_marks_the_killed_run_crashed(kind, tmp_path, moto_server):
    day = sample.yesterday_utc()
    sample.write_day(tmp_path / "archive", day, entries_per_hour=2, samples_per_entry=5)
    with sharing_one_database(
        tmp_path, BUILD_SCRATCH_DIR=tmp_path / "scratch", **storage_env(kind, tmp_path, moto_server)
    ) as env:
        with build_holding_the_lock(env, day, marker=tmp_path / "written") as child:
            sigkill(child)
        assert child.returncode == -signal.SIGKILL
        scratch = scratch_of(kind, tmp_path)
        left = sorted(p.name for p in scratch.iterdir())
        assert left and all(name.startswith("instrumetriq-build-") for name in left)  # what the kill left

        out = manage(env, "build_daily", "--date", day.isoformat())  # at once: no waiting out a lease

        assert "build_daily success" in out
        report = recorded(env)
        if env["DATABASE_URL"].startswith("sqlite"):  # the kernel's lock, on a file beside the database file
            assert (tmp_path / "lock.sqlite3.build-lock").is_file()
    crashed, rerun = report["runs"]
    assert crashed["outcome"] == "crashed"
    assert f":{child.pid}:" in crashed["holder"]
    assert "the process ended without recording an outcome" in crashed["error"]
    assert rerun["holder"] in crashed["error"]
    assert rerun["outcome"] == "success"
    assert [tier for tier, _ in report["daily_files"]] == ["tier1", "tier2", "tier3"]
    assert list(scratch.iterdir()) == []  # the killed run's work folder is gone, and the rerun's own


def test_a_run_refused_by_a_live_holder_then_proceeds_once_that_holder_is_killed(tmp_path):
    """The refusal is honest (exit 75, a ``locked`` run) while the holder lives; the moment it is
    killed, the same command builds."""
    day = sample.yesterday_utc()
    sample.write_day(tmp_path / "archive", day, entries_per_hour=2, samples_per_entry=5)
    with sharing_one_database(tmp_path) as env:
        with build_holding_the_lock(env, day, marker=tmp_path / "written") as holder:
            refused = subprocess.run(
                [sys.executable, "manage.py", "build_daily", "--date", day.isoformat()],
                cwd=BASE_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert refused.returncode == 75, refused.stdout + refused.stderr
            assert "the build lock is held by" in refused.stderr and f":{holder.pid}:" in refused.stderr
            sigkill(holder)
        assert "build_daily success" in manage(env, "build_daily", "--date", day.isoformat())
        report = recorded(env)
    assert [run["outcome"] for run in report["runs"]] == ["crashed", "locked", "success"]
    assert [tier for tier, _ in report["daily_files"]] == ["tier1", "tier2", "tier3"]
