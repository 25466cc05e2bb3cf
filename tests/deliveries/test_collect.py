"""Collection: objects of delisted versions go SIGNED_URL_EXPIRY after their delisting, orphans as long
after they were written, and nothing listed ever goes, whatever runs at the same time."""

import os
import tempfile
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
import time_machine
from django.db import connections

from deliveries import collect, publish, storage, versions
from deliveries.models import DailyFile, StoredVersion
from tests.support.factories import daily_manifest, publish_day, tier_table, write_parquet

T0 = datetime(2026, 11, 12, 1, 0, tzinfo=UTC)
DAY = date(2026, 11, 11)
GRACE = timedelta(seconds=590400)


@pytest.fixture(autouse=True)
def grace(settings):
    settings.SIGNED_URL_EXPIRY = int(GRACE.total_seconds())


def superseded_day(tier="tier1"):
    """A day published at T0 and rebuilt an hour later: (old DailyFile state, new DailyFile)."""
    with time_machine.travel(T0, tick=False):
        old = publish_day(tier, DAY, rows=5)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        new = publish_day(tier, DAY, rows=6)
    return old, new


def collect_at(moment, **kwargs):
    with time_machine.travel(moment, tick=False):
        return collect.collect_garbage(**kwargs)


def test_the_summary_says_one_of_each_in_the_singular():
    report = collect.CollectionReport(dry_run=False, cutoff=T0, orphans=["tier1/x.parquet"], waiting=1)
    assert report.summary() == (
        "collected 0 versions and 1 orphan (1 object); 1 delisted version waits for SIGNED_URL_EXPIRY (590400 s)"
    )


def set_written(path, moment):
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def all_present(daily):
    return storage.size(daily.key) == daily.size_bytes and storage.exists(daily.manifest_key)


# --- When --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delisted_version_stays_for_signed_url_expiry_after_its_delisting_then_goes(local_storage):
    old, new = superseded_day()
    delisted = T0 + timedelta(hours=1)
    early = collect_at(delisted + GRACE - timedelta(seconds=1))
    assert early.objects == 0 and early.waiting == 1
    assert all_present(old)

    report = collect_at(delisted + GRACE)
    assert [version.key for version in report.versions] == [old.key]
    assert report.summary() == (
        "collected 1 version and 0 orphans (2 objects); 0 delisted versions wait for SIGNED_URL_EXPIRY (590400 s)"
    )
    assert not storage.exists(old.key) and not storage.exists(old.manifest_key)
    assert not (local_storage / old.key).parent.exists(), "its empty folder goes too"
    assert all_present(new)
    version = StoredVersion.objects.get(key=old.key)
    assert version.collected_at == delisted + GRACE, "the ledger keeps the history"
    assert collect_at(delisted + GRACE + timedelta(days=1)).objects == 0, "a second run has nothing to do"


@pytest.mark.django_db
def test_page_redirects_set_to_outlive_signed_urls_stretch_the_grace(settings):
    settings.SIGNED_URL_EXPIRY, settings.DOWNLOAD_REDIRECT_EXPIRY = 60, 3600
    old, _ = superseded_day()
    delisted = T0 + timedelta(hours=1)
    assert collect_at(delisted + timedelta(minutes=59)).objects == 0
    assert collect_at(delisted + timedelta(hours=1)).objects == 2


@pytest.mark.django_db
def test_a_listed_version_is_never_collected_however_old():
    with time_machine.travel(T0 - timedelta(days=300), tick=False):
        daily = publish_day("tier2", DAY)
    assert collect_at(T0).objects == 0
    assert all_present(daily)


@pytest.mark.django_db
def test_a_version_delisted_by_retention_waits_from_its_delisting():
    with time_machine.travel(T0, tick=False):
        daily = publish_day("tier3", DAY)
        publish.delist_day(daily, T0 + timedelta(days=2))
    assert collect_at(T0 + GRACE + timedelta(days=1)).objects == 0
    assert collect_at(T0 + GRACE + timedelta(days=2)).objects == 2
    assert DailyFile.objects.get().deleted_at == T0 + timedelta(days=2), "the row stays as history"


