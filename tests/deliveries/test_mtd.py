"""Month-to-date bundles: built from the published days, streamed, exactly the tier's schema."""

import hashlib
import io
import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from unittest import mock

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import time_machine

from deliveries import mtd, publish, retention, storage
from deliveries.models import DailyFile, MonthBundle
from deliveries.parquet import encoding, profile, splice
from deliveries.tiers import SCHEMA_VERSION, Tier, schema_for
from tests.support.factories import (
    daily_manifest,
    dense_table,
    mtd_keys,
    publish_daily,
    publish_day,
    tier_table,
    written_by,
)

pytestmark = pytest.mark.django_db

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)


def rows_for(day):
    """A different row count each day, so a misplaced or doubled day shows."""
    return 3 + day.day % 5


def publish_days(tier, days, **kwargs):
    return [publish_day(tier, day, rows=kwargs.get("rows", rows_for(day))) for day in days]


def days_between(first, last):
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def read_bundle(tier, month):
    return pq.read_table(io.BytesIO(storage.read_bytes(mtd_keys(tier, month)[0])))


def read_manifest(tier, month):
    return json.loads(storage.read_bytes(mtd_keys(tier, month)[1]))


def expected_table(tier, days):
    return pa.concat_tables([tier_table(tier, day, rows_for(day)) for day in days])


def publish_custom(tier, day, table, row_group_size=None):
    """Publish a day whose Parquet is ``table`` as given (any schema, any row groups)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        pq.write_table(table, path, compression="zstd", row_group_size=row_group_size)
        manifest = daily_manifest(tier, day, path, table.num_rows)
        return publish_daily(tier, day, path, manifest, input_fingerprint="custom")


# --- A whole month, night by night ---------------------------------------------------------------


def test_a_whole_month_night_by_night_with_a_missing_day_a_partial_day_and_the_month_boundary():
    """The nightly sequence: publish yesterday, build the due bundles, apply retention.

    Nov 10 never arrives, Nov 15 is partial. Retention deletes daily files past the newest 7, so
    from mid-month on the early days live only in the bundle, which must carry them forward.
    """
    tier = "tier1"
    missing, partial = date(2026, 11, 10), date(2026, 11, 15)
    published = []
    for today in days_between(date(2026, 11, 1), date(2026, 12, 2)):
        yesterday = today - timedelta(days=1)
        with time_machine.travel(datetime(today.year, today.month, today.day, 0, 30, tzinfo=UTC), tick=False):
            if yesterday >= NOV and yesterday != missing:
                publish_day(tier, yesterday, rows=rows_for(yesterday), hours_found=21 if yesterday == partial else 24)
                published.append(yesterday)
            results = mtd.build_months([tier])
            retention.apply_retention()

        if today == NOV:  # the 1st, nothing published in November yet: no bundle from zero days
            assert results == []
            assert not MonthBundle.objects.exists()
            continue
        month = mtd.month_start(yesterday)
        assert [(r.month, r.outcome) for r in results] == [(month, "built")]
        bundle = MonthBundle.objects.get(tier=tier, month=month)
        in_month = [day for day in published if mtd.month_start(day) == month]
        assert bundle.days_included == [day.isoformat() for day in in_month]
        assert bundle.coverage_start == month and bundle.coverage_end == yesterday
        assert bundle.row_count == sum(rows_for(day) for day in in_month)
        assert read_bundle(tier, month).equals(expected_table(tier, in_month))
        assert DailyFile.objects.published().count() == min(len(published), 7)

    november = MonthBundle.objects.get(tier=tier, month=NOV)
    assert november.coverage_end == date(2026, 11, 30), "the 1st completes the month with its last day"
    assert november.days_missing == ["2026-11-10"]
    assert november.partial_days == ["2026-11-15"]
    assert len(november.days_included) == 29
    december = MonthBundle.objects.get(tier=tier, month=DEC)
    assert december.days_included == ["2026-12-01"], "the new month appears with its first day"
    assert read_bundle(tier, NOV).equals(expected_table(tier, [d for d in published if d.month == 11]))


def test_on_the_1st_the_previous_month_is_completed_and_no_new_month_bundle_appears():
    publish_days("tier2", days_between(date(2026, 11, 27), date(2026, 11, 30)))
    with time_machine.travel(datetime(2026, 12, 1, 0, 40, tzinfo=UTC), tick=False):
        assert mtd.months_to_build() == [NOV]
        results = mtd.build_months(["tier2"])
    assert [(r.tier, r.month, r.outcome) for r in results] == [("tier2", NOV, "built")]
    assert MonthBundle.objects.get(tier="tier2", month=NOV).coverage_end == date(2026, 11, 30)
    assert not MonthBundle.objects.filter(month=DEC).exists()


# --- Schema and content --------------------------------------------------------------------------


@pytest.mark.parametrize("tier", Tier.values)
def test_bundle_schema_equals_the_tiers_schema_and_rows_equal_the_daily_files_concatenated(tier):
    days = days_between(date(2026, 11, 3), date(2026, 11, 6))
    publish_days(tier, days)
    result = mtd.build_month(tier, NOV, today=date(2026, 11, 7))
    assert result.outcome == "built" and result.rows == sum(rows_for(d) for d in days)
    table = read_bundle(tier, NOV)
    assert table.schema.equals(schema_for(tier))
    assert table.equals(expected_table(tier, days))


def test_a_day_with_another_but_compatible_schema_is_conformed_to_the_tiers_schema():
    """Columns out of order, one missing, one unknown, an int in a double field: the bundle still
    has exactly the tier's schema; the missing column is null, the unknown one dropped."""
    tier, day = "tier1", date(2026, 11, 4)
    exact = tier_table(tier, day, 4)
    odd = pa.table(
        {
            "snapshot_ts": exact.column("snapshot_ts"),
            "symbol": exact.column("symbol"),
            "meta_duration_sec": pa.array([1, 2, 3, 4], pa.int64()),
            "not_in_contract": pa.array(["x"] * 4),
        }
    )
    publish_day(tier, date(2026, 11, 3), rows=2)
    publish_custom(tier, day, odd)
    result = mtd.build_month(tier, NOV, today=date(2026, 11, 5))
    assert result.outcome == "built", result.message
    table = read_bundle(tier, NOV)
    assert table.schema.equals(schema_for(tier))
    assert table.column("meta_duration_sec").to_pylist() == [None, None, 1.0, 2.0, 3.0, 4.0]
    assert table.column("score_final").null_count == 6


