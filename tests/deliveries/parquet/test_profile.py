"""Column profiles and row previews: every leaf, figures checked against numpy and plain Python,
the same profile whatever the row groups, bounded reads, and the preview's cuts and size bound."""

import io
import json
import math
import statistics
from datetime import UTC, date, datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import time_machine

from deliveries import build, mtd, sample, storage
from deliveries.models import DailyFile, MonthBundle
from deliveries.parquet import encoding, leaf_profile, profile
from deliveries.parquet import preview as previews
from deliveries.tiers import Tier, schema_for
from tests.support.factories import dense_table, publish_day


def parquet_bytes(table, **options):
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def profile_of(table, **options):
    return profile.profile_file(io.BytesIO(parquet_bytes(table, **options)))


def manifest_path(parquet_path):
    """A Parquet column path as the manifest names it (the paths of ``coerced_values``)."""
    return parquet_path.replace(".list.element", "[]")


def values_at(rows, path):
    """A leaf's values in rows of Python objects, walked by hand: a null list has no values, a
    null struct makes its children null."""

    def walk(value, parts):
        if not parts:
            return [value]
        if value is None:
            return [] if any(part.endswith("[]") for part in parts) else [None]
        name = parts[0]
        if name.endswith("[]"):
            items = value[name[:-2]] if isinstance(value, dict) else value
            if items is None:
                return []
            return [leaf for item in items for leaf in walk(item, parts[1:])]
        return walk(value[name], parts[1:])

    parts = path.split(".")
    out = []
    for row in rows:
        out.extend(walk(row, parts))
    return out


@pytest.mark.parametrize("tier", Tier.values)
def test_every_leaf_column_is_profiled_under_its_coerced_values_path(tier):
    table = dense_table(tier, 30, seed=1)
    data = parquet_bytes(table, **encoding.writer_options(tier))
    result = profile.profile_file(io.BytesIO(data))
    parquet_schema = pq.ParquetFile(io.BytesIO(data)).schema
    assert list(result) == [manifest_path(parquet_schema.column(i).path) for i in range(len(parquet_schema))]
    rows = table.to_pylist()
    for path, figures in result.items():
        values = values_at(rows, path)
        assert (figures["count"], figures["null_count"]) == (len(values), values.count(None)), path


def test_number_figures_match_numpy_and_the_histogram_counts_every_value():
    table = dense_table("tier1", 400, seed=3)
    figures = profile_of(table)["spot_mid"]
    values = [v for v in table.column("spot_mid").to_pylist() if v is not None]
    assert figures["count"] == 400
    assert figures["null_count"] == 400 - len(values)
    assert figures["null_proportion"] == round((400 - len(values)) / 400, 6)
    assert (figures["min"], figures["max"]) == (min(values), max(values))
    assert figures["mean"] == pytest.approx(statistics.fmean(values), rel=1e-5)
    assert figures["std"] == pytest.approx(statistics.pstdev(values), rel=1e-5)
    histogram = figures["histogram"]
    assert len(histogram["edges"]) == 11 and len(histogram["counts"]) == 10
    assert (histogram["edges"][0], histogram["edges"][-1]) == (min(values), max(values))
    expected, _ = np.histogram(values, bins=10, range=(min(values), max(values)))
    assert histogram["counts"] == expected.tolist()
    assert sum(histogram["counts"]) == len(values)


def test_integers_keep_integer_bounds():
    table = pa.table({"n": pa.array([5, None, 1, 9, 9], pa.int64())})
    figures = profile_of(table)["n"]
    assert (figures["min"], figures["max"]) == (1, 9)
    assert isinstance(figures["min"], int)
    # bins of width 0.8 from 1: 5 opens the sixth, the maximum closes the last
    assert figures["histogram"]["counts"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 2]


def test_a_file_of_many_row_groups_gets_the_profile_of_one_row_group():
    """A bundle is read a row group at a time (and twice for histograms): same figures."""
    table = dense_table("tier3", 60, seed=5)
    whole = profile_of(table)
    grouped = profile_of(table, row_group_size=7)
    assert pq.ParquetFile(io.BytesIO(parquet_bytes(table, row_group_size=7))).num_row_groups == 9
    assert grouped.keys() == whole.keys()
    for path in whole:
        one, many = whole[path], grouped[path]
        for key in one:
            if key in ("mean", "std") and one[key] is not None:
                assert many[key] == pytest.approx(one[key], rel=1e-5), (path, key)
            else:
                assert many[key] == one[key], (path, key)


