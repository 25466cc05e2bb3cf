"""manage.py collect_garbage: delete from storage the versions delisted SIGNED_URL_EXPIRY ago, and orphans."""

from django.core.management.base import BaseCommand

from deliveries import collect
from deliveries.outcomes import Outcome

from ._recorded import recorded_command


class Command(BaseCommand):
    help = (
        "Delete the objects of versions delisted at least SIGNED_URL_EXPIRY ago, and orphans (objects no row "
        "knows) last written that long ago. Never anything listed. The nightly build_daily does this too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")

    def handle(self, *args, dry_run=False, **options):
        with recorded_command(
            "collect_garbage",
            {"dry_run": dry_run},
            dry_run=dry_run,
            refused="nothing collected",
            stopped="collection stopped",
        ) as recorder:
            report = collect.collect_garbage(dry_run=dry_run)
            if options["verbosity"] > 1:
                for version in report.versions:
                    self.stdout.write(f"version {version}: {version.key}, {version.manifest_key}")
                for key in report.orphans:
                    self.stdout.write(f"orphan {key}")
            recorder.run.results.append(
                {"outcome": Outcome.DRY_RUN if dry_run else Outcome.SUCCESS, "message": report.summary()}
            )
            if not dry_run and not report.objects:
                recorder.finish(Outcome.NOTHING_TO_DO)
        self.stdout.write(report.summary())