def test_a_day_whose_values_do_not_fit_the_tiers_types_fails_the_month_and_publishes_nothing():
    tier, day = "tier1", date(2026, 11, 4)
    bad = tier_table(tier, day, 2).set_column(4, "meta_duration_sec", pa.array(["fast", "slow"]))
    publish_custom(tier, day, bad)
    result = mtd.build_month(tier, NOV, today=date(2026, 11, 5))
    assert result.outcome == "failed"
    assert "meta_duration_sec" in result.message and "2026-11-04" in result.message
    assert not MonthBundle.objects.exists()
    assert storage.list_keys("tier1/mtd/") == []


def test_manifest_has_the_contracts_mtd_keys_and_each_days_hash_and_rows():
    first = publish_day("tier3", date(2026, 11, 2), rows=5)
    partial = publish_day("tier3", date(2026, 11, 4), rows=3, hours_found=20)
    with time_machine.travel(datetime(2026, 11, 6, 0, 45, tzinfo=UTC), tick=False):
        mtd.build_month("tier3", NOV)
    manifest = read_manifest("tier3", NOV)
    bundle = MonthBundle.objects.get()
    assert manifest == bundle.manifest
    assert manifest["tier"] == "tier3" and manifest["kind"] == "mtd" and manifest["month"] == "2026-11"
    assert manifest["schema_version"] == SCHEMA_VERSION
    assert manifest["build_ts_utc"] == "2026-11-06T00:45:00Z"
    assert manifest["row_count"] == 8
    assert manifest["parquet_sha256"] == storage.sha256_of(storage.local_path(bundle.key)) == bundle.sha256
    assert manifest["parquet_size_bytes"] == storage.size(bundle.key) == bundle.size_bytes
    assert manifest["filename"] == "instrumetriq_tier3_mtd_2026-11.parquet" == bundle.download_filename
    assert manifest["compression"] == "zstd"
    assert manifest["columns"] == schema_for("tier3").names
    assert (manifest["coverage_start_date"], manifest["coverage_end_date"]) == ("2026-11-01", "2026-11-05")
    assert manifest["days_included"] == ["2026-11-02", "2026-11-04"]
    assert manifest["days_missing"] == ["2026-11-01", "2026-11-03", "2026-11-05"]
    assert manifest["partial_days"] == ["2026-11-04"]
    assert manifest["days"] == [
        {"date": "2026-11-02", "parquet_sha256": first.sha256, "row_count": 5, "is_partial": False},
        {"date": "2026-11-04", "parquet_sha256": partial.sha256, "row_count": 3, "is_partial": True},
    ]
    assert storage.read_bytes(bundle.manifest_key).startswith(b'{\n  "tier": "tier3"')