def test_timestamps_strings_booleans_and_the_symbols_frequencies():
    table = pa.table(
        {
            "symbol": ["BTC", "ETH", "BTC", None, "SOL", "BTC", "ETH"],
            "snapshot_ts": [
                "2026-11-23T00:00:05.000Z",
                "2026-11-23T23:59:59.999Z",
                None,
                "2026-11-23T12:00:00.000Z",
                "2026-11-23T00:00:01.500Z",
                "2026-11-23T06:00:00.000Z",
                "2026-11-23T07:00:00.000Z",
            ],
            "status": ["ok", "silent", "insufficient_data", None, "ok", "ok", "ok"],
            "flag": [True, False, True, None, True, False, True],
        }
    )
    result = profile_of(table)
    symbol = result["symbol"]
    assert symbol["distinct"] == 3
    assert symbol["frequencies"] == [
        {"value": "BTC", "count": 3},
        {"value": "ETH", "count": 2},
        {"value": "SOL", "count": 1},
    ]
    assert symbol["length"] == {"min": 3, "max": 3}
    stamps = result["snapshot_ts"]
    assert stamps["kind"] == "timestamp"
    assert (stamps["min"], stamps["max"]) == ("2026-11-23T00:00:01.500Z", "2026-11-23T23:59:59.999Z")
    assert stamps["null_count"] == 1
    assert result["status"]["length"] == {"min": 2, "max": 17}
    assert "frequencies" not in result["status"]  # only symbols are counted (bounded)
    assert result["flag"]["true_count"] == 4


def test_list_columns_are_profiled_over_their_elements_with_the_list_length_range():
    prices = pa.list_(pa.struct([("mid", pa.float64()), ("ts", pa.string())]))
    table = pa.table(
        {
            "spot_prices": pa.array(
                [
                    [{"mid": 1.0, "ts": "2026-11-23T00:00:10.000Z"}, {"mid": 3.0, "ts": "2026-11-23T00:00:20.000Z"}],
                    None,
                    [],
                    [
                        {"mid": None, "ts": "2026-11-23T00:00:00.000Z"},
                        {"mid": 2.0, "ts": None},
                        {"mid": 5.0, "ts": None},
                    ],
                ],
                prices,
            )
        }
    )
    result = profile_of(table)
    mid = result["spot_prices[].mid"]
    assert mid["count"] == 5 and mid["null_count"] == 1
    assert mid["list_length"] == {"min": 0, "max": 3}
    assert mid["null_lists"] == 1
    assert (mid["min"], mid["max"], mid["mean"]) == (1.0, 5.0, 2.75)
    ts = result["spot_prices[].ts"]
    assert (ts["min"], ts["max"], ts["null_count"]) == ("2026-11-23T00:00:00.000Z", "2026-11-23T00:00:20.000Z", 2)


def test_a_null_struct_makes_its_children_null():
    inner = pa.struct([("a", pa.float64())])
    table = pa.table({"s": pa.array([{"a": 1.0}, None, {"a": None}], inner)})
    figures = profile_of(table)["s.a"]
    assert (figures["count"], figures["null_count"]) == (3, 2)


def test_nan_and_infinity_are_counted_apart_and_the_profile_stays_json():
    table = pa.table({"x": pa.array([1.0, math.nan, math.inf, 3.0, None], pa.float64())})
    figures = profile_of(table)["x"]
    assert figures["non_finite_count"] == 2
    assert (figures["min"], figures["max"], figures["mean"]) == (1.0, 3.0, 2.0)
    assert sum(figures["histogram"]["counts"]) == 2
    json.dumps(figures, allow_nan=False)


def test_all_null_and_constant_columns():
    table = pa.table({"none": pa.nulls(4, pa.float64()), "same": pa.array([7, 7, 7, None], pa.int64())})
    result = profile_of(table)
    assert result["none"]["null_proportion"] == 1.0
    assert (result["none"]["min"], result["none"]["histogram"]) == (None, None)
    assert result["same"]["histogram"] == {"edges": [7, 7], "counts": [3]}
    assert result["same"]["std"] == 0.0


