"""What the commands that record a run share (``build_mtd``, ``apply_retention``, ``collect_garbage``):
the run, under the build lock unless it is a dry run, and how a held lock or a storage failure ends it.

The leading underscore keeps Django from taking this module for a command.
"""

from contextlib import contextmanager

from django.core.management.base import CommandError

from deliveries import locks, storage
from deliveries.outcomes import Outcome
from deliveries.runs import recorded_run


@contextmanager
def recorded_command(command, arguments, *, dry_run, refused, stopped=None):
    """``runs.recorded_run`` for the block (the RunRecorder), holding the build lock unless ``dry_run``;
    a dry run whose block set no outcome is recorded as ``dry_run``.

    Another run holds the lock: a CommandError ``"<refused>: <holder>; rerun it once that one has
    finished"`` with exit 75 (EX_TEMPFAIL, "try again later": nothing is broken). A StorageError:
    a CommandError ``"<stopped> (a rerun completes it): <error>"``; without ``stopped`` it propagates
    (``build_mtd`` reports each month's storage failure as that month's result).
    """
    try:
        with recorded_run(command, arguments, lock=not dry_run) as recorder:
            yield recorder
            if dry_run and recorder.run.outcome == Outcome.RUNNING:
                recorder.finish(Outcome.DRY_RUN)
    except locks.BuildLocked as exc:
        raise CommandError(
            f"{refused}: {exc}; rerun it once that one has finished", returncode=locks.EXIT_LOCKED
        ) from None
    except storage.StorageError as exc:
        if stopped is None:
            raise
        raise CommandError(f"{stopped} (a rerun completes it): {exc}") from None
