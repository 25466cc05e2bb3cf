"""build_day: one archive day to three published tiers, exactly as the contract says."""

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
import time_machine
from django.conf import settings

from deliveries import build, sample, storage
from deliveries.models import DailyFile, StoredVersion
from deliveries.outcomes import Outcome
from deliveries.parquet import leaf_profile, profile, readback, splice
from deliveries.tiers import SCHEMAS, Tier
from tests.support.clock import frozen_clock_at
from tests.support.factories import daily_keys, undercount_merged_chunks

pytestmark = pytest.mark.django_db

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


frozen_clock = frozen_clock_at(NOW)


def write(day=DAY, **kwargs):
    kwargs.setdefault("entries_per_hour", 5)
    kwargs.setdefault("samples_per_entry", 6)
    return sample.write_day(settings.ARCHIVE_ROOT, day, **kwargs)


def raw_entries(day=DAY):
    """Every good entry of the day, straight from the JSON, in archive order."""
    entries = []
    folder = settings.ARCHIVE_ROOT / day.strftime("%Y%m%d")
    for path in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(path, "rb") as fh:
            try:
                for raw in fh:
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(obj, dict) and obj.get("symbol"):
                        entries.append(obj)
            except EOFError:
                pass
    return entries


def read_tier(local_storage, tier, day=DAY):
    return pq.read_table(local_storage / daily_keys(tier, day)[0])


def test_each_published_file_has_exactly_its_tier_schema(local_storage):
    write()
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    for tier in Tier:
        assert read_tier(local_storage, tier).schema.equals(SCHEMAS[tier]), tier


def test_each_daily_file_is_one_row_group_with_the_price_samples_plain(local_storage):
    """Tier 3 is written an hour per row group and merged into one: the bundle copies whole days."""
    write()
    assert build.build_day(DAY).outcome == Outcome.PUBLISHED
    for tier in Tier:
        parquet = pq.ParquetFile(local_storage / daily_keys(tier, DAY)[0])
        assert parquet.num_row_groups == 1, tier
        assert parquet.metadata.num_rows == len(raw_entries()), tier
    tier3 = pq.ParquetFile(local_storage / daily_keys("tier3", DAY)[0]).metadata.row_group(0)
    columns = {tier3.column(i).path_in_schema: tier3.column(i) for i in range(tier3.num_columns)}
    samples = columns["spot_prices.list.element.mid"]
    assert not samples.has_dictionary_page and not samples.is_stats_set
    assert columns["symbol"].has_dictionary_page and columns["symbol"].is_stats_set
    assert not list((local_storage.parent).rglob("*.hours.parquet")), "the hour file is removed"


def test_a_failed_merge_of_the_hours_still_publishes_the_day_with_its_hour_row_groups(local_storage, monkeypatch):
    write()
    monkeypatch.setattr(splice, "compact", mock.Mock(side_effect=splice.SpliceError("surprise")))
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    tier3 = pq.ParquetFile(local_storage / daily_keys("tier3", DAY)[0])
    assert tier3.num_row_groups > 1
    assert tier3.metadata.num_rows == len(raw_entries())
    daily = DailyFile.objects.get(tier="tier3", date=DAY)
    assert daily.sha256 == storage.sha256_of(local_storage / daily.key)


def test_a_merged_day_that_does_not_decode_is_published_with_its_hour_row_groups(local_storage, monkeypatch):
    """The merge reads back only its first row; the profile decodes the rest, and what it finds
    wrong sends the day out as its hour row groups, never as the merged file."""
    write()
    undercount_merged_chunks(monkeypatch)
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    tier3 = pq.ParquetFile(local_storage / daily_keys("tier3", DAY)[0])
    assert tier3.num_row_groups > 1
    assert tier3.read().num_rows == len(raw_entries())
    manifest = DailyFile.objects.get(tier="tier3", date=DAY).manifest
    assert manifest["profile"]["symbol"]["count"] == len(raw_entries())


