"""rotate_tokens: the cron entry point (announce, promote) and the operator's (init, emergency)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from deliveries.tiers import Tier
from tokens import rotation
from tokens.models import Actor, Mode


def running_under_django_crontab(argv=None):
    """django-crontab runs jobs as ``manage.py crontab run <hash>``: then the schedule is the actor."""
    argv = sys.argv if argv is None else argv
    return argv[1:3] == ["crontab", "run"]


class Command(BaseCommand):
    help = (
        "Rotate the tier tokens. init: issue a current token to tiers without one. announce: issue the "
        "next token (both work). promote: next becomes current, the old one stops working. emergency: "
        "revoke a tier's tokens now and issue a new current one (needs --tier or --all)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--mode", required=True, choices=Mode.values)
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--tier", action="append", choices=Tier.values, dest="tiers", help="Repeatable. Default: every tier."
        )
        which.add_argument(
            "--all", action="store_true", dest="all_tiers", help="Every tier; required for an emergency on all tiers."
        )
        parser.add_argument("--dry-run", action="store_true", help="Say what would happen; write nothing.")
        parser.add_argument(
            "--force",
            action="store_true",
            help=f"emergency: rotate again even if the tier was emergency-rotated in the last "
            f"{int(rotation.EMERGENCY_REPEAT_WINDOW.total_seconds() // 60)} minutes.",
        )
        parser.add_argument(
            "--actor",
            choices=[Actor.CRON, Actor.COMMAND],
            help="Who is running this; recorded in the history. Default: cron under django-crontab, else command. "
            "Plain crontab lines pass --actor cron.",
        )

    def handle(self, *args, mode, tiers=None, all_tiers=False, dry_run=False, force=False, actor=None, **options):
        mode = Mode(mode)
        if mode == Mode.EMERGENCY and not tiers and not all_tiers:
            raise CommandError("an emergency rotation revokes live links: name the tiers with --tier tierN, or --all")
        if force and mode != Mode.EMERGENCY:
            raise CommandError("--force only applies to --mode emergency")
        actor = actor or (Actor.CRON if running_under_django_crontab() else Actor.COMMAND)
        kwargs = {"dry_run": dry_run, "actor": actor}
        if mode == Mode.EMERGENCY:
            kwargs["force"] = force
        try:
            result = rotation.MODES[mode](tiers or list(Tier.values), **kwargs)
        except (ValueError, rotation.RotationConflict) as error:
            raise CommandError(f"{mode}: {error}") from error
        for line in result.lines():
            self.stdout.write(line)
        if not result.ok:
            failed = ", ".join(o.tier for o in result.outcomes if o.failed)
            raise CommandError(f"{mode} failed for {failed}")