def test_an_empty_file_has_a_profile_of_zero_rows():
    result = profile_of(schema_for("tier1").empty_table())
    assert result["symbol"]["count"] == 0 and result["symbol"]["null_proportion"] == 0.0


def wide_lists(rows, items, row_group_size):
    """Two list<double> columns of ``rows`` x ``items`` random values: a day of price samples."""
    values = pa.array(np.random.default_rng(7).random(rows * items))
    offsets = pa.array(np.arange(0, rows * items + 1, items, dtype=np.int32))
    column = pa.ListArray.from_arrays(offsets, values)
    table = pa.table({"a": column, "b": column})
    return table, parquet_bytes(table, row_group_size=row_group_size)


@pytest.fixture
def arrow_memory():
    """A pool that records the most Arrow memory held at once while the test runs."""
    previous = pa.default_memory_pool()
    pool = pa.proxy_memory_pool(pa.system_memory_pool())
    pa.set_memory_pool(pool)
    yield pool
    pa.set_memory_pool(previous)


@pytest.mark.parametrize("row_group_size", [None, 50], ids=["one row group", "four row groups"])
def test_memory_follows_a_batch_not_the_file(monkeypatch, arrow_memory, row_group_size):
    """Streaming: with 1 MB batches, a file of 16 MB of numbers is profiled holding a fraction of
    it, whether the numbers are kept to bin (a day) or read again (a bundle); same figures."""
    table, data = wide_lists(200, 5000, row_group_size)
    unbounded = profile.profile_file(io.BytesIO(data))
    monkeypatch.setattr(profile, "BATCH_BYTES", 1 << 20)
    monkeypatch.setattr(profile, "KEEP_BYTES", 0)
    before = arrow_memory.max_memory()
    assert profile.profile_file(io.BytesIO(data)) == unbounded
    assert arrow_memory.max_memory() - before < table.nbytes / 3
    assert unbounded["a[]"]["count"] == 1_000_000 and sum(unbounded["a[]"]["histogram"]["counts"]) == 1_000_000


def test_columns_that_decode_to_fewer_rows_than_the_footer_counts_are_refused(monkeypatch):
    """The daily build leaves the merged row group's full read-back to the profile: a reader that
    comes up short must be an error, not a profile of part of the file."""
    data = parquet_bytes(pa.table({"a": pa.array(range(100), pa.int64()), "b": [1.5] * 100}), row_group_size=40)
    real_iter_batches = pq.ParquetFile.iter_batches

    def all_but_the_last_batch(self, *args, **kwargs):
        batches = list(real_iter_batches(self, *args, **kwargs))
        return iter(batches[:-1])

    assert profile.profile_file(io.BytesIO(data))["a"]["count"] == 100
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", all_but_the_last_batch)
    with pytest.raises(profile.DecodeError, match="decode to .* rows, not 100"):
        profile.profile_file(io.BytesIO(data))


def test_a_number_column_whose_footer_range_is_wrong_is_binned_again():
    """The footer's statistics are a hint, checked against the values: infinities are in the
    statistics but not in the range, so the column is read again and binned over its own range."""
    table = pa.table({"x": pa.array([0.0, 10.0, math.inf, 5.0], pa.float64())})
    histogram = profile_of(table, row_group_size=2)["x"]["histogram"]
    assert (histogram["edges"][0], histogram["edges"][-1]) == (0.0, 10.0)
    assert histogram["counts"] == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]


def count_reads(monkeypatch):
    """Record the columns of every batched read the profile makes."""
    reads = []
    original = pq.ParquetFile.iter_batches

    def recording(self, *args, columns=None, **kwargs):
        reads.append(tuple(columns))
        return original(self, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording)
    return reads


def test_a_bundle_is_read_once_when_its_days_profiles_give_the_ranges(monkeypatch):
    """The price samples have no footer statistics; a bundle's days' profiles say their range,
    so their histograms count in the first read. Checked: the figures are those of two reads."""
    days = [wide_lists(40, 50, None)[0].slice(i * 10, 10) for i in range(4)]
    bundle = parquet_bytes(pa.concat_tables(days), row_group_size=10, write_statistics=False)
    day_profiles = [profile_of(day) for day in days]
    monkeypatch.setattr(profile, "KEEP_BYTES", 0)  # a month of price samples is too big to keep
    twice = profile.profile_file(io.BytesIO(bundle))
    reads = count_reads(monkeypatch)
    once = profile.profile_file(io.BytesIO(bundle), ranges=profile.ranges_of(day_profiles))
    assert once == twice
    assert len(reads) == len(set(reads))  # no column read twice
    reads.clear()
    profile.profile_file(io.BytesIO(bundle))
    assert len(reads) > len(set(reads))  # without them, the numbers are read again