@pytest.mark.django_db
def test_old_orphans_go_young_ones_temporaries_index_and_other_prefixes_stay(local_storage):
    daily = publish_day("tier1", DAY)
    killed_run = "tier1/daily/2026-11-11/0123456789abcdef/data.parquet"  # uploaded, never listed
    young = "tier2/mtd/2026-11/fedcba9876543210/manifest.json"
    legacy_junk = "tier3/daily/2026-10-01/data.parquet"
    keep = ["index/tier1.json", "elsewhere/thing.bin", "tier1/daily/2026-11-11/.incoming-abc.part"]
    for key in (killed_run, young, legacy_junk, *keep[:2]):
        storage.put_bytes(key, b"x", storage.JSON_CONTENT_TYPE)
    (local_storage / keep[2]).write_bytes(b"half")
    for key in (killed_run, legacy_junk, *keep):
        set_written(local_storage / key, T0 - GRACE - timedelta(minutes=1))
    set_written(local_storage / young, T0 - GRACE + timedelta(minutes=1))

    dry = collect_at(T0, dry_run=True)
    assert sorted(dry.orphans) == sorted([killed_run, legacy_junk])
    assert storage.exists(killed_run), "a dry run deletes nothing"
    report = collect_at(T0)
    assert sorted(report.orphans) == sorted([killed_run, legacy_junk])
    assert not storage.exists(killed_run) and not storage.exists(legacy_junk)
    assert storage.exists(young) and all((local_storage / key).exists() for key in keep)
    assert all_present(daily)


@pytest.mark.django_db
def test_a_dry_run_reports_what_a_real_run_deletes_and_changes_nothing():
    old, _ = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    keys = storage.list_keys()
    dry = collect_at(later, dry_run=True)
    assert [v.key for v in dry.versions] == [old.key] and dry.summary().endswith("(dry run: nothing deleted)")
    assert storage.list_keys() == keys
    assert StoredVersion.objects.get(key=old.key).collected_at is None
    assert [v.key for v in collect_at(later).versions] == [old.key]


@pytest.mark.django_db
def test_a_storage_failure_mid_way_is_finished_by_the_next_run():
    old, new = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    real_delete = storage.delete

    def manifest_fails(key):
        if key.endswith("manifest.json"):
            raise storage.StorageError("outage")
        real_delete(key)

    with mock.patch.object(storage, "delete", side_effect=manifest_fails), pytest.raises(storage.StorageError):
        collect_at(later)
    assert not storage.exists(old.key) and storage.exists(old.manifest_key)
    assert StoredVersion.objects.get(key=old.key).collected_at is None, "not marked: the next run finishes it"
    assert [v.key for v in collect_at(later).versions] == [old.key]
    assert not storage.exists(old.manifest_key) and all_present(new)


# --- Hostile interleavings: nothing listed is ever deleted ------------------------------------------


@pytest.mark.django_db
def test_a_version_listed_again_between_the_collectors_listing_and_its_delete_is_kept():
    old, _ = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    real = collect.collect_version

    def relisted_first(pk, cutoff, now):
        publish_day("tier1", DAY, rows=5)  # the same bytes as the old version: its folder, listed again
        return real(pk, cutoff, now)

    with mock.patch.object(collect, "collect_version", side_effect=relisted_first):
        report = collect_at(later)
    assert report.versions == [] and report.kept == [old.key]
    assert DailyFile.objects.get().key == old.key
    assert all_present(old)


@pytest.mark.django_db
def test_a_collection_between_a_publishers_upload_and_its_switch_makes_the_publish_fail_not_list_a_hole():
    """The old version is due. A rebuild to the same bytes uploads them, then a collector deletes the
    (still delisted) version before the rebuild lists it: the switch finds the objects gone."""
    old, new = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    with time_machine.travel(later, tick=False), tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table("tier1", DAY, 5), Path(tmp) / "data.parquet")
        manifest = daily_manifest("tier1", DAY, path, 5)
        publish.upload_daily("tier1", DAY, path, manifest)
        assert [v.key for v in collect.collect_garbage().versions] == [old.key]
        with pytest.raises(versions.VersionMissing):
            publish.record_daily("tier1", DAY, manifest, input_fingerprint="rerun")
        assert DailyFile.objects.get().key == new.key and all_present(new)
        again = publish_day("tier1", DAY, rows=5)  # the rerun
    assert again.key == old.key and all_present(again)
    assert StoredVersion.objects.get(key=old.key).is_listed