def publish_small_row_groups(tier):
    for offset, rows in enumerate((7, 5)):
        day = date(2026, 11, 2 + offset)
        publish_custom(tier, day, tier_table(tier, day, rows), row_group_size=2)


def bundle_row_groups(tier):
    bundle = pq.ParquetFile(io.BytesIO(storage.read_bytes(mtd_keys(tier, NOV)[0])))
    return [bundle.metadata.row_group(i).num_rows for i in range(bundle.num_row_groups)]


def without_the_bundles_profile(monkeypatch):
    """The bundle's profile reads the bundle once it is written (tests/deliveries/parquet/test_profile.py); what the
    tests using this prove is that no daily file is decoded to write it."""
    monkeypatch.setattr(profile, "profile_file", lambda source, ranges=None: {})


def count_decoded_rows(monkeypatch):
    """Every row pyarrow decodes from any Parquet file, by each way ``ParquetFile`` reads, counted
    in the list returned (``pq.read_table`` is refused)."""
    decoded = []

    def counting(read):
        def wrapper(self, *args, **kwargs):
            table = read(self, *args, **kwargs)
            decoded.append(table.num_rows)
            return table

        return wrapper

    def counting_batches(self, *args, **kwargs):
        for batch in iter_batches(self, *args, **kwargs):
            decoded.append(batch.num_rows)
            yield batch

    for name in ("read", "read_row_group", "read_row_groups"):
        monkeypatch.setattr(pq.ParquetFile, name, counting(getattr(pq.ParquetFile, name)))
    iter_batches = pq.ParquetFile.iter_batches
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", counting_batches)
    monkeypatch.setattr(pq, "read_table", mock.Mock(side_effect=AssertionError("decoded: read_table")))
    return decoded


def test_days_of_the_tier_schema_are_copied_not_decoded(monkeypatch):
    """The days' column chunks are copied byte for byte: no row of a daily file is decoded. The
    only rows decoded are the bundle's, read back before publishing: each row group's first row
    (its chunks are copied whole, so that proves their offsets)."""
    publish_days("tier3", [date(2026, 11, 2), date(2026, 11, 3)])
    without_the_bundles_profile(monkeypatch)
    decoded = count_decoded_rows(monkeypatch)
    result = mtd.build_month("tier3", NOV, today=date(2026, 11, 4))
    assert result.outcome == "built", result.message
    assert decoded == [1, 1]
    monkeypatch.undo()
    assert read_bundle("tier3", NOV).equals(expected_table("tier3", [date(2026, 11, 2), date(2026, 11, 3)]))


