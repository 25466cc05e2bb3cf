"""Shared fixtures: isolated local storage and archive per test, a real S3 server (moto) over HTTP,
a stand-in cron monitor, and the published files and token the web tests start from."""

import http.server
import socket
import threading
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

SPEC_DIR = Path(__file__).parent / "spec"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def create_bucket(endpoint, prefix):
    """A fresh bucket on the moto server: (boto3 client, bucket name)."""
    import boto3

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3_storage(settings, moto_server, monkeypatch):
    """Switch delivery storage to S3 on the moto server, with a fresh private bucket: the
    production class with its own R2 options, only the endpoint and bucket are the test's."""
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

    from .test_views_support import NOW, publish_scenario

    with time_machine.travel(NOW, tick=False):
        return publish_scenario("tier1")


@pytest.fixture
def token():
    """A current tier 1 token, in clear, as a subscriber's link carries it."""
    from .test_views_support import issue_current

    return issue_current("tier1")


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


def pytest_report_header(config):
    return f"database: {settings.DATABASES['default']['ENGINE']}"
