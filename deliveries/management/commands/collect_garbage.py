"""manage.py collect_garbage: delete from storage the versions delisted SIGNED_URL_EXPIRY ago, and orphans."""

from django.core.management.base import BaseCommand, CommandError

from deliveries import collect, locks, storage
from deliveries.outcomes import Outcome
from deliveries.runs import recorded_run


class Command(BaseCommand):
    help = (
        "Delete the objects of versions delisted at least SIGNED_URL_EXPIRY ago, and orphans (objects no row "
        "knows) last written that long ago. Never anything listed. The nightly build_daily does this too."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="report what would be deleted; delete nothing")

    def handle(self, *args, dry_run=False, **options):
        try:
            with recorded_run("collect_garbage", {"dry_run": dry_run}, lock=not dry_run) as recorder:
                report = collect.collect_garbage(dry_run=dry_run)
                if options["verbosity"] > 1:
                    for version in report.versions:
                        self.stdout.write(f"version {version}: {version.key}, {version.manifest_key}")
                    for key in report.orphans:
                        self.stdout.write(f"orphan {key}")
                recorder.run.results.append(
                    {"outcome": Outcome.DRY_RUN if dry_run else Outcome.SUCCESS, "message": report.summary()}
                )
                if dry_run:
                    recorder.finish(Outcome.DRY_RUN)
                elif not report.objects:
                    recorder.finish(Outcome.NOTHING_TO_DO)
        except locks.BuildLocked as exc:
            raise CommandError(
                f"nothing collected: {exc}; rerun it once that one has finished", returncode=locks.EXIT_LOCKED
            ) from None
        except storage.StorageError as exc:
            raise CommandError(f"collection stopped (a rerun completes it): {exc}") from None
        self.stdout.write(report.summary())