def test_a_daily_file_of_another_pyarrow_version_is_encoded_again_not_copied(monkeypatch):
    """Its chunks would otherwise sit under a footer naming the installed pyarrow as their writer."""
    old, new = date(2026, 11, 2), date(2026, 11, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        pq.write_table(tier_table("tier3", old, rows_for(old)), path, **encoding.writer_options("tier3"))
        written_by(path, b"parquet-cpp-arrow version 19.0.1")
        manifest = daily_manifest("tier3", old, path, rows_for(old))
        publish_daily("tier3", old, path, manifest, input_fingerprint="pyarrow 19")
    publish_days("tier3", [new])
    without_the_bundles_profile(monkeypatch)
    decoded = count_decoded_rows(monkeypatch)
    result = mtd.build_month("tier3", NOV, today=date(2026, 11, 4))
    assert result.outcome == "built", result.message
    assert decoded == [rows_for(old), 1, 1]  # the old day, then the read-back; the new day is copied
    monkeypatch.undo()
    bundle = pq.ParquetFile(io.BytesIO(storage.read_bytes(mtd_keys("tier3", NOV)[0])))
    assert bundle.metadata.created_by == f"parquet-cpp-arrow version {pa.__version__}"
    assert bundle.read().equals(expected_table("tier3", [old, new]))


def test_each_day_is_one_row_group_of_the_bundle_whatever_its_own_row_groups():
    publish_small_row_groups("tier3")
    assert mtd.build_month("tier3", NOV, today=date(2026, 11, 4)).outcome == "built"
    assert bundle_row_groups("tier3") == [7, 5]
    assert read_bundle("tier3", NOV).equals(
        pa.concat_tables([tier_table("tier3", date(2026, 11, 2), 7), tier_table("tier3", date(2026, 11, 3), 5)])
    )


def test_columns_encoded_again_stay_within_the_memory_bound(monkeypatch):
    """A day whose small row groups cannot be merged as they are (dictionaries, statistics) is
    encoded again a bounded group at a time: with a 1-byte bound, a row group each."""
    publish_small_row_groups("tier3")
    monkeypatch.setattr(splice, "SIDE_BYTES", 1)
    assert mtd.build_month("tier3", NOV, today=date(2026, 11, 4)).outcome == "built"
    assert bundle_row_groups("tier3") == [2, 2, 2, 1, 2, 2, 1]
    assert read_bundle("tier3", NOV).num_rows == 12


def test_a_read_error_while_copying_fails_the_month_cleanly(monkeypatch):
    publish_small_row_groups("tier1")
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", mock.Mock(side_effect=OSError("disk on fire")))
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert (result.outcome, result.message) == ("failed", "OSError: disk on fire")
    assert not MonthBundle.objects.exists()


def test_daily_temp_files_are_deleted_after_use(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    publish_days("tier1", [date(2026, 11, 2), date(2026, 11, 3)])
    assert mtd.build_month("tier1", NOV, today=date(2026, 11, 4)).outcome == "built"
    assert list((tmp_path / "tmp").iterdir()) == []


# --- What gets built and when --------------------------------------------------------------------


def test_a_month_is_never_built_from_zero_days():
    assert mtd.build_month("tier1", NOV, today=date(2026, 11, 20)).outcome == "no_days"
    publish_day("tier1", date(2026, 11, 1))
    assert mtd.build_month("tier1", NOV, today=date(2026, 11, 1)).outcome == "no_days", "the 1st is not yet due"
    assert not MonthBundle.objects.exists()
    assert storage.list_keys("tier1/mtd/") == []


def test_days_from_today_on_are_not_included():
    publish_days("tier1", [date(2026, 11, 2), date(2026, 11, 3)])
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 3))
    assert result.days_included == ["2026-11-02"]


def test_deleted_days_the_bundle_never_held_are_missing_not_included():
    daily = publish_day("tier1", date(2026, 11, 2))
    publish_day("tier1", date(2026, 11, 3))
    DailyFile.objects.filter(pk=daily.pk).update(deleted_at=datetime(2026, 11, 3, tzinfo=UTC))
    mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert MonthBundle.objects.get().days_missing == ["2026-11-01", "2026-11-02"]


def test_months_to_build_is_the_current_month_once_it_has_a_day_and_the_previous_on_the_1st():
    assert mtd.months_to_build(date(2026, 11, 15)) == []
    publish_day("tier1", date(2026, 11, 14))
    assert mtd.months_to_build(date(2026, 11, 14)) == [], "a day of today is not due"
    assert mtd.months_to_build(date(2026, 11, 15)) == [NOV]
    publish_day("tier1", date(2026, 11, 30))
    assert mtd.months_to_build(date(2026, 12, 1)) == [NOV]
    publish_day("tier1", date(2026, 12, 1))
    mtd.build_months(today=date(2026, 12, 1))
    assert mtd.months_to_build(date(2026, 12, 2)) == [DEC]