def test_the_merged_day_is_decoded_once_by_its_profile_not_again_by_the_read_back(local_storage, monkeypatch):
    write()
    read_backs, profiled = [], []
    real_check, real_profile = readback.check_reads_back, profile.profile_file

    def check(path, layout, group_rows, **kwargs):
        read_backs.append((Path(path).name, kwargs.get("in_full")))
        return real_check(path, layout, group_rows, **kwargs)

    def profile_file(source, **kwargs):
        profiled.append(Path(source).name)
        return real_profile(source, **kwargs)

    monkeypatch.setattr(splice, "check_reads_back", check)
    monkeypatch.setattr(profile, "profile_file", profile_file)
    assert build.build_day(DAY).outcome == Outcome.PUBLISHED
    assert read_backs == [("tier3.parquet", [False])], "the merged row group decoded to its first row only"
    assert sorted(profiled) == sorted(f"{tier}.parquet" for tier in Tier), "each file profiled, and once"
    manifest = DailyFile.objects.get(tier="tier3", date=DAY).manifest
    assert manifest["profile"] == real_profile(local_storage / daily_keys("tier3", DAY)[0])


def test_the_days_price_samples_are_binned_in_the_profiles_one_read(local_storage, monkeypatch):
    """The ranges of the list leaves are taken while the hours are written (``ListRanges``), so
    even a day too big to keep in memory is not read a second time for its histograms."""
    write(samples_per_entry=20)
    monkeypatch.setattr(profile, "KEEP_BYTES", 0)
    second_reads = []
    real_add_to_histogram = leaf_profile.LeafProfile.add_to_histogram

    def add_to_histogram(self, values):
        second_reads.append(self.path)
        return real_add_to_histogram(self, values)

    monkeypatch.setattr(leaf_profile.LeafProfile, "add_to_histogram", add_to_histogram)
    assert build.build_day(DAY).outcome == Outcome.PUBLISHED
    assert second_reads == []
    manifest = DailyFile.objects.get(tier="tier3", date=DAY).manifest
    assert manifest["profile"]["spot_prices[].mid"]["histogram"]["counts"][0] > 0
    assert manifest["profile"] == profile.profile_file(local_storage / daily_keys("tier3", DAY)[0])
    assert second_reads, "without the build's ranges, the file's own profile reads them again"


