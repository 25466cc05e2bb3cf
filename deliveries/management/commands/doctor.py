"""manage.py doctor: one line per check (OK, WARN, FAIL), a summary, a non-zero exit on any FAIL."""

from django.core.management.base import BaseCommand, CommandError

from deliveries import doctor


class Command(BaseCommand):
    help = (
        "Check what a real deployment needs: the system checks of check --deploy, database reachable and "
        "migrated, storage read/write/list/delete and a presigned download, the archive, tokens for every tier, "
        "the cron lines, and the clock against the storage server. Exits non-zero on any failure (warnings do not)."
    )
    # Django's system checks are one of the doctor's own checks: an error there must be reported
    # in line with the others, not abort the command before it says anything.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--skip",
            action="append",
            default=[],
            metavar="CHECK",
            help=f"Skip a group ({', '.join(doctor.GROUPS)}), one check (e.g. storage.presigned) or a system check id "
            "(e.g. instrumetriq.W104). Repeatable; also comma-separated. Use --skip cron where systemd timers run "
            "the jobs instead of crontab.",
        )
        parser.add_argument(
            "--no-fetch",
            action="store_true",
            help="Make no HTTP request outside the storage client: no presigned download, no clock check.",
        )

    def handle(self, *args, skip=(), no_fetch=False, **options):
        skipped = {name.strip() for value in skip for name in value.split(",") if name.strip()}
        unknown = sorted(name for name in skipped if not doctor.is_known(name))
        if unknown:
            raise CommandError(f"unknown check(s) for --skip: {', '.join(unknown)}; groups: {', '.join(doctor.GROUPS)}")
        results = doctor.run_doctor(fetch=not no_fetch, skip=skipped)
        for result in results:
            line = f"{result.status:<4} {result.name}: {result.message}"
            if result.ok:
                self.stdout.write(line)
            elif result.failed:
                self.stdout.write(self.style.ERROR(line))
            else:
                self.stdout.write(self.style.WARNING(line))
        if no_fetch:
            skipped.add("HTTP fetches (--no-fetch)")
        text = doctor.summary(results, skipped)
        if any(result.failed for result in results):
            raise CommandError(text)
        self.stdout.write(text)
