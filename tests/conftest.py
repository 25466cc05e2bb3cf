"""The fixtures every folder of tests shares: isolated local storage and archive per test, a real S3
server (moto) over HTTP, a stand-in cron monitor, the published files and token the web tests start
from, the database reachable from threads, and the headless browser. Helpers that are not fixtures
are in tests/support/."""

import http.server
import threading

import pytest
from django.conf import settings
from django.db import connection


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    """Every test writes to its own storage root and reads its own archive."""
    root = tmp_path / "storage"
    root.mkdir()
    settings.STORAGE_BACKEND = "local"
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {"BACKEND": "deliveries.storage.LocalDeliveryStorage", "OPTIONS": {"location": root}},
    }
    settings.ARCHIVE_ROOT = tmp_path / "archive"
    settings.ARCHIVE_ROOT.mkdir()
    settings.BUILD_SCRATCH_DIR = tmp_path / "scratch"  # remote storage's scratch: never shared by tests
    return root


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache: a page cached by an earlier test, whose database was
    rolled back, must not be served in the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def moto_server():
    """moto's S3 server on 127.0.0.1, spoken to over real HTTP by boto3 and django-storages."""
    from moto.server import ThreadedMotoServer

    from tests.support.servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(settings, moto_server, monkeypatch):
    """Switch delivery storage to S3 on the moto server, with a fresh private bucket: the
    production class with its own R2 options, only the endpoint and bucket are the test's."""
    from tests.support.servers import create_bucket

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client, bucket = create_bucket(moto_server, "test")
    settings.STORAGE_BACKEND = "s3"
    settings.R2_ENDPOINT = moto_server
    settings.R2_BUCKET = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {
            "BACKEND": "deliveries.storage.R2DeliveryStorage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_server,
                "access_key": "testing",
                "secret_key": "testing",
            },
        },
    }
    client.bucket = bucket
    return client


class PingRecorder(http.server.BaseHTTPRequestHandler):
    """A stand-in cron monitor (healthchecks-style ping URL): remembers each path it is pinged on."""

    paths = []

    def do_GET(self):
        self.paths.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def cron_monitor():
    """(base URL, list of pinged paths) of a real HTTP server on 127.0.0.1."""
    PingRecorder.paths = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PingRecorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", PingRecorder.paths
    server.shutdown()


@pytest.fixture
def scenario():
    """Tier 1 with a month bundle and retained days, published at the web tests' frozen time."""
    import time_machine

    from tests.support.scenarios import NOW, publish_scenario

    with time_machine.travel(NOW, tick=False):
        return publish_scenario("tier1")


@pytest.fixture
def token():
    """A current tier 1 token, in clear, as a subscriber's link carries it."""
    from tests.support.tokens import issue_current

    return issue_current("tier1")


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


@pytest.fixture
def contended_db(tmp_path):
    """The test database, reachable from other threads with production's locking behaviour."""
    from tests.support.databases import on_disk_copy

    with on_disk_copy(tmp_path):
        yield


@pytest.fixture(scope="module")
def allow_orm_beside_playwright():
    """Set only while a browser module runs (its ``pytestmark`` uses it): in os.environ for the whole
    session it would leak into subprocesses (``check --deploy`` rightly refuses it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(allow_orm_beside_playwright):
    """Debian's Chromium, headless, through Playwright (tests/support/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    """A desktop-sized browser context that accepts downloads; screenshots go to test-artifacts/."""
    from tests.support.browser import ARTIFACTS

    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def pytest_report_header(config):
    return f"database: {settings.DATABASES['default']['ENGINE']}"
