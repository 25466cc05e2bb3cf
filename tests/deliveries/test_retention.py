"""Retention: the newest N published days stay listed; older ones are delisted and become history."""

import json
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine

from deliveries import index, mtd, publish, retention, storage
from deliveries.models import DailyFile, StoredVersion
from tests.support.clock import frozen_clock_at
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


frozen_clock = frozen_clock_at(NOW)


def days_between(first, last):
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def publish_and_bundle(tier, days, today=date(2026, 11, 25)):
    for day in days:
        publish_day(tier, day)
    for first in sorted({mtd.month_start(day) for day in days}):
        assert mtd.build_month(tier, first, today=today).outcome == "built"


def live_dates(tier):
    return sorted(DailyFile.objects.for_tier(tier).published().values_list("date", flat=True))


def test_retention_keeps_exactly_the_newest_7_days_and_only_delists_the_older_ones():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    report = retention.apply_retention()
    assert report.keep_days == 7
    tier1 = report.tiers[0]
    assert tier1.tier == "tier1"
    assert sorted(tier1.kept) == days[-7:]
    assert sorted(tier1.delisted) == days[:-7]
    assert tier1.protected == []
    assert live_dates("tier1") == days[-7:]
    for daily in DailyFile.objects.for_tier("tier1"):
        # Delisted, not deleted: a signed URL handed out yesterday still fetches these bytes.
        assert storage.size(daily.key) == daily.size_bytes and storage.exists(daily.manifest_key)
        version = StoredVersion.objects.get(key=daily.key)
        assert version.delisted_at == (NOW if daily.date in days[:-7] else None)
        assert version.collected_at is None


def test_retention_rewrites_the_index_so_it_lists_exactly_the_kept_days():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    retention.apply_retention()
    listed = json.loads(storage.read_bytes("index/tier1.json"))
    assert [entry["date"] for entry in listed["daily"]] == [day.isoformat() for day in reversed(days[-7:])]
    assert listed["daily"] == index.build_index("tier1")["daily"]


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
    assert report.delisted_count == 0
    assert live_dates("tier3") == days


def test_retention_counts_published_days_so_a_gap_keeps_older_days():
    days = [date(2026, 11, d) for d in (2, 3, 4, 5, 10, 11, 20, 21, 22)]
    publish_and_bundle("tier1", days)
    report = retention.apply_retention(keep_days=7)
    assert sorted(report.tiers[0].delisted) == days[:2]
    assert live_dates("tier1") == days[2:]


def test_retention_never_deletes_a_day_the_mtd_lacks():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days[:5])  # the bundle holds Nov 10-14
    for day in days[5:]:
        publish_day("tier1", day)  # Nov 15-24 published, bundle not rebuilt since
    report = retention.apply_retention(keep_days=3)
    tier1 = report.tiers[0]
    assert sorted(tier1.delisted) == days[:5]
    assert sorted(tier1.protected) == days[5:-3]
    assert live_dates("tier1") == days[5:]


def test_retention_never_deletes_a_day_whose_newer_version_the_mtd_lacks():
    publish_and_bundle("tier2", days_between(date(2026, 11, 1), date(2026, 11, 3)))
    publish_day("tier2", date(2026, 11, 1), rows=99)  # republished after the bundle was built
    report = retention.apply_retention(keep_days=1)
    assert report.tiers[1].protected == [date(2026, 11, 1)]
    assert report.tiers[1].delisted == [date(2026, 11, 2)]


def test_retention_protects_days_of_a_month_without_a_bundle_while_that_month_is_listed():
    publish_day("tier1", date(2026, 10, 30))
    publish_day("tier1", date(2026, 10, 31))
    publish_day("tier1", date(2026, 11, 1))
    report = retention.apply_retention(keep_days=1)
    assert sorted(report.tiers[0].protected) == [date(2026, 10, 30), date(2026, 10, 31)]
    assert report.tiers[0].delisted == []


