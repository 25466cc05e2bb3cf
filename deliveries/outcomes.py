"""What happened, in one vocabulary: a run (``BuildRun.outcome``), each of its steps, each day
built (``build.DayResult``) and each month-to-date bundle (``mtd.MonthResult``) say it with
``Outcome``.

The values are what the database, the runs' JSON results and the commands' output hold, so they
never change; a new outcome is a new member. A run takes only ``RUN_OUTCOMES`` (its field's
choices), a step only ``SUCCESS``, ``FAILED`` or ``SKIPPED``.
"""

from django.db import models


class Outcome(models.TextChoices):
    # Runs.
    RUNNING = "running", "Running"
    SUCCESS = "success", "Success"
    NOTHING_TO_DO = "nothing_to_do", "Nothing to do"
    FAILED = "failed", "Failed"
    LOCKED = "locked", "Skipped: another run holds the lock"
    DRY_RUN = "dry_run", "Dry run"
    CRASHED = "crashed", "Crashed: its process died mid-run"
    # Steps, and days already done (or that cannot be done yet).
    SKIPPED = "skipped", "Skipped"
    # Days.
    PUBLISHED = "published", "Published"
    # Month-to-date bundles.
    BUILT = "built", "Built"
    UNCHANGED = "unchanged", "Unchanged"
    NO_DAYS = "no_days", "No days"
    CLOSED = "closed", "Closed"


RUN_OUTCOMES = (
    Outcome.RUNNING,
    Outcome.SUCCESS,
    Outcome.NOTHING_TO_DO,
    Outcome.FAILED,
    Outcome.LOCKED,
    Outcome.DRY_RUN,
    Outcome.CRASHED,
)
RUN_CHOICES = [(outcome.value, outcome.label) for outcome in RUN_OUTCOMES]
