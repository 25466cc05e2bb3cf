"""patreon_links: what to paste into each tier's pinned Patreon post, rebuilt from the sealed tokens."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from deliveries.tiers import Tier
from tokens import links


class Command(BaseCommand):
    help = "Print each tier's Patreon link(s): the current one, and during the overlap the new one too."

    def add_arguments(self, parser):
        parser.add_argument(
            "--tier", action="append", choices=Tier.values, dest="tiers", help="Repeatable. Default: every tier."
        )
        parser.add_argument("--format", choices=links.FORMATS, default="text", dest="fmt")

    def handle(self, *args, tiers=None, fmt="text", **options):
        try:
            items = links.tier_links(tiers)
        except DatabaseError as exc:
            # One line, like healthcheck, not a traceback: the operator needs the cause, not the stack.
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise CommandError(f"cannot read the tokens: the database is unreadable ({cause})") from None
        self.stdout.write(links.render(items, fmt), ending="")
        broken = [item.tier for item in items if not item.ok]
        if broken:
            raise CommandError(f"no working link to print for {', '.join(broken)}")
