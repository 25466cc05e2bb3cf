"""Shared fixtures: isolated local storage and archive per test, a real S3 server (moto) over HTTP."""

import socket
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
    return root


@pytest.fixture(scope="session")
def moto_server():
    """moto's S3 server on 127.0.0.1, spoken to over real HTTP by boto3 and django-storages."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(settings, moto_server, monkeypatch):
    """Switch delivery storage to S3 on the moto server, with a fresh private bucket."""
    import boto3
    from botocore.config import Config

    bucket = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client(
        "s3",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    settings.STORAGE_BACKEND = "s3"
    settings.R2_ENDPOINT = moto_server
    settings.R2_BUCKET = bucket
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": moto_server,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "auto",
                "signature_version": "s3v4",
                "addressing_style": "path",
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": True,
                "client_config": Config(
                    request_checksum_calculation="when_required", response_checksum_validation="when_required"
                ),
            },
        },
    }
    client.bucket = bucket
    return client


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


def pytest_report_header(config):
    return f"database: {settings.DATABASES['default']['ENGINE']}"
