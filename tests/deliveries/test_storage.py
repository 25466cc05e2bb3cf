"""Storage: the one module that knows local from S3. Atomic writes, checked reads, moves, listings."""

import errno
import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from botocore.config import Config
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from deliveries import storage


def test_put_bytes_then_read_back_and_size(local_storage):
    storage.put_bytes("tier1/daily/2026-11-20/manifest.json", b'{"a": 1}\n', storage.JSON_CONTENT_TYPE)
    assert storage.read_bytes("tier1/daily/2026-11-20/manifest.json") == b'{"a": 1}\n'
    assert storage.size("tier1/daily/2026-11-20/manifest.json") == 9
    assert storage.size("tier1/daily/2026-11-20/data.parquet") is None


def test_overwrite_replaces_in_place_and_leaves_no_temporary_file(local_storage):
    storage.put_bytes("index/tier1.json", b"old", storage.JSON_CONTENT_TYPE)
    storage.put_bytes("index/tier1.json", b"new", storage.JSON_CONTENT_TYPE)
    assert storage.read_bytes("index/tier1.json") == b"new"
    assert os.listdir(local_storage / "index") == ["tier1.json"]


def test_consumed_file_is_renamed_into_place_not_copied(local_storage, tmp_path):
    source = local_storage / ".incoming-work" / "bundle.parquet"
    source.parent.mkdir()
    source.write_bytes(b"PAR1 bundle PAR1")
    inode = source.stat().st_ino
    storage.put_file("tier3/mtd/2026-11/data.parquet", source, storage.PARQUET_CONTENT_TYPE, consume=True)
    target = local_storage / "tier3/mtd/2026-11/data.parquet"
    assert target.read_bytes() == b"PAR1 bundle PAR1"
    assert target.stat().st_ino == inode
    assert not source.exists()


def test_consumed_file_on_another_filesystem_is_copied(local_storage, tmp_path):
    source = tmp_path / "bundle.parquet"
    source.write_bytes(b"PAR1 x PAR1")
    cross_device = OSError(errno.EXDEV, "Invalid cross-device link")
    # The rename fails once with EXDEV (another filesystem); the copy path then runs for real.
    calls = []

    def replace_once_cross_device(src, dst):
        calls.append((src, dst))
        if len(calls) == 1:
            raise cross_device
        return os.rename(src, dst)

    with mock.patch.object(storage.os, "replace", replace_once_cross_device):
        storage.put_file("tier3/mtd/2026-11/data.parquet", source, storage.PARQUET_CONTENT_TYPE, consume=True)
    assert (local_storage / "tier3/mtd/2026-11/data.parquet").read_bytes() == b"PAR1 x PAR1"
    assert len(calls) == 2  # the failed rename, then the atomic replace of the copy


def test_scratch_folder_is_beside_storage_and_never_listed(local_storage):
    scratch = storage.scratch_dir()
    assert os.path.dirname(scratch) == str(local_storage)
    (local_storage / ".incoming-work" / "half-written.parquet").write_bytes(b"x")
    storage.put_bytes("tier1/daily/2026-11-20/data.parquet", b"y", storage.PARQUET_CONTENT_TYPE)
    assert storage.list_keys() == ["tier1/daily/2026-11-20/data.parquet"]


def test_open_checked_reads_local_objects_in_place_with_their_digest(local_storage, tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    storage.put_bytes("tier3/daily/2026-11-20/data.parquet", data, storage.PARQUET_CONTENT_TYPE)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with storage.open_checked("tier3/daily/2026-11-20/data.parquet", scratch) as (fh, digest):
        assert digest == hashlib.sha256(data).hexdigest()
        assert fh.read() == data
        assert os.listdir(scratch) == []  # no copy


def test_open_checked_digest_and_bytes_are_of_one_file_even_if_it_is_replaced(local_storage, tmp_path):
    storage.put_bytes("tier1/daily/2026-11-20/data.parquet", b"first version", storage.PARQUET_CONTENT_TYPE)
    with storage.open_checked("tier1/daily/2026-11-20/data.parquet", tmp_path) as (fh, digest):
        storage.put_bytes("tier1/daily/2026-11-20/data.parquet", b"second version!", storage.PARQUET_CONTENT_TYPE)
        assert fh.read() == b"first version"
        assert digest == hashlib.sha256(b"first version").hexdigest()


def test_open_checked_of_a_missing_object_is_a_storage_error(local_storage, tmp_path):
    missing = pytest.raises(storage.StorageError, match="storage read of tier1/daily/2026-11-20/data.parquet failed")
    with missing, storage.open_checked("tier1/daily/2026-11-20/data.parquet", tmp_path):
        pass


@pytest.mark.s3
def test_open_checked_downloads_remote_objects_and_removes_the_copy(s3_storage, tmp_path):
    data = os.urandom(100_000)
    storage.put_bytes("tier3/daily/2026-11-20/data.parquet", data, storage.PARQUET_CONTENT_TYPE)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    assert storage.scratch_dir() == str(settings.BUILD_SCRATCH_DIR)  # no storage folder to be beside
    with storage.open_checked("tier3/daily/2026-11-20/data.parquet", scratch) as (fh, digest):
        assert digest == hashlib.sha256(data).hexdigest()
        assert fh.read() == data
        assert len(os.listdir(scratch)) == 1
    assert os.listdir(scratch) == []


@pytest.mark.s3
def test_s3_listing_and_delete(s3_storage):
    for key in ("tier1/daily/2026-11-20/data.parquet", "tier1/daily/2026-11-20/manifest.json", "index/tier1.json"):
        storage.put_bytes(key, b"x", storage.JSON_CONTENT_TYPE)
    assert storage.list_keys("tier1/") == [
        "tier1/daily/2026-11-20/data.parquet",
        "tier1/daily/2026-11-20/manifest.json",
    ]
    storage.delete("tier1/daily/2026-11-20/data.parquet")
    assert storage.size("tier1/daily/2026-11-20/data.parquet") is None
    assert storage.exists("index/tier1.json")


def test_unreachable_s3_is_a_storage_error_with_a_plain_message(settings):
    from botocore.config import Config

    settings.STORAGE_BACKEND = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {
            "BACKEND": "deliveries.storage.R2DeliveryStorage",
            "OPTIONS": {
                "bucket_name": "b",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key": "k",
                "secret_key": "s",
                "region_name": "auto",
                "client_config": Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
            },
        },
    }
    with pytest.raises(storage.StorageError, match="storage ping of s3 failed"):
        storage.ping()


