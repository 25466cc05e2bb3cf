"""Recording runs: every build command leaves a BuildRun with its steps, day results and error.

A run that builds holds the build lock (``locks``) for its whole life, and its row names the
holder. Taking the lock is also when dead runs are found: a row still ``running`` under a holder
while we hold the lock belongs to a process that can no longer hold it, i.e. one that died
(SIGKILL, out of memory, a reboot) before it could record an outcome. It is marked ``crashed``,
and the scratch files such a run leaves are removed, before this run starts.
"""

import logging
import time
from contextlib import contextmanager

from django.utils import timezone

from . import locks, storage
from .models import BuildRun
from .outcomes import Outcome

log = logging.getLogger("deliveries.runs")


class RunRecorder:
    def __init__(self, run, lock=None):
        self.run = run
        self.lock = lock  # locks.HeldLock while the run holds the build lock

    def save(self):
        self.run.save(update_fields=["steps", "results", "outcome", "finished_at", "error"])

    def add_result(self, **result):
        """One day (or month, or tier) result: date, tier, outcome, message."""
        self.run.results.append(result)
        self.save()

    def record_step(self, name, outcome, seconds=0.0, detail=""):
        self.run.steps.append({"name": name, "outcome": outcome, "seconds": round(seconds, 3), "detail": detail})
        self.save()

    @contextmanager
    def step(self, name):
        """Time a step; an exception marks it failed (and propagates)."""
        started = time.monotonic()
        entry = {"detail": ""}
        try:
            yield entry
        except Exception as exc:
            self.record_step(name, Outcome.FAILED, time.monotonic() - started, entry["detail"] or str(exc))
            raise
        self.record_step(name, entry.get("outcome", Outcome.SUCCESS), time.monotonic() - started, entry["detail"])

    def skip_step(self, name, reason):
        self.record_step(name, Outcome.SKIPPED, 0.0, reason)

    def finish(self, outcome, error=""):
        """Record the outcome, then let go of the build lock: the outcome is in the database before
        the next holder can look, so it never takes this run for a dead one."""
        self.run.outcome = outcome
        self.run.error = error
        self.run.finished_at = timezone.now()
        self.save()
        self.release()

    def release(self):
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def start_run(command, arguments, *, lock=None):
    run = BuildRun.objects.create(command=command, arguments=arguments, holder=lock.holder if lock else "")
    return RunRecorder(run, lock)


def mark_crashed_runs(found_by=""):
    """Mark ``crashed`` every run still ``running`` under a holder of the build lock.

    Call it only while holding the build lock: then no other live process holds it, so such a run's
    process is gone (the lock dies with its holder). Runs that never held the lock (dry runs of
    ``build_mtd`` and ``apply_retention``) are not judged. Returns the runs' ids.
    """
    dead = BuildRun.objects.filter(outcome=Outcome.RUNNING).exclude(holder="")
    ids = list(dead.values_list("pk", flat=True))
    if not ids:
        return []
    noticed = f"{timezone.now():%Y-%m-%d %H:%M:%S} UTC" + (f" by {found_by}" if found_by else "")
    error = (
        "crashed: the process ended without recording an outcome (killed, out of memory, or its machine "
        f"stopped); noticed at {noticed} when the next run took the build lock. Its steps and results show how "
        "far it got; what it had not published stays as it was, and the next run builds it."
    )
    # Compare-and-set: a run that finished meanwhile keeps its outcome.
    BuildRun.objects.filter(pk__in=ids, outcome=Outcome.RUNNING).update(outcome=Outcome.CRASHED, error=error)
    log.warning("marked %d dead run(s) crashed: %s", len(ids), ", ".join(f"#{pk}" for pk in ids))
    return ids


def clear_scratch_safely():
    """Remove what killed runs left in the scratch folders; a failure here never stops the run."""
    try:
        return storage.clear_scratch()
    except (OSError, storage.StorageError) as exc:
        log.warning("could not clear the scratch folder: %s", exc)
        return []


def record_locked(command, arguments, held):
    """The BuildRun of an attempt refused by the lock: it did nothing at all."""
    run = BuildRun.objects.create(
        command=command,
        arguments=arguments,
        outcome=Outcome.LOCKED,
        finished_at=timezone.now(),
        error=str(held),
    )
    held.run = run
    return run


def start_locked_run(command, arguments):
    """Take the build lock and start a run under it: a RunRecorder whose ``lock`` is the lock,
    released by ``finish`` (or by the process's end, whatever ends it).

    Refused (another live run holds the lock): a ``locked`` run is recorded and locks.BuildLocked
    raised, with that run as its ``run``. Otherwise dead runs are marked crashed and their scratch
    cleared before this run's row is written.
    """
    try:
        lock = locks.acquire(locks.BUILD_LOCK)
    except locks.BuildLocked as held:
        record_locked(command, arguments, held)
        raise
    try:
        mark_crashed_runs(found_by=lock.holder)
        clear_scratch_safely()
        return start_run(command, arguments, lock=lock)
    except BaseException:
        lock.release()
        raise


@contextmanager
def locked_run(command, arguments):
    """``start_locked_run`` for a block: an escaping exception marks the run failed (and
    propagates); an outcome the block set itself (``recorder.finish``) is kept; a block that set
    none succeeded. The lock is released in every case."""
    recorder = start_locked_run(command, arguments)
    try:
        with _recording(recorder):
            yield recorder
    finally:
        recorder.release()


@contextmanager
def recorded_run(command, arguments, *, lock=False):
    """A BuildRun for the block, under the build lock when ``lock`` is true (see ``locked_run``)."""
    if lock:
        with locked_run(command, arguments) as recorder:
            yield recorder
        return
    with _recording(start_run(command, arguments)) as recorder:
        yield recorder


@contextmanager
def _recording(recorder):
    """An escaping exception records the run failed (and propagates); no outcome set is success."""
    try:
        yield recorder
    except BaseException as exc:
        if recorder.run.outcome == Outcome.RUNNING:
            recorder.finish(Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    if recorder.run.outcome == Outcome.RUNNING:
        recorder.finish(Outcome.SUCCESS)