def test_days_of_a_closed_month_are_not_protected_its_bundle_is_never_listed_again():
    """October has no bundle and November's is listed: October's bundle would never be shown, so
    waiting for it would keep its days on the shelf for ever."""
    publish_day("tier1", date(2026, 10, 30))
    publish_day("tier1", date(2026, 10, 31))
    publish_and_bundle("tier1", [date(2026, 11, 1), date(2026, 11, 2)])
    report = retention.apply_retention(keep_days=1)
    assert report.tiers[0].protected == []
    assert report.tiers[0].delisted == [date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)]


def test_dry_run_changes_nothing_and_reports_what_it_would_do():
    days = days_between(date(2026, 11, 10), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    keys_before = storage.list_keys()
    index_before = storage.read_bytes("index/tier1.json")
    report = retention.apply_retention(dry_run=True)
    assert report.dry_run and sorted(report.tiers[0].delisted) == days[:-7]
    assert storage.list_keys() == keys_before
    assert storage.read_bytes("index/tier1.json") == index_before
    assert live_dates("tier1") == days
    assert not StoredVersion.objects.delisted().exists()


def test_a_run_stopped_between_delisting_and_the_index_leaves_every_indexed_key_in_place_and_a_rerun_heals():
    days = days_between(date(2026, 11, 20), date(2026, 11, 24))
    publish_and_bundle("tier1", days)

    with (
        mock.patch.object(index, "publish_index", side_effect=RuntimeError("killed before the index")),
        pytest.raises(RuntimeError),
    ):
        retention.apply_retention(keep_days=2)
    assert live_dates("tier1") == days[3:], "delisted in the database"
    stale = json.loads(storage.read_bytes("index/tier1.json"))
    assert len(stale["daily"]) == 5, "the index still lists the delisted days..."
    for entry in stale["daily"]:  # ...whose objects are all still there, as listed
        assert storage.size(entry["key"]) == entry["size_bytes"] and storage.exists(entry["manifest_key"])

    report = retention.apply_retention(keep_days=2)
    assert report.delisted_count == 0
    assert json.loads(storage.read_bytes("index/tier1.json"))["daily"] == index.build_index("tier1")["daily"]
    assert [entry["date"] for entry in index.build_index("tier1")["daily"]] == ["2026-11-24", "2026-11-23"]


def test_a_day_delisted_meanwhile_is_not_counted_twice():
    days = days_between(date(2026, 11, 20), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    first = DailyFile.objects.get(tier="tier1", date=days[0])
    assert publish.delist_day(first, NOW) is True
    assert publish.delist_day(first, NOW) is False


def test_a_second_run_has_nothing_to_delist():
    publish_and_bundle("tier1", days_between(date(2026, 11, 10), date(2026, 11, 24)))
    retention.apply_retention()
    assert retention.apply_retention().delisted_count == 0


def test_tiers_are_counted_separately_and_can_be_chosen():
    publish_and_bundle("tier1", days_between(date(2026, 11, 1), date(2026, 11, 10)))
    publish_and_bundle("tier2", days_between(date(2026, 11, 5), date(2026, 11, 10)))
    report = retention.apply_retention(keep_days=3, tiers=["tier2"])
    assert [t.tier for t in report.tiers] == ["tier2"]
    assert len(live_dates("tier1")) == 10
    assert len(live_dates("tier2")) == 3


# --- The S3 leg ----------------------------------------------------------------------------------


@pytest.mark.s3
def test_retention_on_s3_delists_and_keeps_the_objects(s3_storage):
    days = days_between(date(2026, 11, 14), date(2026, 11, 24))
    publish_and_bundle("tier1", days)
    report = retention.apply_retention()
    assert sorted(report.tiers[0].delisted) == days[:4]
    listed = s3_storage.list_objects_v2(Bucket=s3_storage.bucket, Prefix="tier1/daily/")
    dates = sorted({obj["Key"].split("/")[2] for obj in listed["Contents"]})
    assert dates == [day.isoformat() for day in days], "the objects wait for the collector"
    index_file = json.loads(s3_storage.get_object(Bucket=s3_storage.bucket, Key="index/tier1.json")["Body"].read())
    assert [entry["date"] for entry in index_file["daily"]] == [day.isoformat() for day in reversed(days[-7:])]


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
