"""manage.py build_mtd: (re)build the month-to-date bundles from the published daily files."""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from deliveries import mtd
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier

from ._recorded import recorded_command

LABELS = {
    Outcome.BUILT: "built",
    Outcome.UNCHANGED: "unchanged",
    Outcome.NO_DAYS: "without days",
    Outcome.CLOSED: "closed",
    Outcome.DRY_RUN: "would build",
    Outcome.FAILED: "failed",
}


def summarise(results):
    counts = ", ".join(
        f"{n} {label}" for outcome, label in LABELS.items() if (n := sum(r.outcome == outcome for r in results))
    )
    return f"{len(results)} bundle{pluralize(len(results))}: {counts}"


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
        with recorded_command("build_mtd", arguments, dry_run=dry_run, refused="not built") as recorder:
            results = mtd.build_months(tiers, months or None, dry_run=dry_run, force=force)
            for result in results:
                recorder.run.results.append(
                    {
                        "month": result.month_label,
                        "tier": result.tier,
                        "outcome": result.outcome,
                        "message": result.message,
                    }
                )
                self.stdout.write(f"{result.tier} {result.month_label}: {result.outcome}: {result.message}")
            summary = summarise(results)
            if any(r.outcome == Outcome.FAILED for r in results):
                recorder.finish(Outcome.FAILED, error=summary)
                raise CommandError(summary)
            if not dry_run and not any(r.outcome == Outcome.BUILT for r in results):
                recorder.finish(Outcome.NOTHING_TO_DO)
        self.stdout.write(summary if results else "nothing to build: no month has a published day before today")
