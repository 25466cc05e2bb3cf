"""Retention: the newest N published days stay in storage; older ones become history."""

from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine

from deliveries import mtd, retention, storage
from deliveries.models import DailyFile, MonthBundle

from .factories import publish_day

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def days_between(first, last):
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def publish_and_bundle(tier, days, today=date(2026, 11, 25)):
    for day in days:
        publish_day(tier, day)
    for first in sorted({mtd.month_start(day) for day in days}):
        assert mtd.build_month(tier, first, today=today).outcome == "built"


def live_dates(tier):
    return sorted(DailyFile.objects.for_tier(tier).published().values_list("date", flat=True))


def test_retention_keeps_exactly_the_newest_7_days_and_deletes_data_and_manifest():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    report = retention.apply_retention()
    assert report.keep_days == 7
    tier1 = report.tiers[0]
    assert tier1.tier == "tier1"
    assert sorted(tier1.kept) == days[-7:]
    assert sorted(tier1.deleted) == days[:-7]
    assert tier1.protected == []
    assert live_dates("tier1") == days[-7:]
    for day in days[:-7]:
        data_key, manifest_key = storage.daily_keys("tier1", day)
        assert not storage.exists(data_key) and not storage.exists(manifest_key)
    for day in days[-7:]:
        assert all(storage.exists(key) for key in storage.daily_keys("tier1", day))


def test_retention_marks_history_instead_of_deleting_rows():
    days = days_between(date(2026, 11, 14), date(2026, 11, 24))
    publish_and_bundle("tier2", days)
    retention.apply_retention()
    history = DailyFile.objects.for_tier("tier2").deleted()
    assert sorted(history.values_list("date", flat=True)) == days[:4]
    assert {row.deleted_at for row in history} == {NOW}
    assert DailyFile.objects.for_tier("tier2").count() == len(days)


def test_retention_counts_from_the_newest_published_day_not_the_clock():
    """Publishing stalled for a week: subscribers still have the last 7 days, nothing is deleted."""
    days = days_between(date(2026, 11, 4), date(2026, 11, 10))
    publish_and_bundle("tier3", days)
    with time_machine.travel(datetime(2026, 11, 18, 1, 0, tzinfo=UTC), tick=False):
        report = retention.apply_retention()
    assert report.deleted_count == 0
    assert live_dates("tier3") == days


def test_retention_counts_published_days_so_a_gap_keeps_older_days():
    days = [date(2026, 11, d) for d in (2, 3, 4, 5, 10, 11, 20, 21, 22)]
    publish_and_bundle("tier1", days)
    report = retention.apply_retention(keep_days=7)
    assert sorted(report.tiers[0].deleted) == days[:2]
    assert live_dates("tier1") == days[2:]


def test_retention_never_deletes_a_day_the_mtd_lacks():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days[:5])  # the bundle holds Nov 10-14
    for day in days[5:]:
        publish_day("tier1", day)  # Nov 15-24 published, bundle not rebuilt since
    report = retention.apply_retention(keep_days=3)
    tier1 = report.tiers[0]
    assert sorted(tier1.deleted) == days[:5]
    assert sorted(tier1.protected) == days[5:-3]
    assert live_dates("tier1") == days[5:]


def test_retention_never_deletes_a_day_whose_newer_version_the_mtd_lacks():
    publish_and_bundle("tier2", days_between(date(2026, 11, 1), date(2026, 11, 3)))
    publish_day("tier2", date(2026, 11, 1), rows=99)  # republished after the bundle was built
    report = retention.apply_retention(keep_days=1)
    assert report.tiers[1].protected == [date(2026, 11, 1)]
    assert report.tiers[1].deleted == [date(2026, 11, 2)]


def test_retention_protects_days_of_a_month_without_a_bundle():
    publish_day("tier1", date(2026, 10, 30))
    publish_day("tier1", date(2026, 10, 31))
    publish_and_bundle("tier1", [date(2026, 11, 1), date(2026, 11, 2)])
    report = retention.apply_retention(keep_days=1)
    assert sorted(report.tiers[0].protected) == [date(2026, 10, 30), date(2026, 10, 31)]
    assert report.tiers[0].deleted == [date(2026, 11, 1)]


def test_dry_run_deletes_nothing_and_reports_what_it_would_do():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    keys_before = storage.list_keys()
    report = retention.apply_retention(dry_run=True)
    assert report.dry_run and sorted(report.tiers[0].deleted) == days[:-7]
    assert storage.list_keys() == keys_before
    assert live_dates("tier1") == days


