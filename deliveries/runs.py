"""Recording runs: every build command leaves a BuildRun with its steps, day results and error."""

import time
from contextlib import contextmanager, nullcontext

from django.utils import timezone

from .models import BuildRun


class RunRecorder:
    def __init__(self, run):
        self.run = run

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
            self.record_step(name, "failed", time.monotonic() - started, entry["detail"] or str(exc))
            raise
        self.record_step(name, entry.get("outcome", "success"), time.monotonic() - started, entry["detail"])

    def skip_step(self, name, reason):
        self.record_step(name, "skipped", 0.0, reason)

    def finish(self, outcome, error=""):
        self.run.outcome = outcome
        self.run.error = error
        self.run.finished_at = timezone.now()
        self.save()


def start_run(command, arguments):
    return RunRecorder(BuildRun.objects.create(command=command, arguments=arguments))


@contextmanager
def recorded_run(command, arguments, *, lease=False):
    """A BuildRun for the block, under the build lease when ``lease`` is true.

    A held lease records the run as locked, an escaping exception as failed with its text; both
    still propagate, for the command to turn into its message. An outcome the block set itself
    (``recorder.finish``) is kept; a block that set none succeeded.
    """
    from . import locks

    recorder = start_run(command, arguments)
    try:
        with locks.lease() if lease else nullcontext():
            yield recorder
    except locks.LeaseHeld as exc:
        recorder.finish(BuildRun.Outcome.LOCKED, error=str(exc))
        raise
    except BaseException as exc:
        if recorder.run.outcome == BuildRun.Outcome.RUNNING:
            recorder.finish(BuildRun.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    if recorder.run.outcome == BuildRun.Outcome.RUNNING:
        recorder.finish(BuildRun.Outcome.SUCCESS)
