"""manage.py healthcheck: one line per problem and a non-zero exit, or ``ok``."""

from django.core.management.base import BaseCommand, CommandError

from deliveries import health
from deliveries.tiers import Tier


class Command(BaseCommand):
    help = "Check freshness, the last build, MTD completeness, storage and every published object."

    def add_arguments(self, parser):
        parser.add_argument("--tier", action="append", choices=Tier.values, dest="tiers", help="repeatable")
        parser.add_argument(
            "--skip-objects", action="store_true", help="do not look up each published object in storage"
        )

    def handle(self, *args, tiers=None, skip_objects=False, **options):
        problems = health.run_checks(check_objects=not skip_objects, tiers=tiers)
        for problem in problems:
            self.stdout.write(f"FAIL {problem.code}: {problem.message}")
        if problems:
            raise CommandError(f"unhealthy: {len(problems)} problem(s)")
        self.stdout.write("ok: all checks passed")
