"""The nightly job: ``manage.py build_daily`` (cron) or a rebuild/backfill of given days.

Every line it prints starts with a UTC timestamp, as ``rotate_tokens``' do: cron appends them to
``build_daily.log``, where a line without a time says nothing about which night it belongs to.
"""

import io
from datetime import timedelta

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from deliveries import locks, parallel, pipeline
from deliveries.build import parse_day
from deliveries.tiers import Tier
from instrumetriq_site.logging import utc_stamp
from instrumetriq_site.utc import yesterday

MAX_RANGE_DAYS = 400


class Command(BaseCommand):
    help = (
        "Build and publish the three tiers' daily files (default: yesterday UTC plus any missed day), "
        "then the month-to-date bundles, retention and the download index."
    )

    def add_arguments(self, parser):
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--date", help="one UTC day, YYYY-MM-DD")
        when.add_argument("--from", dest="date_from", help="first day of a backfill, YYYY-MM-DD (with --to)")
        parser.add_argument("--to", dest="date_to", help="last day of a backfill, YYYY-MM-DD (with --from)")
        parser.add_argument("--tier", action="append", choices=Tier.values, help="only this tier (repeatable)")
        parser.add_argument("--force", action="store_true", help="rebuild days already published from the same input")
        parser.add_argument("--dry-run", action="store_true", help="report what would be done; write nothing")
        parser.add_argument(
            "--force-index",
            action="store_true",
            help="only rewrite the download index (index/tierN.json) of the selected tiers from what is "
            "published; build nothing (the emergency procedure's 'regenerate index')",
        )
        parser.add_argument(
            "--jobs",
            type=int,
            help="days written at once, each by a worker process (default: the CPUs, capped so that memory "
            f"stays under {parallel.MEMORY_BUDGET_MB} MB; now {parallel.default_jobs()}); 1 writes them one by one",
        )

    def say(self, message, style=None):
        line = f"{utc_stamp()} {message}"
        self.stdout.write(style(line) if style else line)

    def handle(self, *args, **options):
        if options["force_index"]:
            return self.force_index(options)
        days = self.requested_days(options)
        jobs = options["jobs"] if options["jobs"] is not None else parallel.default_jobs()
        if jobs < 1:
            raise CommandError("--jobs must be at least 1")
        verbosity = options["verbosity"]
        result = pipeline.run_nightly(
            days=days,
            tiers=options["tier"],
            force=options["force"],
            dry_run=options["dry_run"],
            jobs=jobs,
            progress=self.say if verbosity >= 1 else None,
        )
        summary = f"build_daily {result.summary()} (run #{result.run.pk})"
        if result.locked_by:
            # Not a success (nothing was built) and not a failure (nothing is broken): exit 75,
            # EX_TEMPFAIL, "try again later". See docs/operations.md, "Another build is running".
            raise CommandError(f"{utc_stamp()} {summary}", returncode=locks.EXIT_LOCKED)
        if not result.ok:
            raise CommandError(f"{utc_stamp()} {summary}")
        self.say(summary, self.style.SUCCESS)

    def force_index(self, options):
        """``publish_index`` under the build lock, so it cannot interleave with a build's own index step."""
        given = [f"--{name.replace('_', '-')}" for name in ("date", "date_from", "date_to") if options[name]]
        given += [f"--{name.replace('_', '-')}" for name in ("force", "dry_run") if options[name]]
        if given:
            raise CommandError(f"--force-index rewrites the index only: drop {', '.join(given)}")
        out = io.StringIO()
        try:
            with locks.build_lock():
                call_command("publish_index", *[f"--tier={tier}" for tier in options["tier"] or []], stdout=out)
        except locks.BuildLocked as held:
            raise CommandError(f"{utc_stamp()} index not rewritten: {held}", returncode=locks.EXIT_LOCKED) from None
        except CommandError as exc:
            raise CommandError(f"{utc_stamp()} {exc}") from None
        for line in out.getvalue().splitlines():
            self.say(line)

    def requested_days(self, options):
        """None for the nightly default; else the explicit days, after refusing impossible ones."""
        try:
            if options["date"]:
                days = [parse_day(options["date"])]
            elif options["date_from"] or options["date_to"]:
                if not (options["date_from"] and options["date_to"]):
                    raise CommandError("--from and --to go together")
                first, last = parse_day(options["date_from"]), parse_day(options["date_to"])
                if first > last:
                    raise CommandError(f"--from {first} is after --to {last}")
                if (last - first).days >= MAX_RANGE_DAYS:
                    raise CommandError(f"a backfill is limited to {MAX_RANGE_DAYS} days; split it")
                days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
            else:
                return None
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        latest = yesterday(timezone.now())
        too_late = [d for d in days if d > latest]
        if too_late:
            raise CommandError(
                f"{too_late[0]} is today or later (UTC): a day is built once it is over and the archive has it"
            )
        return days
