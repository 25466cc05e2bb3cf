"""manage.py apply_retention: delist daily files past the newest N published days of each tier."""

from django.core.management.base import BaseCommand, CommandError

from deliveries import retention
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier

from ._recorded import recorded_command


class Command(BaseCommand):
    help = (
        "Keep each tier's newest N published days listed (default DAILY_RETENTION_DAYS); delist older ones. "
        "Their objects are deleted later by collect_garbage."
    )

    def add_arguments(self, parser):
        parser.add_argument("--keep-days", type=int, default=None, help="default: DAILY_RETENTION_DAYS")
        parser.add_argument("--tier", action="append", choices=Tier.values, dest="tiers", help="repeatable")
        parser.add_argument("--dry-run", action="store_true", help="report what would be delisted; change nothing")

    def handle(self, *args, keep_days=None, tiers=None, dry_run=False, **options):
        if keep_days is not None and keep_days < 1:
            raise CommandError("--keep-days must be at least 1")
        arguments = {"keep_days": keep_days, "tiers": tiers, "dry_run": dry_run}
        with recorded_command(
            "apply_retention",
            arguments,
            dry_run=dry_run,
            refused="retention not applied",
            stopped="retention stopped",
        ) as recorder:
            report = retention.apply_retention(keep_days=keep_days, dry_run=dry_run, tiers=tiers)
            for tier, line in self.tier_lines(report):
                self.stdout.write(line)
                recorder.run.results.append(
                    {"tier": tier, "outcome": Outcome.DRY_RUN if dry_run else Outcome.SUCCESS, "message": line}
                )
        summary = (
            f"retention keep {report.keep_days}: {verb(report)} {report.delisted_count} days, "
            f"protected {report.protected_count}"
        )
        self.stdout.write(summary + (" (dry run: nothing changed)" if report.dry_run else ""))

    @staticmethod
    def tier_lines(report):
        for tier in report.tiers:
            line = f"{tier.tier}: kept {len(tier.kept)}, {verb(report)} {len(tier.delisted)}"
            if tier.delisted:
                line += f" ({', '.join(d.isoformat() for d in sorted(tier.delisted))})"
            if tier.protected:
                line += (
                    f", protected {len(tier.protected)} the month's bundle lacks "
                    f"({', '.join(d.isoformat() for d in sorted(tier.protected))}; run build_mtd)"
                )
            yield tier.tier, line


def verb(report):
    return "would delist" if report.dry_run else "delisted"
