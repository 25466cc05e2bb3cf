"""Published versions: each under keys of its own, never written again once listed; a new version
is uploaded beside the old one, then listed (database, then index), and the old one only delisted."""

import hashlib
import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.urls import reverse

from deliveries import collect, index, mtd, publish, storage, versions
from deliveries.models import DailyFile, MonthBundle, StoredVersion
from deliveries.web import downloads
from tests.support.factories import daily_manifest, publish_day, tier_table, write_parquet
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 12, 1, 0, tzinfo=UTC)
DAY = date(2026, 11, 11)
NOV = date(2026, 11, 1)
GRACE = timedelta(seconds=590400)


@pytest.fixture(autouse=True)
def frozen_clock(settings):
    settings.SIGNED_URL_EXPIRY = int(GRACE.total_seconds())
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def index_of(tier):
    return json.loads(storage.read_bytes(storage.index_key(tier)))


def test_a_version_lives_in_a_folder_named_by_its_sha256_and_the_index_lists_it():
    daily = publish_day("tier1", DAY, rows=5)
    folder = f"tier1/daily/2026-11-11/{daily.sha256[:16]}"
    assert (daily.key, daily.manifest_key) == (f"{folder}/data.parquet", f"{folder}/manifest.json")
    assert sha256(storage.read_bytes(daily.key)) == daily.sha256
    assert json.loads(storage.read_bytes(daily.manifest_key))["parquet_sha256"] == daily.sha256
    version = StoredVersion.objects.get()
    assert (version.key, version.manifest_key, version.sha256, version.size_bytes) == (
        daily.key,
        daily.manifest_key,
        daily.sha256,
        daily.size_bytes,
    )
    assert version.is_listed and version.listed_at == NOW
    assert [entry["key"] for entry in index_of("tier1")["daily"]] == [daily.key]


def test_a_rebuild_with_new_bytes_goes_beside_the_old_version_which_is_delisted_not_touched():
    old = publish_day("tier1", DAY, rows=5)
    old_bytes = storage.read_bytes(old.key)
    old_manifest = storage.read_bytes(old.manifest_key)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        new = publish_day("tier1", DAY, rows=6)
    assert new.pk == old.pk and new.key != old.key
    assert storage.read_bytes(old.key) == old_bytes and storage.read_bytes(old.manifest_key) == old_manifest
    assert sha256(storage.read_bytes(new.key)) == new.sha256
    superseded = StoredVersion.objects.get(key=old.key)
    assert superseded.delisted_at == NOW + timedelta(hours=1) and superseded.collected_at is None
    assert StoredVersion.objects.get(key=new.key).is_listed
    assert [entry["sha256"] for entry in index_of("tier1")["daily"]] == [new.sha256]


def test_the_same_bytes_again_land_in_the_same_folder_and_the_data_is_not_uploaded_again():
    first = publish_day("tier2", DAY, rows=7)
    with (
        mock.patch.object(storage, "put_file", wraps=storage.put_file) as put_file,
        mock.patch.object(storage, "put_bytes", wraps=storage.put_bytes) as put_bytes,
    ):
        again = publish_day("tier2", DAY, rows=7)
    assert again.key == first.key
    uploaded = [call.args[0] for call in put_file.call_args_list + put_bytes.call_args_list]
    assert first.key not in uploaded, "a listed object is never written again"
    assert uploaded == [first.manifest_key, "index/tier2.json"], (
        "the manifest is rewritten whole (it holds the build time)"
    )
    assert StoredVersion.objects.count() == 1 and StoredVersion.objects.get().is_listed


def test_a_version_listed_again_after_another_takes_its_folder_back():
    a = publish_day("tier1", DAY, rows=5)
    publish_day("tier1", DAY, rows=6)
    back = publish_day("tier1", DAY, rows=5)
    assert back.key == a.key
    assert StoredVersion.objects.get(key=a.key).is_listed
    assert StoredVersion.objects.listed().count() == 1