def test_a_previous_month_that_still_lacks_a_day_is_rebuilt_after_the_1st():
    """If the run on the 1st failed, the next night completes the month that just ended."""
    publish_days("tier1", [date(2026, 11, 29)])
    mtd.build_months(today=date(2026, 11, 30))
    publish_day("tier1", date(2026, 11, 30))
    publish_day("tier1", date(2026, 12, 1))
    assert mtd.months_to_build(date(2026, 12, 2)) == [NOV, DEC]
    results = mtd.build_months(["tier1"], today=date(2026, 12, 2))
    assert [(r.month, r.outcome) for r in results] == [(NOV, "built"), (DEC, "built")]
    assert MonthBundle.objects.get(month=NOV).days_included == ["2026-11-29", "2026-11-30"]


def test_unchanged_days_are_not_rebuilt_unless_forced():
    publish_days("tier2", [date(2026, 11, 2), date(2026, 11, 3)])
    assert mtd.build_month("tier2", NOV, today=date(2026, 11, 4)).outcome == "built"
    built_at = MonthBundle.objects.get().built_at
    again = mtd.build_month("tier2", NOV, today=date(2026, 11, 4))
    assert again.outcome == "unchanged" and again.days_included == ["2026-11-02", "2026-11-03"]
    assert MonthBundle.objects.get().built_at == built_at
    assert mtd.build_month("tier2", NOV, today=date(2026, 11, 4), force=True).outcome == "built"


def test_a_republished_day_or_a_missing_object_triggers_a_rebuild():
    publish_days("tier2", [date(2026, 11, 2), date(2026, 11, 3)])
    mtd.build_month("tier2", NOV, today=date(2026, 11, 4))
    publish_day("tier2", date(2026, 11, 3), rows=11)  # new version, new sha256
    assert mtd.build_month("tier2", NOV, today=date(2026, 11, 4)).outcome == "built"
    assert read_bundle("tier2", NOV).num_rows == rows_for(date(2026, 11, 2)) + 11
    storage.delete(mtd_keys("tier2", NOV)[1])
    assert mtd.build_month("tier2", NOV, today=date(2026, 11, 4)).outcome == "built"
    assert storage.exists(mtd_keys("tier2", NOV)[1])


def test_a_missing_day_moves_the_coverage_end_and_is_listed_missing():
    publish_days("tier1", [date(2026, 11, 2)])
    mtd.build_month("tier1", NOV, today=date(2026, 11, 3))
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))  # Nov 3 never came
    assert result.outcome == "built"
    bundle = MonthBundle.objects.get()
    assert bundle.coverage_end == date(2026, 11, 3)
    assert bundle.days_missing == ["2026-11-01", "2026-11-03"]


def test_dry_run_reports_and_writes_nothing():
    publish_days("tier1", [date(2026, 11, 2), date(2026, 11, 3)])
    results = mtd.build_months(["tier1"], today=date(2026, 11, 4), dry_run=True)
    assert [(r.outcome, r.days_included, r.rows) for r in results] == [
        ("dry_run", ["2026-11-02", "2026-11-03"], rows_for(date(2026, 11, 2)) + rows_for(date(2026, 11, 3)))
    ]
    assert not MonthBundle.objects.exists()
    assert storage.list_keys("tier1/mtd/") == []


# --- Verification and failure --------------------------------------------------------------------


def test_a_daily_file_whose_sha256_differs_fails_the_month_and_publishes_nothing():
    publish_days("tier1", [date(2026, 11, 2)])
    daily = publish_day("tier1", date(2026, 11, 3))
    storage.put_bytes(daily.key, b"not the published bytes", storage.PARQUET_CONTENT_TYPE)
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert result.outcome == "failed"
    assert "tier1 2026-11-03" in result.message and "sha256" in result.message
    assert not MonthBundle.objects.exists()
    assert storage.list_keys("tier1/mtd/") == []


def test_a_failed_rebuild_leaves_the_previous_bundle_row_and_objects_as_they_were():
    publish_days("tier1", [date(2026, 11, 2)])
    mtd.build_month("tier1", NOV, today=date(2026, 11, 3))
    before = MonthBundle.objects.get()
    data_before = storage.read_bytes(before.key)
    daily = publish_day("tier1", date(2026, 11, 3))
    storage.delete(daily.key)
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert result.outcome == "failed"
    assert f"storage read of {daily.key} failed" in result.message
    after = MonthBundle.objects.get()
    assert (after.sha256, after.days_included, after.built_at) == (before.sha256, ["2026-11-02"], before.built_at)
    assert storage.read_bytes(before.key) == data_before


