"""Shaping follows the contract's rules exactly: nulls, {} objects, mixed numbers, coercions."""

import pyarrow as pa
import pytest

from deliveries.parquet.shaping import Coercions, project, shape_array, shape_tier3
from deliveries.tiers import SCHEMAS, Tier

DOUBLES = pa.struct([("a", pa.float64()), ("b", pa.int64())])


def shape(values, type_):
    coercions = Coercions()
    return shape_array(values, type_, "x", coercions).to_pylist(), dict(coercions)


def test_int_in_double_field_becomes_a_double():
    values, coerced = shape([1, 2.5, None], pa.float64())
    assert values == [1.0, 2.5, None]
    assert all(type(v) is float for v in values[:2])
    assert coerced == {}


def test_fraction_in_int_field_becomes_null_and_is_counted():
    values, coerced = shape([3, 0.857, 4.0, None], pa.int64())
    assert values == [3, None, 4, None]
    assert coerced == {"x": 1}


def test_text_and_bool_in_double_field_become_null_and_are_counted():
    values, coerced = shape(["1.5", True, 2.0], pa.float64())
    assert values == [None, None, 2.0]
    assert coerced == {"x": 2}


def test_number_in_bool_or_string_field_is_not_reinterpreted():
    assert shape([1, True], pa.bool_()) == ([None, True], {"x": 1})
    assert shape([7, "seven"], pa.string()) == ([None, "seven"], {"x": 1})


def test_empty_object_becomes_null_without_being_counted():
    values, coerced = shape([{}, None, {"a": 1}], DOUBLES)
    assert values == [None, None, {"a": 1.0, "b": None}]
    assert coerced == {}


def test_non_object_where_an_object_belongs_is_null_and_counted():
    values, coerced = shape(["oops", [1]], DOUBLES)
    assert values == [None, None]
    assert coerced == {"x": 2}


def test_unknown_fields_are_dropped_and_missing_fields_are_null():
    values, _ = shape([{"a": 1.5, "surprise": {"deep": 1}}], DOUBLES)
    assert values == [{"a": 1.5, "b": None}]


def test_lists_keep_empty_lists_and_null_for_non_lists():
    type_ = pa.list_(pa.string())
    values, coerced = shape([["a", "b"], [], None, "nope", ["c", 5]], type_)
    assert values == [["a", "b"], [], None, None, ["c", None]]
    assert coerced == {"x": 1, "x[]": 1}


def test_very_large_int_in_double_field_is_not_rounded_silently():
    values, coerced = shape([2**60], pa.float64())
    assert values == [None]
    assert coerced == {"x": 1}


def minimal_entry(**overrides):
    entry = {
        "symbol": "AAVE",
        "snapshot_ts": "2026-11-20T00:01:02.123Z",
        "meta": {"schema_version": 7, "added_ts": "2026-11-20T00:00:00Z", "archive_schema_version": 7},
        "spot_raw": {"mid": 101, "spread_bps": 2.5},
        "futures_raw": None,
        "derived": {"liq_global_pct": 0.4},
        "norm": {},
        "scores": {"final": 50},
        "flags": {"spot_data_ok": True, "pair_bonus_applied": 0},
        "labels": {},
        "twitter_sentiment_windows": {
            "last_cycle": {
                "posts_total": 0,
                "category_counts": {},
                "tag_counts": {"#x": 1},
                "sentiment_activity": {"recent_posts_1h": 0, "recent_posts_24h": 3},
            }
        },
        "twitter_sentiment_meta": {"bucket_meta": {"is_silent": True, "coin": "AAVEUSDC"}},
        "spot_prices": [{"ts": "2026-11-20T00:00:00Z", "mid": 1, "bid": 0.5, "ask": 1.5, "spread_bps": 3}],
    }
    entry.update(overrides)
    return entry


def test_tier3_batch_has_the_exact_schema_whatever_the_entries_contain():
    batch = shape_tier3([minimal_entry(), minimal_entry(futures_raw={"age_sec": 1.5})], Coercions())
    assert batch.schema.equals(SCHEMAS[Tier.TIER3])
    assert batch.num_rows == 2


def test_historical_1h_futures_names_are_delivered_as_5m():
    futures = {
        "open_interest_1h_delta_pct": 0.25,
        "top_long_short_accounts_1h": 1.1,
        "top_long_short_positions_1h": 0.9,
    }
    row = shape_tier3([minimal_entry(futures_raw=futures)], Coercions()).to_pylist()[0]
    assert row["futures_raw"]["open_interest_5m_delta_pct"] == 0.25
    assert row["futures_raw"]["top_long_short_accounts_5m"] == 1.1
    assert row["futures_raw"]["top_long_short_positions_5m"] == 0.9


def test_silent_coin_reads_silent_in_tier1_from_bucket_meta():
    batch = shape_tier3([minimal_entry()], Coercions())
    row = project(batch, Tier.TIER1).to_pylist()[0]
    assert row["sentiment_is_silent"] is True
    assert row["sentiment_posts_total"] == 0
    assert row["sentiment_mean_score"] is None
    assert row["spot_mid"] == 101.0


def test_activity_flag_wins_over_bucket_meta_when_present():
    windows = {"last_cycle": {"sentiment_activity": {"is_silent": False}}}
    batch = shape_tier3([minimal_entry(twitter_sentiment_windows=windows)], Coercions())
    assert project(batch, Tier.TIER1).to_pylist()[0]["sentiment_is_silent"] is False


@pytest.mark.parametrize("tier", [Tier.TIER1, Tier.TIER2])
def test_projections_have_the_tier_schema(tier):
    batch = shape_tier3([minimal_entry(), minimal_entry(twitter_sentiment_windows=None)], Coercions())
    assert project(batch, tier).schema.equals(SCHEMAS[tier])


def test_tier2_last_cycle_keeps_only_its_twelve_fields_and_null_stays_null():
    batch = shape_tier3([minimal_entry(), minimal_entry(twitter_sentiment_windows=None)], Coercions())
    rows = project(batch, Tier.TIER2).to_pylist()
    assert len(rows[0]["twitter_sentiment_last_cycle"]) == 12
    assert rows[0]["twitter_sentiment_last_cycle"]["category_counts"] is None
    assert rows[1]["twitter_sentiment_last_cycle"] is None


def test_ints_beyond_int64_become_null_and_are_counted_not_a_crash():
    assert shape([2**64, -(2**63) - 1, 5], pa.int64()) == ([None, None, 5], {"x": 2})


def test_strings_with_a_lone_surrogate_become_null_and_are_counted_not_a_crash():
    """JSON allows the escape \\ud800, and Python reads it (and its UTF-8 bytes) as a lone surrogate,
    which no UTF-8 string can hold."""
    assert shape(["ok", "a\ud800", "é"], pa.string()) == (["ok", None, "é"], {"x": 1})
