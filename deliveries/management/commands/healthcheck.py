"""manage.py healthcheck: one line per problem and a non-zero exit, or ``ok`` (warnings do not fail)."""

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
            self.stdout.write(f"{'FAIL' if problem.is_failure else 'WARN'} {problem.code}: {problem.message}")
        failures, warnings = health.failures(problems), health.warnings(problems)
        if failures:
            raise CommandError(f"unhealthy: {len(failures)} problem(s)")
        if warnings:
            self.stdout.write(f"ok: delivery is healthy, {len(warnings)} warning(s)")
        else:
            self.stdout.write("ok: all checks passed")