def test_the_bundle_row_changes_only_after_data_and_manifest_are_both_stored_and_a_rerun_completes():
    publish_days("tier1", [date(2026, 11, 2)])
    mtd.build_month("tier1", NOV, today=date(2026, 11, 3))
    before = MonthBundle.objects.get()
    publish_day("tier1", date(2026, 11, 3))
    failing = mock.patch.object(storage, "put_bytes", side_effect=storage.StorageError("manifest upload failed"))
    with failing:
        result = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert (result.outcome, result.message) == ("failed", "manifest upload failed")
    after = MonthBundle.objects.get()
    assert (after.sha256, after.days_included) == (before.sha256, ["2026-11-02"])
    rerun = mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    assert rerun.outcome == "built"
    bundle = MonthBundle.objects.get()
    assert bundle.days_included == ["2026-11-02", "2026-11-03"]
    assert read_manifest("tier1", NOV)["parquet_sha256"] == bundle.sha256
    assert hashlib.sha256(storage.read_bytes(bundle.key)).hexdigest() == bundle.sha256


def test_one_tier_failing_does_not_stop_the_others():
    publish_days("tier1", [date(2026, 11, 2)])
    publish_days("tier2", [date(2026, 11, 2)])
    storage.delete(DailyFile.objects.get(tier="tier1").key)
    results = mtd.build_months(["tier1", "tier2"], today=date(2026, 11, 3))
    assert [(r.tier, r.outcome) for r in results] == [("tier1", "failed"), ("tier2", "built")]


# --- Carrying days forward once retention has deleted their daily files --------------------------


def test_days_whose_daily_files_retention_deleted_are_carried_forward_from_the_bundle():
    days = days_between(date(2026, 11, 1), date(2026, 11, 9))
    publish_days("tier3", days[:-1])
    mtd.build_month("tier3", NOV, today=date(2026, 11, 9))
    report = retention.apply_retention(keep_days=3)
    assert sorted(report.tiers[2].delisted) == days[:5]
    publish_days("tier3", days[-1:])
    result = mtd.build_month("tier3", NOV, today=date(2026, 11, 10))
    assert result.outcome == "built"
    assert result.days_included == [day.isoformat() for day in days]
    assert read_bundle("tier3", NOV).equals(expected_table("tier3", days))


def test_a_carried_day_republished_later_takes_its_new_version():
    days = days_between(date(2026, 11, 1), date(2026, 11, 4))
    publish_days("tier1", days)
    mtd.build_month("tier1", NOV, today=date(2026, 11, 5))
    retention.apply_retention(keep_days=1)
    publish_day("tier1", date(2026, 11, 2), rows=9)  # rebuilt from the archive, new content
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 5))
    assert result.outcome == "built"
    expected = pa.concat_tables(
        [tier_table("tier1", day, 9 if day == date(2026, 11, 2) else rows_for(day)) for day in days]
    )
    assert read_bundle("tier1", NOV).equals(expected)


def test_a_corrupt_bundle_that_must_carry_days_fails_and_keeps_the_previous_row():
    publish_days("tier1", days_between(date(2026, 11, 1), date(2026, 11, 3)))
    mtd.build_month("tier1", NOV, today=date(2026, 11, 4))
    retention.apply_retention(keep_days=1)
    before = MonthBundle.objects.get()
    storage.put_bytes(before.key, b"garbage", storage.PARQUET_CONTENT_TYPE)
    publish_day("tier1", date(2026, 11, 4))
    result = mtd.build_month("tier1", NOV, today=date(2026, 11, 5))
    assert result.outcome == "failed" and "current bundle" in result.message
    assert MonthBundle.objects.get().days_included == before.days_included