def test_a_version_whose_objects_are_gone_is_never_listed():
    """The switch checks, under the lock, that the upload is in storage: a collector that deleted it
    meanwhile makes the publish fail, not list a missing file."""
    old = publish_day("tier1", DAY, rows=5)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table("tier1", DAY, 6), Path(tmp) / "data.parquet")
        manifest = daily_manifest("tier1", DAY, path, 6)
        data_key, _ = publish.upload_daily("tier1", DAY, path, manifest)
    storage.delete(data_key)
    with pytest.raises(versions.VersionMissing, match="a rerun uploads it again"):
        publish.record_daily("tier1", DAY, manifest, input_fingerprint="x")
    assert DailyFile.objects.get().key == old.key
    assert StoredVersion.objects.get(key=old.key).is_listed


def test_the_month_bundle_is_a_new_version_each_night_and_the_old_one_is_delisted():
    publish_day("tier3", date(2026, 11, 10))
    mtd.build_month("tier3", NOV, today=date(2026, 11, 11))
    first = MonthBundle.objects.get()
    publish_day("tier3", DAY)
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        assert mtd.build_month("tier3", NOV, today=date(2026, 11, 12)).outcome == "built"
    second = MonthBundle.objects.get()
    assert second.key != first.key and storage.exists(first.key) and storage.exists(first.manifest_key)
    assert StoredVersion.objects.get(key=first.key).delisted_at == NOW + timedelta(days=1)
    assert index_of("tier3")["mtd"]["key"] == second.key


def test_a_new_months_bundle_closes_the_previous_month_and_it_is_not_rebuilt():
    publish_day("tier1", date(2026, 10, 31))
    mtd.build_month("tier1", date(2026, 10, 1), today=date(2026, 11, 1))
    october = MonthBundle.objects.get()
    assert StoredVersion.objects.get(key=october.key).is_listed, "until the new month has its first day"
    publish_day("tier1", date(2026, 11, 1))
    with time_machine.travel(datetime(2026, 11, 2, 0, 40, tzinfo=UTC), tick=False):
        assert mtd.build_month("tier1", NOV, today=date(2026, 11, 2)).outcome == "built"
        assert StoredVersion.objects.get(key=october.key).delisted_at == datetime(2026, 11, 2, 0, 40, tzinfo=UTC)
        publish_day("tier1", date(2026, 10, 30))  # a late October day
        assert mtd.months_to_build(date(2026, 11, 3), ["tier1"]) == [NOV], "October is closed"
        result = mtd.build_month("tier1", date(2026, 10, 1), today=date(2026, 11, 3))
    assert (result.outcome, result.message) == (
        "closed",
        "the 2026-11 bundle is listed; an earlier month's bundle is not rebuilt",
    )
    assert MonthBundle.objects.get(month=date(2026, 10, 1)).key == october.key


def test_the_apis_links_fetch_the_listed_version_even_after_a_rebuild_until_it_is_collected(client, settings):
    settings.SITE_URL = "https://data.example.test"
    token = issue_current("tier1")
    old = publish_day("tier1", DAY, rows=5)
    api = reverse("deliveries:api_tier", args=["tier1"])
    listed = client.get(api, {"t": token}).json()["daily"][0]
    publish_day("tier1", DAY, rows=6)  # a rebuild lists a new version meanwhile

    def fetch(url):
        response = client.get(url.removeprefix(settings.SITE_URL))
        return response.status_code, b"".join(response.streaming_content) if response.streaming else b""

    status, body = fetch(listed["url"])
    assert status == 200 and sha256(body) == listed["sha256"] == old.sha256 and len(body) == listed["size_bytes"]
    assert json.loads(fetch(listed["manifest_url"])[1])["row_count"] == 5
    status, body = fetch(listed["signed_url"])
    assert status == 200 and sha256(body) == old.sha256
    unpinned = reverse("deliveries:daily_file", args=["tier1", "2026-11-11"]) + f"?t={token}"
    assert sha256(b"".join(client.get(unpinned).streaming_content)) != old.sha256, "without v: the listed one"

    with time_machine.travel(NOW + GRACE + timedelta(minutes=1), tick=False):
        collect.collect_garbage()
        assert client.get(listed["url"].removeprefix(settings.SITE_URL)).status_code == 404
    assert client.get(listed["url"].removeprefix(settings.SITE_URL).replace("&v=", "&v=zz")).status_code == 404