def test_clear_scratch_removes_what_killed_runs_left_and_uploads_interrupted_over_an_hour_ago(local_storage):
    scratch = Path(storage.scratch_dir())
    (scratch / "instrumetriq-build-killed").mkdir()
    (scratch / "instrumetriq-build-killed" / "tier3.parquet").write_bytes(b"half")
    (scratch / "mtd-killed").mkdir()
    folder = local_storage / "tier1" / "daily" / "2026-11-20"
    folder.mkdir(parents=True)
    old_part, fresh_part = folder / ".incoming-old.part", folder / ".incoming-fresh.part"
    old_part.write_bytes(b"x")
    fresh_part.write_bytes(b"y")  # an upload by publish_index or the doctor, which take no lock
    two_hours_ago = time.time() - 7200
    os.utime(old_part, (two_hours_ago, two_hours_ago))
    storage.put_bytes("tier1/daily/2026-11-20/data.parquet", b"published", storage.PARQUET_CONTENT_TYPE)

    removed = storage.clear_scratch()

    assert sorted(removed) == [
        "instrumetriq-build-killed",
        "mtd-killed",
        "tier1/daily/2026-11-20/.incoming-old.part",
    ]
    assert list(scratch.iterdir()) == []
    assert fresh_part.exists()
    assert storage.read_bytes("tier1/daily/2026-11-20/data.parquet") == b"published"


@pytest.mark.s3
def test_clear_scratch_on_s3_empties_the_scratch_folder_and_aborts_unfinished_uploads(s3_storage):
    scratch = Path(storage.scratch_dir())
    (scratch / "instrumetriq-build-killed").mkdir()
    (scratch / "instrumetriq-build-killed" / "tier3.parquet").write_bytes(b"half")
    s3_storage.create_multipart_upload(Bucket=s3_storage.bucket, Key="tier3/daily/2026-11-20/data.parquet")
    # (moto dates every upload 2010-11-10, so "started over an hour ago" cannot be shown false here.)
    removed = storage.clear_scratch(now=timezone.now() + timedelta(hours=2))

    assert removed == ["instrumetriq-build-killed", "tier3/daily/2026-11-20/data.parquet (unfinished upload)"]
    assert s3_storage.list_multipart_uploads(Bucket=s3_storage.bucket).get("Uploads", []) == []
    assert list(scratch.iterdir()) == []


def r2(**options):
    return storage.R2DeliveryStorage(
        bucket_name="deliveries",
        endpoint_url="https://account.r2.cloudflarestorage.com",
        access_key="k",
        secret_key="s",
        **options,
    )


def test_r2_options_are_in_the_client_config_where_botocore_reads_them():
    """django-storages ignores its signature_version and addressing_style options once a
    client_config is given: the class puts them in the config itself, and keeps them when the
    options bring a config of their own (merged over the class's)."""
    for store in (r2(), r2(client_config=Config(retries={"max_attempts": 1}))):
        config = store.client_config
        assert config.signature_version == "s3v4"
        assert config.s3 == {"addressing_style": "path"}
        assert config.request_checksum_calculation == "when_required"
        assert config.response_checksum_validation == "when_required"
    assert r2(client_config=Config(retries={"max_attempts": 1})).client_config.retries == {"max_attempts": 1}
    url, _ = r2().download_url(
        "tier1/daily/2026-11-20/abc/data.parquet", "x.parquet", "application/vnd.apache.parquet", 60
    )
    assert url.startswith(
        "https://account.r2.cloudflarestorage.com/deliveries/tier1/daily/2026-11-20/abc/data.parquet?"
    )
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "response-content-disposition=attachment" in url


def test_r2_storage_refuses_a_location_prefix():
    with pytest.raises(ImproperlyConfigured, match="no location prefix"):
        r2(location="prefix")
