"""One vocabulary for what happened (deliveries.outcomes): its values are stored in the database
and the runs' JSON, and shown to the operator, so they must never change."""

from deliveries.models import BuildRun
from deliveries.outcomes import RUN_OUTCOMES, Outcome

STORED = {
    "running": "Running",
    "success": "Success",
    "nothing_to_do": "Nothing to do",
    "failed": "Failed",
    "locked": "Skipped: another run holds the lock",
    "dry_run": "Dry run",
    "crashed": "Crashed: its process died mid-run",
    "skipped": "Skipped",
    "published": "Published",
    "built": "Built",
    "unchanged": "Unchanged",
    "no_days": "No days",
    "closed": "Closed",
}


def test_every_outcome_keeps_the_value_and_label_already_stored_and_shown():
    assert {outcome.value: outcome.label for outcome in Outcome} == STORED


def test_a_run_takes_only_the_run_outcomes_with_the_choices_its_migration_has():
    field = BuildRun._meta.get_field("outcome")
    assert field.choices == [(outcome.value, outcome.label) for outcome in RUN_OUTCOMES]
    assert [value for value, _ in field.choices] == [
        "running",
        "success",
        "nothing_to_do",
        "failed",
        "locked",
        "dry_run",
        "crashed",
    ]
    assert field.default == Outcome.RUNNING == "running"
