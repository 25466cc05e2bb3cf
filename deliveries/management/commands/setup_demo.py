"""``make run``: a working demo on the development defaults, ending with links to click."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from deliveries import pipeline, sample
from instrumetriq_site.utc import yesterday

DEMO_ADMIN = ("admin", "admin")  # development only: refused when DEBUG is off


class Command(BaseCommand):
    help = "Demo data for development: a sample archive, published deliveries, tier tokens and an admin login."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=10, help="days of sample archive (default 10)")

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("setup_demo makes a known admin password: it only runs with DEBUG on")
        if settings.STORAGE_BACKEND != "local":
            raise CommandError("setup_demo publishes to local storage only (STORAGE_BACKEND=local)")
        days = options["days"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        last = yesterday()
        partial = last - timedelta(days=3)
        self.stdout.write(f"Sample archive: {days} days to {last} in {settings.ARCHIVE_ROOT} (partial day {partial})")
        sample.write_archive(settings.ARCHIVE_ROOT, days, end=last, flaws=True, partial_days=[partial])

        first = last - timedelta(days=days - 1)
        result = pipeline.run_nightly(days=[first + timedelta(days=n) for n in range(days)], command="setup_demo")
        self.stdout.write(f"Deliveries: {result.summary()}")
        if not result.ok:
            raise CommandError(f"the demo build failed: {result.run.error}")

        call_command("rotate_tokens", mode="init", stdout=self.stdout)
        user_model = get_user_model()
        username, password = DEMO_ADMIN
        if not user_model.objects.filter(username=username).exists():
            user_model.objects.create_superuser(username=username, password=password, email="")

        site = settings.SITE_URL
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Demo ready. Subscriber pages (one per tier):"))
        call_command("patreon_links", format="text", stdout=self.stdout)
        self.stdout.write(f"Admin: {site}/admin/  (login {username} / {password})")