def test_a_days_list_ranges_taken_from_its_batches_let_the_profile_read_it_once(monkeypatch):
    """The daily build hands the profile the ranges of the price samples it saw while writing."""
    day = dense_table("tier3", 60, seed=3)
    data = parquet_bytes(day, row_group_size=60, **encoding.writer_options("tier3"))
    monkeypatch.setattr(profile, "KEEP_BYTES", 0)  # a day of price samples is too big to keep
    twice = profile.profile_file(io.BytesIO(data))
    ranges = profile.ListRanges()
    for hour in day.to_batches(max_chunksize=10):
        ranges.add(hour)
    assert "spot_prices[].mid" in ranges
    assert ranges["spot_prices[].mid"] == (twice["spot_prices[].mid"]["min"], twice["spot_prices[].mid"]["max"])
    reads = count_reads(monkeypatch)
    assert profile.profile_file(io.BytesIO(data), ranges=ranges) == twice
    assert len(reads) == len(set(reads))  # no column read twice


def test_list_ranges_that_take_in_an_infinity_only_cost_a_second_read():
    """Arrow's min and max count infinities, the profile's range does not: the hint is then
    wrong, found out, and the column binned again over its own range."""
    table = pa.table({"a": pa.array([[1.0, 2.0], [math.inf, 5.0]], pa.list_(pa.float64()))})
    ranges = profile.ListRanges()
    ranges.add(table.to_batches()[0])
    assert ranges["a[]"] == (1.0, math.inf)
    data = parquet_bytes(table, write_statistics=False)
    assert profile.profile_file(io.BytesIO(data), ranges=ranges) == profile.profile_file(io.BytesIO(data))


def test_ranges_that_do_not_hold_are_found_out():
    table = pa.table({"a": pa.array([[1.0, 2.0], [5.0]], pa.list_(pa.float64()))})
    right = profile_of(table)
    data = parquet_bytes(table, write_statistics=False)
    wrong = profile.profile_file(io.BytesIO(data), ranges={"a[]": (0.0, 4.0)})
    assert wrong == right


def test_ranges_of_days_need_every_days_profile():
    one = {"x": {"kind": "number", "min": 1, "max": 5}, "s": {"kind": "string"}}
    two = {"x": {"kind": "number", "min": -2, "max": 3}, "s": {"kind": "string"}}
    empty = {"x": {"kind": "number", "min": None, "max": None}, "s": {"kind": "string"}}
    assert profile.ranges_of([one, two, empty]) == {"x": (-2, 5)}
    assert profile.ranges_of([one, None]) == {}  # a day built before profiles


# --- Preview -------------------------------------------------------------------------------------


def test_preview_is_the_first_20_rows_with_lists_and_strings_cut_and_structs_kept():
    table = dense_table("tier3", 30, seed=4)
    long_text = "x" * 200
    table = table.set_column(0, "symbol", pa.array([long_text] + table.column("symbol").to_pylist()[1:], pa.string()))
    prices = pa.array(
        [[{"ask": float(i), "bid": None, "mid": None, "spread_bps": None, "ts": None} for i in range(9)]] * 30,
        schema_for("tier3").field("spot_prices").type,
    )
    table = table.set_column(11, "spot_prices", prices)
    preview = previews.preview_file(io.BytesIO(parquet_bytes(table)))
    assert preview["columns"] == schema_for("tier3").names
    rows = preview["rows"]
    assert 1 <= len(rows) <= 20
    assert rows[0]["symbol"] == "x" * 80 + "…"
    assert rows[0]["spot_prices"]["count"] == 9
    assert [item["ask"] for item in rows[0]["spot_prices"]["items"]] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert isinstance(rows[0]["meta"], dict) and "added_ts" in rows[0]["meta"]
    source = table.slice(0, len(rows)).to_pylist()
    assert [row["snapshot_ts"] for row in rows] == [row["snapshot_ts"] for row in source]
    assert previews.json_size(preview) <= previews.PREVIEW_MAX_BYTES


