"""Both cores for backfills: days written by worker processes, published by the one holding the lock.

A backfill (``build_daily --from/--to``) spends nearly all of its time writing Parquet files from
the archive, which needs no database and no lock. So the process that runs the pipeline keeps what
does (the build lock, the BuildRun, each day's checks, upload and database rows) and hands the
writing to ``jobs`` worker processes, each day a task:

- workers are *spawned* (a fresh interpreter, nothing inherited): no database connection, lock
  session or file descriptor of the parent is shared across a fork. They set Django up for the
  imports, never touch the database, storage or the settings: a day's ``build.DayPlan`` carries
  all they need, and they write into a scratch folder the parent made;
- the parent publishes and records each day as soon as its files are written, in the order days
  finish, and keeps at most ``jobs`` days in the workers' hands (so scratch holds at most that many
  days' files);
- a worker that dies (killed, out of memory) takes its pool down: the days it was writing fail
  (nothing of them was published; a rerun builds them) and the remaining days go on in a new pool.

``default_jobs`` is the number of CPUs, capped so that the workers and the parent stay within
``MEMORY_BUDGET_MB`` (one real-sized day peaks at about ``WORKER_PEAK_MB`` in a worker).
"""

import os
import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from pathlib import Path

from .outcomes import Outcome

MEMORY_BUDGET_MB = 600
WORKER_PEAK_MB = 230  # a worker's own memory (PSS) for a real-sized day: 219-237 MB measured by bench/backfill.py
PARENT_MB = 130  # the parent while it publishes: Django, pyarrow, a database connection (115 MB measured)


def cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (not Linux)
        return os.cpu_count() or 1


def default_jobs():
    """The CPUs this process may use, capped by the memory budget; at least 1."""
    by_memory = (MEMORY_BUDGET_MB - PARENT_MB) // WORKER_PEAK_MB
    return max(1, min(cpu_count(), by_memory))


def _start_worker():
    """Each worker sets Django up once (``build`` imports the models); it never opens a connection.

    Arrow gets one thread: the workers are the parallelism, and a thread pool per worker would only
    make them compete for the same cores (and hold more memory)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instrumetriq_site.settings")
    import django
    import pyarrow

    django.setup()
    pyarrow.set_cpu_count(1)


def _write(plan, out_dir):
    """In a worker: write the day's files into ``out_dir``; the WrittenDay goes back to the parent."""
    return plan.write(Path(out_dir))


def build_days(days, *, jobs, tiers=None, force=False, dry_run=False, now=None, on_start=None):
    """Yield each day's ``build.DayResult`` as it finishes (not in date order), with at most ``jobs``
    days being written at once by worker processes. ``on_start(day)`` is called as a day is handed
    to a worker. Days not to be written (skipped, failed checks, a dry run) are answered at once."""
    waiting = sorted(days)
    while waiting:  # a new pool after one broke
        yield from _pool_run(waiting, jobs, dict(tiers=tiers, force=force, dry_run=dry_run, now=now), on_start)


def _pool_run(waiting, jobs, options, on_start):
    """Run days from ``waiting`` (taken as they are handed out) until none is left or the pool
    breaks; then every day it was writing has failed."""
    from django.utils import timezone

    from . import build, storage

    context = get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(waiting)), mp_context=context, initializer=_start_worker
    ) as pool:
        running = {}  # future -> (plan, scratch folder, started)
        broken = False
        try:
            while (waiting and not broken) or running:
                while waiting and not broken and len(running) < jobs:
                    day = waiting.pop(0)
                    try:
                        plan = build.plan_day(day, **options)
                    except Exception as exc:  # an unexpected error stays with its day
                        yield build.unexpected_failure(day, exc)
                        continue
                    if isinstance(plan, build.DayResult):
                        yield plan
                        continue
                    if on_start:
                        on_start(day)
                    folder = tempfile.mkdtemp(prefix="instrumetriq-build-", dir=storage.scratch_dir())
                    try:
                        future = pool.submit(_write, plan, folder)
                    except BrokenProcessPool:  # a worker died since we last looked: next pool
                        shutil.rmtree(folder, ignore_errors=True)
                        waiting.insert(0, day)
                        broken = True
                        break
                    running[future] = (plan, folder, timezone.now())
                if not running:
                    continue
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: running[f][0].day):
                    plan, folder, started = running.pop(future)
                    try:
                        result, pool_broke = _result(build, plan, future, started)
                    finally:
                        shutil.rmtree(folder, ignore_errors=True)
                    broken = broken or pool_broke
                    yield result
        finally:  # also when the consumer stops early (the lock was lost): no worker left behind
            pool.shutdown(wait=True, cancel_futures=True)
            for _, folder, _ in running.values():
                shutil.rmtree(folder, ignore_errors=True)


def _result(build, plan, future, started):
    """(the DayResult of a day a worker wrote or failed to write, whether its pool broke)."""
    try:
        written = future.result()
    except BrokenProcessPool:
        message = (
            "the process writing it stopped (killed, or out of memory) and took the other days being written "
            "with it; nothing of it was published, a rerun builds it"
        )
        failed = build.DayResult(
            plan.day, Outcome.FAILED, message, hours_found=plan.day_files.hours_found, cause=build.Cause.SYSTEM
        )
        return failed, True
    except OSError as exc:
        return plan.write_failed(exc), False
    except Exception as exc:
        return build.unexpected_failure(plan.day, exc), False
    return build.publish_day(plan, written, started), False