@pytest.mark.django_db
def test_an_orphan_listed_between_the_collectors_listing_and_its_delete_is_kept(local_storage):
    """A killed run left a version's objects; its rerun lists that very version while the collector
    is about to delete them as orphans."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table("tier1", DAY, 5), Path(tmp) / "data.parquet")
        manifest = daily_manifest("tier1", DAY, path, 5)
        data_key, manifest_key = publish.upload_daily("tier1", DAY, path, manifest)  # then killed
    for key in (data_key, manifest_key):
        set_written(local_storage / key, T0 - GRACE - timedelta(hours=1))
    real = collect.collect_orphan

    def rerun_lists_it_first(key, cutoff):
        if not DailyFile.objects.exists():
            publish_day("tier1", DAY, rows=5)
        return real(key, cutoff)

    with mock.patch.object(collect, "collect_orphan", side_effect=rerun_lists_it_first):
        report = collect_at(T0)
    assert report.orphans == [] and sorted(report.kept) == sorted([data_key, manifest_key])
    daily = DailyFile.objects.get()
    assert daily.key == data_key and all_present(daily)


# --- Real threads, real transactions: the ledger lock ---------------------------------------------


def in_thread(function):
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_collector_waits_for_a_switch_under_way_and_then_leaves_the_version_it_listed(contended_db):
    old, _ = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    version = StoredVersion.objects.get(key=old.key)
    holding, release = threading.Event(), threading.Event()
    real_verify = versions.verify_present

    def verify_then_hold(*args):
        real_verify(*args)
        holding.set()  # the switch holds the ledger lock from here to its commit
        assert release.wait(10)

    with mock.patch.object(versions, "verify_present", side_effect=verify_then_hold):
        publisher, published = in_thread(lambda: publish_day("tier1", DAY, rows=5))
        assert holding.wait(10)
        collector, collected = in_thread(lambda: collect.collect_version(version.pk, later, later))
        collector.join(0.5)
        assert collector.is_alive(), "the collector must wait for the switch to commit"
        release.set()
        publisher.join(10)
        collector.join(10)
    assert "error" not in published and "error" not in collected, (published, collected)
    assert collected["value"] is False
    assert DailyFile.objects.get().key == old.key and all_present(old)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_switch_waits_for_a_collection_under_way_and_then_refuses_the_deleted_version(contended_db):
    old, new = superseded_day()
    later = T0 + timedelta(hours=1) + GRACE
    version = StoredVersion.objects.get(key=old.key)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(tier_table("tier1", DAY, 5), Path(tmp) / "data.parquet")
        manifest = daily_manifest("tier1", DAY, path, 5)
        publish.upload_daily("tier1", DAY, path, manifest)  # the old version's bytes, uploaded again
    holding, release = threading.Event(), threading.Event()
    real_delete = storage.delete

    def delete_then_hold(key):
        real_delete(key)
        holding.set()  # the collection holds the ledger lock from here to its commit
        assert release.wait(10)

    with mock.patch.object(storage, "delete", side_effect=delete_then_hold):
        collector, collected = in_thread(lambda: collect.collect_version(version.pk, later, later))
        assert holding.wait(10)
        publisher, published = in_thread(
            lambda: publish.record_daily("tier1", DAY, manifest, input_fingerprint="rerun")
        )
        publisher.join(0.5)
        assert publisher.is_alive(), "the switch must wait for the collection to commit"
        release.set()
        collector.join(10)
        publisher.join(10)
    assert collected.get("value") is True
    assert isinstance(published.get("error"), versions.VersionMissing)
    assert DailyFile.objects.get().key == new.key and all_present(new)


# --- The S3 leg ----------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.django_db
def test_collection_on_s3_uses_last_modified_for_orphans_and_keeps_what_is_listed(s3_storage):
    old, new = superseded_day()
    with time_machine.travel(T0 - GRACE - timedelta(hours=1), tick=False):  # moto stamps LastModified now
        s3_storage.put_object(Bucket=s3_storage.bucket, Key="tier2/daily/2026-11-01/0123456789abcdef/data.parquet")
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):  # younger than the grace at collection
        s3_storage.put_object(Bucket=s3_storage.bucket, Key="tier2/daily/2026-11-02/0123456789abcdef/data.parquet")
    report = collect_at(T0 + timedelta(hours=1) + GRACE)
    assert [v.key for v in report.versions] == [old.key]
    assert report.orphans == ["tier2/daily/2026-11-01/0123456789abcdef/data.parquet"]
    left = {obj["Key"] for obj in s3_storage.list_objects_v2(Bucket=s3_storage.bucket)["Contents"]}
    assert left == {
        new.key,
        new.manifest_key,
        "index/tier1.json",
        "tier2/daily/2026-11-02/0123456789abcdef/data.parquet",
    }
