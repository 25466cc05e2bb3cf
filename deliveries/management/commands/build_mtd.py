"""manage.py build_mtd: (re)build the month-to-date bundles from the published daily files."""

from django.core.management.base import BaseCommand, CommandError

from deliveries import locks, mtd
from deliveries.models import BuildRun
from deliveries.runs import start_run
from deliveries.tiers import Tier

LABELS = {
    "built": "built",
    "unchanged": "unchanged",
    "no_days": "without days",
    "dry_run": "would build",
    "failed": "failed",
}


def summarise(results):
    counts = ", ".join(
        f"{n} {label}" for outcome, label in LABELS.items() if (n := sum(r.outcome == outcome for r in results))
    )
    return f"{len(results)} bundles: {counts}"


class Command(BaseCommand):
    help = "Build each tier's month-to-date bundle (default: the months the nightly run is due to build)."

    def add_arguments(self, parser):
        parser.add_argument("--tier", action="append", choices=Tier.values, dest="tiers", help="repeatable")
        parser.add_argument("--month", action="append", dest="months", metavar="YYYY-MM", help="repeatable")
        parser.add_argument("--dry-run", action="store_true", help="report what would be built; write nothing")
        parser.add_argument("--force", action="store_true", help="rebuild even when the bundle is up to date")

    def handle(self, *args, tiers=None, months=None, dry_run=False, force=False, **options):
        try:
            months = [mtd.parse_month(text) for text in months or []]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        arguments = {"tiers": tiers, "months": [f"{m:%Y-%m}" for m in months], "dry_run": dry_run, "force": force}
        recorder = start_run("build_mtd", arguments)
        try:
            if dry_run:
                results = mtd.build_months(tiers, months or None, dry_run=True, force=force)
            else:
                with locks.lease():
                    results = mtd.build_months(tiers, months or None, force=force)
        except locks.LeaseHeld as exc:
            recorder.finish(BuildRun.Outcome.LOCKED, error=str(exc))
            raise CommandError(f"not built: {exc}") from None
        except Exception as exc:
            recorder.finish(BuildRun.Outcome.FAILED, error=f"{type(exc).__name__}: {exc}")
            raise
        for result in results:
            recorder.run.results.append(
                {"month": result.month_label, "tier": result.tier, "outcome": result.outcome, "message": result.message}
            )
            self.stdout.write(f"{result.tier} {result.month_label}: {result.outcome}: {result.message}")
        failed = [r for r in results if r.outcome == "failed"]
        built = sum(r.outcome == "built" for r in results)
        summary = summarise(results)
        if failed:
            recorder.finish(BuildRun.Outcome.FAILED, error=summary)
            raise CommandError(summary)
        if dry_run:
            outcome = BuildRun.Outcome.DRY_RUN
        else:
            outcome = BuildRun.Outcome.SUCCESS if built else BuildRun.Outcome.NOTHING_TO_DO
        recorder.finish(outcome)
        self.stdout.write(summary if results else "nothing to build: no month has a published day before today")