def test_an_interrupted_run_is_completed_by_a_rerun():
    days = days_between(date(2026, 11, 20), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    real_filter = DailyFile.objects.filter

    def killed_before_marking(*args, **kwargs):
        if "deleted_at__isnull" in kwargs:
            raise RuntimeError("killed")
        return real_filter(*args, **kwargs)

    # Killed between deleting the first day's objects and marking its row.
    with (
        mock.patch.object(DailyFile.objects, "filter", side_effect=killed_before_marking),
        pytest.raises(RuntimeError),
    ):
        retention.apply_retention(keep_days=2)
    assert not any(storage.exists(key) for key in storage.daily_keys("tier1", days[0])), "the objects went first"
    assert storage.exists(storage.daily_keys("tier1", days[1])[0])
    assert live_dates("tier1") == days, "the row was not marked yet"
    report = retention.apply_retention(keep_days=2)
    assert sorted(report.tiers[0].deleted) == days[:3]
    assert live_dates("tier1") == days[3:]


def test_a_second_run_has_nothing_to_delete():
    publish_and_bundle("tier1", days_between(date(2026, 11, 10), date(2026, 11, 24)))
    retention.apply_retention()
    assert retention.apply_retention().deleted_count == 0


def test_tiers_are_counted_separately_and_can_be_chosen():
    publish_and_bundle("tier1", days_between(date(2026, 11, 1), date(2026, 11, 10)))
    publish_and_bundle("tier2", days_between(date(2026, 11, 5), date(2026, 11, 10)))
    report = retention.apply_retention(keep_days=3, tiers=["tier2"])
    assert [t.tier for t in report.tiers] == ["tier2"]
    assert len(live_dates("tier1")) == 10
    assert len(live_dates("tier2")) == 3


# --- Orphans -------------------------------------------------------------------------------------


def test_orphans_are_listed_and_only_removed_on_request():
    publish_and_bundle("tier1", [date(2026, 11, 23), date(2026, 11, 24)])
    stray = ["tier1/daily/2026-10-01/data.parquet", "tier3/mtd/2026-09/manifest.json", "tier2/notes.txt"]
    for key in stray:
        storage.put_bytes(key, b"x", storage.JSON_CONTENT_TYPE)
    storage.put_bytes("index/tier1.json", b"{}", storage.JSON_CONTENT_TYPE)
    storage.put_bytes("elsewhere/thing.bin", b"x", storage.JSON_CONTENT_TYPE)

    listed = retention.apply_retention()
    assert sorted(listed.orphans_found) == sorted(stray)
    assert listed.orphans_removed == []
    assert all(storage.exists(key) for key in stray)

    removed = retention.apply_retention(delete_orphans=True)
    assert sorted(removed.orphans_removed) == sorted(stray)
    assert not any(storage.exists(key) for key in stray)
    assert storage.exists("index/tier1.json") and storage.exists("elsewhere/thing.bin")
    bundle = MonthBundle.objects.get()
    assert storage.exists(bundle.key) and storage.exists(bundle.manifest_key)
    assert all(storage.exists(k) for k in storage.daily_keys("tier1", date(2026, 11, 24)))


def test_objects_of_deleted_rows_are_orphans_and_temp_files_are_not(local_storage):
    daily = publish_day("tier1", date(2026, 11, 24))
    DailyFile.objects.filter(pk=daily.pk).update(deleted_at=NOW)
    (local_storage / "tier1/daily/2026-11-24/.incoming-abc.part").write_bytes(b"half")
    assert sorted(retention.find_orphans(["tier1"])) == [daily.key, daily.manifest_key]


def test_dry_run_with_delete_orphans_removes_nothing():
    storage.put_bytes("tier1/daily/2026-10-01/data.parquet", b"x", storage.PARQUET_CONTENT_TYPE)
    report = retention.apply_retention(dry_run=True, delete_orphans=True)
    assert report.orphans_found == ["tier1/daily/2026-10-01/data.parquet"]
    assert report.orphans_removed == []
    assert storage.exists("tier1/daily/2026-10-01/data.parquet")


# --- The S3 leg ----------------------------------------------------------------------------------


@pytest.mark.s3
def test_retention_and_orphans_on_s3(s3_storage):
    days = days_between(date(2026, 11, 14), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    s3_storage.put_object(Bucket=s3_storage.bucket, Key="tier1/daily/2026-01-01/data.parquet", Body=b"x")
    report = retention.apply_retention(delete_orphans=True)
    assert sorted(report.tiers[0].deleted) == days[:4]
    assert report.orphans_removed == ["tier1/daily/2026-01-01/data.parquet"]
    listed = s3_storage.list_objects_v2(Bucket=s3_storage.bucket, Prefix="tier1/daily/")
    dates = sorted({obj["Key"].split("/")[2] for obj in listed["Contents"]})
    assert dates == [day.isoformat() for day in days[-7:]]


def test_leftovers_of_a_killed_build_are_cleared_after_a_day_and_a_live_build_is_left_alone(local_storage):
    import os
    import time

    scratch = local_storage / ".incoming-work"
    killed = scratch / "instrumetriq-build-killed"
    killed.mkdir(parents=True)
    (killed / "tier3.parquet").write_bytes(b"half")
    two_days_ago = time.time() - 2 * 86400
    for path in (killed / "tier3.parquet", killed):
        os.utime(path, (two_days_ago, two_days_ago))
    running = scratch / "mtd-running"
    running.mkdir()
    (running / "mtd.parquet").write_bytes(b"being written")

    assert retention.apply_retention(dry_run=True).scratch_removed == []
    assert killed.exists()
    report = retention.apply_retention()
    assert report.scratch_removed == ["instrumetriq-build-killed"]
    assert not killed.exists()
    assert (running / "mtd.parquet").exists()