def test_a_flat_tier_previews_all_20_rows_exactly():
    table = dense_table("tier1", 50, seed=6)
    preview = previews.preview_file(io.BytesIO(parquet_bytes(table)))
    assert preview["rows"] == table.slice(0, 20).to_pylist()


def test_rows_are_dropped_from_the_end_until_the_preview_fits(monkeypatch):
    table = dense_table("tier1", 50, seed=6)
    full = previews.preview_file(io.BytesIO(parquet_bytes(table)))
    monkeypatch.setattr(previews, "PREVIEW_MAX_BYTES", previews.json_size(full) // 2)
    cut = previews.preview_file(io.BytesIO(parquet_bytes(table)))
    assert 0 < len(cut["rows"]) < 20
    assert cut["rows"] == full["rows"][: len(cut["rows"])]
    assert previews.json_size(cut) <= previews.PREVIEW_MAX_BYTES
    one_more = {**cut, "rows": full["rows"][: len(cut["rows"]) + 1]}
    assert previews.json_size(one_more) > previews.PREVIEW_MAX_BYTES  # as many rows as fit


def test_preview_of_an_empty_file_has_no_rows():
    assert previews.preview_file(io.BytesIO(parquet_bytes(schema_for("tier2").empty_table())))["rows"] == []


def test_preview_spells_out_numbers_json_cannot_hold():
    assert previews.preview_value({"a": [math.nan, 1.5]}) == {"a": {"count": 2, "items": ["nan", 1.5]}}


def test_dates_are_not_timestamps_but_ts_utc_and_at_names_are():
    assert leaf_profile.is_timestamp("snapshot_ts") and leaf_profile.is_timestamp("spot_prices[].ts")
    assert leaf_profile.is_timestamp("twitter_sentiment_meta.captured_at_utc")
    assert leaf_profile.is_timestamp("twitter_sentiment_windows.last_cycle.sentiment_activity.latest_tweet_at")
    assert not leaf_profile.is_timestamp("twitter_sentiment_meta.bucket_meta.date")
    assert not leaf_profile.is_timestamp("symbol")


# --- In every manifest ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_daily_manifest_carries_the_profile_and_preview_of_its_published_file(settings):
    day = date(2026, 11, 20)
    sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=3, samples_per_entry=12)
    with time_machine.travel(datetime(2026, 11, 22, 1, 0, tzinfo=UTC), tick=False):
        result = build.build_day(day)
    assert result.outcome == "published", result.message
    for daily in DailyFile.objects.all():
        manifest = json.loads(storage.read_bytes(daily.manifest_key))
        assert manifest == daily.manifest
        published = io.BytesIO(storage.read_bytes(daily.key))
        assert manifest["profile"] == profile.profile_file(published)
        assert manifest["preview"] == previews.preview_file(published)
        assert manifest["profile"]["symbol"]["count"] == manifest["row_count"]
        assert sum(f["count"] for f in manifest["profile"]["symbol"]["frequencies"]) <= manifest["row_count"]
        assert manifest["preview"]["rows"][0]["symbol"] == pq.read_table(published).column("symbol")[0].as_py()
        assert previews.json_size(manifest["preview"]) <= previews.PREVIEW_MAX_BYTES
    tier3 = DailyFile.objects.get(tier="tier3").manifest["profile"]
    assert tier3["spot_prices[].mid"]["list_length"] == {"min": 12, "max": 12}
    assert tier3["snapshot_ts"]["min"].startswith("2026-11-20T")


@pytest.mark.django_db
def test_the_bundles_profile_is_computed_from_the_written_bundle():
    days = [date(2026, 11, 2), date(2026, 11, 3)]
    for i, day in enumerate(days):
        publish_day("tier1", day, rows=40 + i)
    assert mtd.build_month("tier1", date(2026, 11, 1), today=date(2026, 11, 4)).outcome == "built"
    bundle = MonthBundle.objects.get()
    written = io.BytesIO(storage.read_bytes(bundle.key))
    assert bundle.manifest["profile"] == profile.profile_file(written)
    assert bundle.manifest["profile"]["symbol"]["count"] == 81
    assert bundle.manifest["profile"]["snapshot_ts"]["min"].startswith("2026-11-02T00:00:00")
    assert bundle.manifest["profile"]["snapshot_ts"]["max"].startswith("2026-11-03T")
    assert "preview" not in bundle.manifest  # the page previews the newest day