def test_a_signed_local_link_of_a_versioned_key_is_a_deliverable_target():
    daily = publish_day("tier1", DAY)
    target = downloads.target_for_key(daily.key, daily.download_filename)
    assert (target.tier, target.kind, target.label) == ("tier1", "daily", "2026-11-11")
    legacy = downloads.target_for_key("tier1/mtd/2026-11/manifest.json", "x.json")
    assert (legacy.kind, legacy.label) == ("mtd_manifest", "2026-11")
    with pytest.raises(downloads.NotAvailable):
        downloads.target_for_key("tier1/daily/2026-11-11/NOTAVERSION/data.parquet", "x")


# --- Installations from before versions: unversioned keys -----------------------------------------


def publish_legacy_day(tier, day, rows):
    """A day as earlier installations published it: at the unversioned keys, with no ledger row."""
    data_key, manifest_key = storage.legacy_keys(tier, "daily", day.isoformat())
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table(tier, day, rows), Path(tmp) / "data.parquet")
        manifest = daily_manifest(tier, day, path, rows)
        storage.put_file(data_key, path, storage.PARQUET_CONTENT_TYPE)
    storage.put_bytes(manifest_key, publish.manifest_bytes(manifest), storage.JSON_CONTENT_TYPE)
    return DailyFile.objects.create(
        tier=tier,
        date=day,
        key=data_key,
        manifest_key=manifest_key,
        size_bytes=manifest["parquet_size_bytes"],
        sha256=manifest["parquet_sha256"],
        row_count=rows,
        hours_found=24,
        coverage_ratio=1.0,
        input_fingerprint="legacy",
        manifest=manifest,
        built_at=NOW - timedelta(days=3),
        published_at=NOW - timedelta(days=3),
    )


def test_unversioned_keys_keep_working_until_superseded_then_wait_their_grace_and_are_collected(client):
    token = issue_current("tier1")
    legacy = publish_legacy_day("tier1", DAY, rows=4)
    page_link = reverse("deliveries:daily_file", args=["tier1", "2026-11-11"]) + f"?t={token}"
    assert sha256(b"".join(client.get(page_link).streaming_content)) == legacy.sha256
    assert collect.collect_garbage().objects == 0, "listed: never collected"
    assert StoredVersion.objects.get(key=legacy.key).is_listed, "adopted by the ledger as listed"

    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        new = publish_day("tier1", DAY, rows=5)
    assert new.key.startswith("tier1/daily/2026-11-11/") and new.key != legacy.key
    assert StoredVersion.objects.get(key=legacy.key).delisted_at == NOW + timedelta(days=1)
    assert storage.exists(legacy.key), "a signed URL handed out yesterday still works"

    with time_machine.travel(NOW + timedelta(days=1) + GRACE - timedelta(minutes=1), tick=False):
        assert collect.collect_garbage().objects == 0
    with time_machine.travel(NOW + timedelta(days=1) + GRACE, tick=False):
        report = collect.collect_garbage()
    assert [version.key for version in report.versions] == [legacy.key]
    assert not storage.exists(legacy.key) and not storage.exists(legacy.manifest_key)
    assert storage.exists(new.key) and storage.exists(new.manifest_key)


def test_an_unversioned_day_delisted_by_retention_waits_its_grace_from_the_delisting():
    legacy = publish_legacy_day("tier2", DAY, rows=4)
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        assert publish.delist_day(legacy, NOW + timedelta(hours=2))
    index.publish_index(["tier2"])
    assert index_of("tier2")["daily"] == []
    assert StoredVersion.objects.get(key=legacy.key).delisted_at == NOW + timedelta(hours=2)
    with time_machine.travel(NOW + GRACE + timedelta(hours=1), tick=False):
        assert collect.collect_garbage().objects == 0
    with time_machine.travel(NOW + GRACE + timedelta(hours=2), tick=False):
        assert collect.collect_garbage().objects == 2