def test_a_day_read_fast_and_profiled_never_imports_pandas(tmp_path):
    """pyarrow imports pandas the first time it converts a Python value (about 40 MB in every
    process that builds a day, a backfill's workers included): the fast reader and the profile
    build their few Arrow values from bytes instead. Run in a fresh interpreter, as a worker is."""
    write(entries_per_hour=8, samples_per_entry=12)
    script = f"""
import sys
from datetime import date
from pathlib import Path

import django
django.setup()
from deliveries import daily_file
from deliveries.parquet import archive
from deliveries.tiers import Tier
day = archive.find_day(Path({str(settings.ARCHIVE_ROOT)!r}), date.fromisoformat({DAY.isoformat()!r}))
written = daily_file.write_day_files(day, list(Tier), Path({str(tmp_path)!r})).profile_files()
assert written.hours_fast == 24 and written.row_count > 0, (written.hours_fast, written.row_count)
assert written.profiles[Tier.TIER3]["profile"]["spot_prices[].mid"]["histogram"]
print("pandas" in sys.modules)
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "instrumetriq_site.settings"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_tier1_values_equal_the_json_including_silent_coins_and_null_futures(local_storage):
    write(entries_per_hour=12)
    build.build_day(DAY)
    entries = raw_entries()
    rows = read_tier(local_storage, Tier.TIER1).to_pylist()
    assert len(rows) == len(entries)
    silent_seen = non_silent_seen = 0
    for entry, row in zip(entries, rows, strict=True):
        last = (entry.get("twitter_sentiment_windows") or {}).get("last_cycle") or {}
        activity = last.get("sentiment_activity") or {}
        bucket_meta = (entry.get("twitter_sentiment_meta") or {}).get("bucket_meta") or {}
        assert row["symbol"] == entry["symbol"]
        assert row["snapshot_ts"] == entry["snapshot_ts"]
        assert row["meta_added_ts"] == entry["meta"].get("added_ts")
        assert row["meta_archive_schema_version"] == entry["meta"].get("archive_schema_version")
        assert row["spot_mid"] == pytest.approx(entry["spot_raw"].get("mid"))
        assert row["score_final"] == pytest.approx(entry["scores"].get("final"))
        assert row["sentiment_posts_total"] == last.get("posts_total")
        expected_silent = activity["is_silent"] if "is_silent" in activity else bucket_meta.get("is_silent")
        assert row["sentiment_is_silent"] is expected_silent
        mean = (last.get("hybrid_decision_stats") or {}).get("mean_score")
        assert row["sentiment_mean_score"] == (pytest.approx(mean) if mean is not None else None)
        silent_seen += row["sentiment_is_silent"] is True
        non_silent_seen += row["sentiment_is_silent"] is False
    assert silent_seen and non_silent_seen


def test_tier2_and_tier3_values_equal_the_json_for_sampled_rows(local_storage):
    write(entries_per_hour=12)
    build.build_day(DAY)
    entries = raw_entries()
    tier2 = read_tier(local_storage, Tier.TIER2).to_pylist()
    tier3 = read_tier(local_storage, Tier.TIER3).to_pylist()
    null_futures = with_futures = 0
    for index in range(0, len(entries), 7):
        entry, row2, row3 = entries[index], tier2[index], tier3[index]
        for name, delivered in row2["meta"].items():
            value = entry["meta"].get(name)
            if (
                isinstance(value, float)
                and not value.is_integer()
                and SCHEMAS[Tier.TIER2].field("meta").type.field(name).type == "int64"
            ):
                assert delivered is None, name  # a fraction in an int64 field is nulled, and counted
            elif isinstance(value, int | float) and not isinstance(value, bool):
                assert delivered == pytest.approx(value), name
            else:
                assert delivered == value, name
        assert row2["spot_raw"]["bid"] == pytest.approx(entry["spot_raw"]["bid"])
        bucket_meta = (entry.get("twitter_sentiment_meta") or {}).get("bucket_meta")
        delivered_meta = row2["twitter_sentiment_meta"]
        if bucket_meta:
            assert delivered_meta["bucket_meta"]["coin"] == bucket_meta["coin"]
        elif delivered_meta is not None:
            assert delivered_meta["bucket_meta"] is None
        if entry["futures_raw"] is None:
            assert row3["futures_raw"] is None
            null_futures += 1
        else:
            futures = entry["futures_raw"]
            assert row3["futures_raw"]["contract"] == futures["contract"]
            assert row3["futures_raw"]["open_interest_5m_delta_pct"] == pytest.approx(
                futures["open_interest_1h_delta_pct"]
            )
            with_futures += 1
        prices = entry["spot_prices"]
        assert len(row3["spot_prices"]) == len(prices)
        assert row3["spot_prices"][0]["ts"] == prices[0]["ts"]
        assert row3["spot_prices"][-1]["mid"] == pytest.approx(prices[-1]["mid"])
        assert "norm" not in row3 and "labels" not in row3
    assert null_futures and with_futures


def test_manifest_fields_and_checksum_match_the_bytes(local_storage):
    stats = write()
    build.build_day(DAY)
    for tier in Tier:
        data_key, manifest_key = daily_keys(tier, DAY)
        manifest = json.loads((local_storage / manifest_key).read_text(encoding="utf-8"))
        data = local_storage / data_key
        assert manifest["parquet_sha256"] == storage.sha256_of(data)
        assert manifest["parquet_size_bytes"] == data.stat().st_size
        assert manifest["row_count"] == pq.ParquetFile(data).metadata.num_rows == sum(stats.rows_by_hour.values())
        assert manifest["tier"] == tier and manifest["kind"] == "daily" and manifest["schema_version"] == "v7"
        assert manifest["date_utc"] == "2026-11-20" and manifest["archive_day"] == "20261120"
        assert manifest["filename"] == f"instrumetriq_{tier}_daily_2026-11-20.parquet"
        assert manifest["compression"] == "zstd"
        assert manifest["columns"] == SCHEMAS[tier].names
        assert manifest["hours_expected"] == 24 and manifest["hours_found"] == 24
        assert manifest["missing_hours"] == [] and manifest["is_partial"] is False
        assert manifest["coverage_ratio"] == 1.0
        assert list(manifest["rows_by_hour"]) == [f"{h:02d}" for h in range(24)]
        assert manifest["min_snapshot_ts"] <= manifest["max_snapshot_ts"]
        assert manifest["min_snapshot_ts"].startswith("2026-11-20T")
        assert manifest["symbols"] == len({e["symbol"] for e in raw_entries()})
        assert (local_storage / manifest_key).read_text().startswith('{\n  "tier"')
        row = DailyFile.objects.get(tier=tier, date=DAY)
        assert (row.sha256, row.size_bytes, row.row_count) == (
            manifest["parquet_sha256"],
            manifest["parquet_size_bytes"],
            manifest["row_count"],
        )


def test_partial_day_is_published_and_flagged(local_storage):
    write(missing_hours=(3, 7, 11))
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED
    row = DailyFile.objects.get(tier=Tier.TIER1, date=DAY)
    assert row.is_partial and row.hours_found == 21
    assert row.manifest["missing_hours"] == ["03", "07", "11"]
    assert row.manifest["coverage_ratio"] == 0.875
    assert row.manifest["rows_by_hour"]["03"] == 0


def test_day_below_min_hours_publishes_nothing(settings):
    settings.MIN_HOURS = 20
    write(missing_hours=tuple(range(5)))
    result = build.build_day(DAY)
    assert result.outcome == Outcome.FAILED
    assert "only 19 of 24 hour files" in result.message
    assert result.cause == build.Cause.INPUT
    assert not DailyFile.objects.exists()


def test_missing_day_folder_fails_with_a_clear_message():
    result = build.build_day(DAY)
    assert result.outcome == Outcome.FAILED
    assert "no archive folder for 2026-11-20" in result.message


def test_today_is_refused():
    result = build.build_day(NOW.date())
    assert result.outcome == Outcome.FAILED
    assert "not over yet" in result.message


def test_bad_lines_are_skipped_and_counted_in_the_manifest(local_storage):
    stats = write(flaws=True)
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    manifest = DailyFile.objects.get(tier=Tier.TIER3, date=DAY).manifest
    expected_skipped = sum(stats.skipped_by_hour.values())
    assert expected_skipped >= 3
    assert manifest["skipped_lines"]["total"] == expected_skipped
    assert manifest["skipped_lines"]["by_hour"] == {h: n for h, n in stats.skipped_by_hour.items() if n}
    assert manifest["skipped_lines"]["truncated_hours"]
    assert manifest["row_count"] == sum(stats.rows_by_hour.values())
    assert manifest["is_partial"] is True


def test_rebuilding_the_same_input_is_skipped_and_changes_nothing(local_storage):
    write()
    build.build_day(DAY)
    before = {(d.tier, d.sha256, d.published_at) for d in DailyFile.objects.all()}
    manifest_before = storage.read_bytes(daily_keys("tier1", DAY)[1])
    result = build.build_day(DAY)
    assert result.outcome == Outcome.SKIPPED
    assert "already published from the same input" in result.message
    assert {(d.tier, d.sha256, d.published_at) for d in DailyFile.objects.all()} == before
    assert storage.read_bytes(daily_keys("tier1", DAY)[1]) == manifest_before


def test_force_rebuilds_and_the_data_is_byte_identical(local_storage):
    write()
    build.build_day(DAY)
    first = {d.tier: (d.sha256, d.published_at) for d in DailyFile.objects.all()}
    keys = storage.list_keys("tier1/") + storage.list_keys("tier2/") + storage.list_keys("tier3/")
    data = {key: storage.modified_time(key) for key in keys if key.endswith(".parquet")}
    with time_machine.travel(datetime(2026, 11, 22, 2, 0, tzinfo=UTC), tick=False):
        result = build.build_day(DAY, force=True)
    assert result.outcome == Outcome.PUBLISHED
    second = {d.tier: (d.sha256, d.published_at) for d in DailyFile.objects.all()}
    assert {t: s for t, (s, _) in first.items()} == {t: s for t, (s, _) in second.items()}
    assert all(second[t][1] > first[t][1] for t in first)
    assert storage.list_keys("tier1/") + storage.list_keys("tier2/") + storage.list_keys("tier3/") == keys
    assert {key: storage.modified_time(key) for key in data} == data, "the same version: no data uploaded again"
    assert not StoredVersion.objects.delisted().exists()


def test_changed_input_is_rebuilt_without_force(local_storage):
    write(missing_hours=(5,))
    build.build_day(DAY)
    assert DailyFile.objects.get(tier=Tier.TIER1, date=DAY).is_partial
    write()  # the late hour file arrived
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED
    assert not DailyFile.objects.get(tier=Tier.TIER1, date=DAY).is_partial


def test_storage_failure_between_data_and_manifest_leaves_no_row_and_a_rerun_completes(local_storage):
    write()
    with mock.patch.object(storage, "put_bytes", side_effect=storage.StorageError("storage upload failed: outage")):
        result = build.build_day(DAY)
    assert result.outcome == Outcome.FAILED
    assert result.cause == build.Cause.STORAGE
    assert "outage" in result.message
    assert not DailyFile.objects.exists()
    uploaded = storage.list_keys("tier1/daily/2026-11-20/")
    assert len(uploaded) == 1 and uploaded[0].endswith("/data.parquet")  # bytes, but nobody is shown them
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED
    assert DailyFile.objects.count() == 3


def test_failed_rebuild_leaves_the_previous_rows_untouched(local_storage):
    write()
    build.build_day(DAY)
    before = list(DailyFile.objects.order_by("tier").values_list("tier", "sha256", "published_at"))
    outage = storage.StorageError("storage upload failed: outage")
    with (
        mock.patch.object(storage, "put_file", side_effect=outage),
        mock.patch.object(storage, "put_bytes", side_effect=outage),
    ):
        result = build.build_day(DAY, force=True)
    assert result.outcome == Outcome.FAILED
    assert list(DailyFile.objects.order_by("tier").values_list("tier", "sha256", "published_at")) == before


def test_one_tier_only_builds_that_tier(local_storage):
    write()
    result = build.build_day(DAY, tiers=["tier2"])
    assert result.outcome == Outcome.PUBLISHED
    assert list(DailyFile.objects.values_list("tier", flat=True)) == ["tier2"]


def test_dry_run_writes_nothing(local_storage):
    write(missing_hours=(2,))
    result = build.build_day(DAY, dry_run=True)
    assert result.outcome == Outcome.DRY_RUN
    assert "would build tier1, tier2, tier3 from 23 hour files" in result.message
    assert not DailyFile.objects.exists()
    assert storage.list_keys() == []


@pytest.mark.s3
def test_s3_backend_end_to_end_keys_and_content_types(s3_storage):
    write()
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    listing = s3_storage.list_objects_v2(Bucket=s3_storage.bucket)
    keys = sorted(obj["Key"] for obj in listing["Contents"])
    versioned = sorted(k for tier in Tier for k in daily_keys(tier, DAY))
    assert keys == sorted([*versioned, *(f"index/{tier}.json" for tier in Tier)])
    for tier in Tier:
        sha256 = DailyFile.objects.get(tier=tier, date=DAY).sha256
        assert daily_keys(tier, DAY) == (
            f"{tier}/daily/2026-11-20/{sha256[:16]}/data.parquet",
            f"{tier}/daily/2026-11-20/{sha256[:16]}/manifest.json",
        )
    for tier in Tier:
        data_key, manifest_key = daily_keys(tier, DAY)
        head = s3_storage.head_object(Bucket=s3_storage.bucket, Key=data_key)
        assert head["ContentType"] == storage.PARQUET_CONTENT_TYPE
        assert s3_storage.head_object(Bucket=s3_storage.bucket, Key=manifest_key)["ContentType"] == "application/json"
        body = s3_storage.get_object(Bucket=s3_storage.bucket, Key=data_key)["Body"].read()
        row = DailyFile.objects.get(tier=tier, date=DAY)
        assert len(body) == row.size_bytes
        import hashlib

        assert hashlib.sha256(body).hexdigest() == row.sha256


# --- The archive rules, as subscribers meet them in the published files ----------------------------


def replace_hour(hour, payload, day=DAY):
    (settings.ARCHIVE_ROOT / day.strftime("%Y%m%d") / f"{hour}.jsonl.gz").write_bytes(payload)


def published(local_storage, tier, day=DAY):
    row = DailyFile.objects.get(tier=tier, date=day)
    return row, pq.read_table(local_storage / row.key)


def test_bad_hours_count_as_missing_and_are_listed_with_their_reason(local_storage):
    write()
    replace_hour("05", b"")
    replace_hour("07", b'{"symbol": "AAVE"}\n')  # JSON, not gzipped
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED
    assert "(partial: 22/24 hours, 2 unreadable: 05 empty, 07 not_gzip)" in result.message
    for tier in Tier:
        row, table = published(local_storage, tier)
        manifest = row.manifest
        assert manifest["hours_found"] == row.hours_found == 22
        assert manifest["missing_hours"] == ["05", "07"]
        assert manifest["bad_hours"] == {"05": "empty", "07": "not_gzip"}
        assert manifest["is_partial"] is row.is_partial is True
        assert manifest["coverage_ratio"] == round(22 / 24, 4)
        assert manifest["rows_by_hour"]["05"] == manifest["rows_by_hour"]["07"] == 0
        assert table.num_rows == 22 * 5


def test_junk_hour_files_cannot_make_up_min_hours(settings):
    settings.MIN_HOURS = 20
    write(missing_hours=(0, 1))  # 22 files
    for hour in ("02", "03", "04"):
        replace_hour(hour, b"not gzip at all")
    result = build.build_day(DAY)
    assert result.outcome == Outcome.FAILED and result.cause == build.Cause.INPUT
    assert result.message.startswith("only 19 of 24 hour files, 3 unreadable: 02 not_gzip, 03 not_gzip, 04 not_gzip")
    assert not DailyFile.objects.exists()


def test_junk_in_a_rebuild_loses_nothing_already_published(local_storage, settings):
    """A day published from good files, then its hour files damaged: the rebuild fails, and what
    subscribers were shown (rows, objects, their bytes) is exactly what it was."""
    settings.MIN_HOURS = 20
    write()
    build.build_day(DAY)
    before = {row.tier: (row.key, row.sha256, row.size_bytes, row.published_at) for row in DailyFile.objects.all()}
    for hour in ("00", "01", "02", "03", "04"):
        replace_hour(hour, b"")
    result = build.build_day(DAY)  # new input (sizes changed): a rebuild is attempted without --force
    assert result.outcome == Outcome.FAILED
    after = {row.tier: (row.key, row.sha256, row.size_bytes, row.published_at) for row in DailyFile.objects.all()}
    assert after == before
    for key, sha256, size, _ in after.values():
        assert storage.sha256_of(local_storage / key) == sha256 and (local_storage / key).stat().st_size == size


def test_archive_flaws_are_published_once_with_every_count_in_the_manifest(local_storage):
    stats = write(archive_flaws=True)
    assert stats.bad_hours and stats.conflicting_duplicates == 1
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED, result.message
    assert "1 entries share a symbol and time with a different entry" in result.message
    duplicates = sum(1 for _, kind in stats.bad_lines if kind == "duplicate")
    assert duplicates >= 2 + 5  # two replayed lines, and a copied hour's five
    for tier in Tier:
        row, table = published(local_storage, tier)
        manifest = row.manifest
        assert manifest["bad_hours"] == stats.bad_hours
        assert manifest["hours_found"] == stats.hours_found == 22
        assert manifest["row_count"] == table.num_rows == stats.rows
        assert manifest["rows_by_hour"] == {f"{h:02d}": stats.rows_by_hour.get(f"{h:02d}", 0) for h in range(24)}
        assert manifest["skipped_lines"]["by_reason"] == {"duplicate": duplicates, "wrong_type": 1}
        assert manifest["skipped_lines"]["by_hour"] == {h: n for h, n in stats.skipped_by_hour.items() if n}
        assert manifest["conflicting_duplicates"] == 1
    _, table = published(local_storage, Tier.TIER3)
    keys = list(zip(table["symbol"].to_pylist(), table["snapshot_ts"].to_pylist(), strict=True))
    assert None not in {k for key in keys for k in key}  # the mistyped entry is not a row with a null key
    repeated = {key for key in keys if keys.count(key) > 1}
    assert len(repeated) == 1  # the conflicting pair, and nothing else, shares a key
    scores = [s["final"] for s, key in zip(table["scores"].to_pylist(), keys, strict=True) if key in repeated]
    assert len(set(scores)) == 2  # both versions


def test_over_long_lines_are_skipped_and_counted(local_storage, settings):
    write()
    big = dict(raw_entries()[0], snapshot_ts="2026-11-20T00:59:59.999Z")
    big["spot_prices"] = big["spot_prices"] * 40
    line = json.dumps(big).encode()
    settings.MAX_LINE_BYTES = len(line) - 1
    folder = settings.ARCHIVE_ROOT / "20261120"
    (folder / "00.jsonl.gz").write_bytes((folder / "00.jsonl.gz").read_bytes() + gzip.compress(line + b"\n"))
    result = build.build_day(DAY)
    assert result.outcome == Outcome.PUBLISHED
    manifest = DailyFile.objects.get(tier=Tier.TIER1, date=DAY).manifest
    assert manifest["skipped_lines"]["by_reason"] == {"line_too_long": 1}
    assert manifest["skipped_lines"]["by_hour"] == {"00": 1}
    assert manifest["row_count"] == 24 * 5
