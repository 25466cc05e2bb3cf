"""manage.py publish_index: write index/tierN.json from the database (the database is the index)."""

from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from deliveries import index, storage
from deliveries.tiers import Tier


class Command(BaseCommand):
    help = "Write each tier's download index (MTD entry and retained daily files) to index/tierN.json."

    def add_arguments(self, parser):
        parser.add_argument("--tier", action="append", choices=Tier.values, dest="tiers", help="repeatable")

    def handle(self, *args, tiers=None, **options):
        try:
            keys = index.publish_index(tiers)
        except storage.StorageError as exc:
            raise CommandError(f"index not published: {exc}") from None
        for key in keys:
            self.stdout.write(f"wrote {key}")
        self.stdout.write(f"{len(keys)} index file{pluralize(len(keys))} written")