def publish_dense(tier, day, rows, seed):
    """A day with every column filled, written as the daily builder writes it (a row group an
    hour, merged into one), so the bundle copies real pages of every encoding."""
    table = dense_table(tier, rows, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        hours, path = Path(tmp) / "hours.parquet", Path(tmp) / "data.parquet"
        with pq.ParquetWriter(hours, table.schema, **encoding.writer_options(tier)) as writer:
            for start in range(0, rows, 4):
                writer.write_table(table.slice(start, 4))
        splice.compact(hours, path, encoding.layout(tier))
        publish_daily(tier, day, path, daily_manifest(tier, day, path, rows), input_fingerprint="dense")
    return table


@pytest.mark.parametrize("tier", Tier.values)
def test_dense_days_copied_from_daily_files_and_carried_from_the_bundle_keep_every_value(tier):
    days = days_between(date(2026, 11, 1), date(2026, 11, 5))
    tables = [publish_dense(tier, day, rows=6 + i, seed=i) for i, day in enumerate(days[:4])]
    assert mtd.build_month(tier, NOV, today=date(2026, 11, 5)).outcome == "built"
    retention.apply_retention(keep_days=1)
    tables.append(publish_dense(tier, days[4], rows=9, seed=9))
    result = mtd.build_month(tier, NOV, today=date(2026, 11, 6))
    assert result.outcome == "built", result.message
    assert read_bundle(tier, NOV).equals(pa.concat_tables(tables))
    assert bundle_row_groups(tier) == [6, 7, 8, 9, 9]


def test_days_carried_from_the_bundle_are_copied_not_decoded(monkeypatch):
    days = days_between(date(2026, 11, 1), date(2026, 11, 4))
    publish_days("tier3", days[:3])
    mtd.build_month("tier3", NOV, today=date(2026, 11, 4))
    retention.apply_retention(keep_days=1)
    publish_days("tier3", days[3:])
    without_the_bundles_profile(monkeypatch)
    decoded = count_decoded_rows(monkeypatch)
    result = mtd.build_month("tier3", NOV, today=date(2026, 11, 5))
    assert result.outcome == "built", result.message
    assert decoded == [1] * len(days)  # the read-back of the new bundle, nothing of the old one
    monkeypatch.undo()
    assert read_bundle("tier3", NOV).equals(expected_table("tier3", days))


def test_days_carried_from_a_bundle_whose_row_groups_span_days_are_still_exact():
    """A bundle written with row groups across day boundaries (as an earlier version did): the
    carried days are cut out of its row groups by row and encoded again."""
    tier = "tier2"
    days = days_between(date(2026, 11, 1), date(2026, 11, 4))
    dailies = publish_days(tier, days[:3])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "old.parquet"
        pq.write_table(expected_table(tier, days[:3]), path, row_group_size=5)
        assert pq.ParquetFile(path).num_row_groups > 1
        rows = sum(rows_for(day) for day in days[:3])
        built_at = datetime(2026, 11, 4, 0, 40, tzinfo=UTC)
        manifest = mtd.mtd_manifest(tier, NOV, days[0], days[2], dailies, rows, path, built_at)
        publish.publish_month(tier, NOV, path, manifest, built_at=built_at)
    retention.apply_retention(keep_days=1)
    publish_days(tier, days[3:])
    result = mtd.build_month(tier, NOV, today=date(2026, 11, 5))
    assert result.outcome == "built", result.message
    assert result.days_included == [day.isoformat() for day in days]
    assert read_bundle(tier, NOV).equals(expected_table(tier, days))


# --- The S3 leg ----------------------------------------------------------------------------------


@pytest.mark.s3
def test_bundle_builds_and_carries_days_forward_on_s3(s3_storage):
    days = days_between(date(2026, 11, 1), date(2026, 11, 4))
    publish_days("tier3", days[:3])
    assert mtd.build_month("tier3", NOV, today=date(2026, 11, 4)).outcome == "built"
    retention.apply_retention(keep_days=1)
    publish_days("tier3", days[3:])
    result = mtd.build_month("tier3", NOV, today=date(2026, 11, 5))
    assert result.outcome == "built", result.message
    data_key, manifest_key = mtd_keys("tier3", NOV)
    body = s3_storage.get_object(Bucket=s3_storage.bucket, Key=data_key)["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.equals(schema_for("tier3"))
    assert table.equals(expected_table("tier3", days))
    manifest = json.loads(s3_storage.get_object(Bucket=s3_storage.bucket, Key=manifest_key)["Body"].read())
    assert manifest["days_included"] == [day.isoformat() for day in days]
    assert mtd.build_month("tier3", NOV, today=date(2026, 11, 5)).outcome == "unchanged"
