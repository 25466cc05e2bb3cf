"""A forced rebuild of changed input while a client lists and downloads, over real HTTP: what the
API lists is what the links deliver, every time.

The site runs in a real threaded HTTP server (Django's own, as ``runserver`` uses), each request
on its own database connection, while the main thread runs ``build_daily --force`` over three days
whose archive changed. The client lists all three tiers and downloads every listed file through
both its links (``url`` and ``signed_url``), checking size and SHA-256, pausing at random between
listing and downloading so that rebuilds land in between. A listing taken before the rebuild and
downloaded after it is checked too: that is the case that served changed bytes when files were
replaced in place.
"""

import hashlib
import json
import random
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.utils import timezone

from deliveries import sample
from deliveries.models import DailyFile
from deliveries.tiers import Tier
from tests.support.servers import fetch
from tests.support.tokens import issue_current

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def live_site(settings):
    """The site on 127.0.0.1 in Django's threaded server; SITE_URL points at it."""
    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.daemon_threads = True
    server.set_app(get_wsgi_application())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    settings.SITE_URL = f"http://127.0.0.1:{server.server_address[1]}"
    yield settings.SITE_URL
    server.shutdown()
    server.server_close()


def write_days(root, days, seed):
    """Tiny days (2 hour files; MIN_HOURS is lowered to match): the test is about the switch, not size."""
    for day in days:
        sample.write_day(root, day, entries_per_hour=2, samples_per_entry=3, seed=seed, missing_hours=range(2, 24))


def listing(site, tier, token):
    status, _, body = fetch(f"{site}/api/downloads/{tier}?t={token}")
    assert status == 200, status
    data = json.loads(body)
    return ([data["mtd"]] if data["mtd"] else []) + data["daily"]


def check(entries, tally):
    """Download every entry by both its links; count what does not match what was listed."""
    for entry in entries:
        for link in ("url", "signed_url"):
            status, _, body = fetch(entry[link])  # redirects (S3: the presigned URL) followed
            tally["downloads"] += 1
            if status == 404:
                tally["gone"].append(f"{entry['filename']} {link}")
            elif status != 200 or len(body) != entry["size_bytes"]:
                tally["mismatches"].append(f"{entry['filename']} {link}: {status}, {len(body)} bytes")
            elif hashlib.sha256(body).hexdigest() != entry["sha256"]:
                tally["mismatches"].append(f"{entry['filename']} {link}: other bytes than listed")


@pytest.mark.usefixtures("contended_db")
def test_a_forced_rebuild_under_load_never_serves_other_bytes_than_listed_nor_loses_a_listed_file(live_site, settings):
    settings.MIN_HOURS = 2
    today = timezone.now().date()
    days = [today - timedelta(days=back) for back in (3, 2, 1)]
    write_days(settings.ARCHIVE_ROOT, days, seed=1)
    call_command("build_daily", "--from", days[0].isoformat(), "--to", days[-1].isoformat(), verbosity=0)
    tokens = {tier: issue_current(tier) for tier in Tier.values}
    before = {tier: listing(live_site, tier, tokens[tier]) for tier in Tier.values}
    shas_before = set(DailyFile.objects.values_list("sha256", flat=True))

    tally = {"downloads": 0, "mismatches": [], "gone": [], "errors": []}
    passes, stop = [], threading.Event()  # (start, end) of each listing-and-downloading pass
    rng = random.Random(7)

    def client():
        while not stop.is_set():
            started = time.monotonic()
            try:
                for tier in Tier.values:
                    entries = listing(live_site, tier, tokens[tier])
                    time.sleep(rng.uniform(0, 0.05))  # a rebuild may switch the files now
                    check(entries, tally)
            except Exception as exc:  # a failed listing: reported, and the client goes on
                tally["errors"].append(repr(exc))
            passes.append((started, time.monotonic()))

    worker = threading.Thread(target=client)
    worker.start()
    try:
        time.sleep(0.2)
        write_days(settings.ARCHIVE_ROOT, days, seed=2)  # the collector rewrote these days
        rebuild_started = time.monotonic()
        call_command("build_daily", "--from", days[0].isoformat(), "--to", days[-1].isoformat(), "--force", verbosity=0)
        rebuild_ended = time.monotonic()
        time.sleep(0.2)
    finally:
        stop.set()
        worker.join(60)
    during = [p for p in passes if p[0] < rebuild_ended and p[1] > rebuild_started]

    assert not shas_before & set(DailyFile.objects.values_list("sha256", flat=True)), "every day has new bytes"
    for tier in Tier.values:  # listed before the rebuild, fetched after it
        check(before[tier], tally)
    assert during, "passes overlapped the rebuild"
    assert tally["mismatches"] == [] and tally["gone"] == [] and tally["errors"] == [], tally
