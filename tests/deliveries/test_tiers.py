"""The tier definitions are the contract with paying subscribers: they must equal the spec."""

from pathlib import Path

import pyarrow as pa
import pytest
from django.conf import settings

from deliveries.tiers import SCHEMAS, Tier, schema_for, schema_lines

SPEC_DIR = Path(__file__).resolve().parent / "spec"  # the spec's schema files, vendored
SHARED_SPEC = Path(settings.BASE_DIR).parent / "shared" / "spec" / "schemas"  # beside the checkout


@pytest.mark.parametrize("tier", ["tier1", "tier2"])
def test_tier_schema_equals_spec_file(tier):
    expected = (SPEC_DIR / f"{tier}.txt").read_text().splitlines()
    assert schema_lines(schema_for(tier)) == expected


@pytest.mark.parametrize("tier", ["tier1", "tier2"])
def test_vendored_spec_copy_matches_shared_spec_when_present(tier):
    shared = SHARED_SPEC / f"{tier}.txt"
    if not shared.exists():  # a checkout without shared/ beside it: the vendored copy is the reference
        return
    assert (SPEC_DIR / f"{tier}.txt").read_text() == shared.read_text()


def test_tier3_has_the_twelve_columns_of_the_spec_in_order():
    assert SCHEMAS[Tier.TIER3].names == [
        "symbol", "snapshot_ts", "meta", "spot_raw", "futures_raw", "derived", "scores", "flags", "diag",
        "twitter_sentiment_windows", "twitter_sentiment_meta", "spot_prices",
    ]  # fmt: skip


def _structs(type_, path=""):
    if pa.types.is_struct(type_):
        yield path, type_
        for field in type_:
            yield from _structs(field.type, f"{path}.{field.name}")
    elif pa.types.is_list(type_):
        yield from _structs(type_.value_type, f"{path}[]")


@pytest.mark.parametrize("tier", list(Tier))
def test_every_struct_has_its_children_in_alphabetical_order(tier):
    for field in SCHEMAS[tier]:
        for path, struct in _structs(field.type, field.name):
            names = [child.name for child in struct]
            assert names == sorted(names), path


def test_tier3_futures_and_sentiment_fields_follow_the_spec():
    schema = SCHEMAS[Tier.TIER3]
    futures = schema.field("futures_raw").type
    assert [f.name for f in futures] == [
        "age_sec", "basis_now_bps", "contract", "funding_24h_mean", "funding_now", "last_updated_ts",
        "open_interest", "open_interest_5m_delta_pct", "top_long_short_accounts_5m", "top_long_short_positions_5m",
    ]  # fmt: skip
    assert futures.field("age_sec").type == pa.int64()
    assert schema.field("flags").type.num_fields == 11
    assert schema.field("flags").type.field("pair_bonus_applied").type == pa.float64()
    windows = schema.field("twitter_sentiment_windows").type
    last_cycle, last_2 = windows.field("last_cycle").type, windows.field("last_2_cycles").type
    assert last_cycle.num_fields == 16
    assert last_cycle.field("ai_sentiment").type.get_field_index("prob_std") >= 0
    assert last_2.field("ai_sentiment").type.get_field_index("prob_std") == -1
    assert last_2.field("author_stats").type.field("followers_count_median").type == pa.float64()
    assert last_cycle.field("author_stats").type.field("followers_count_median").type == pa.int64()
    for dropped in (
        "tag_counts",
        "cashtag_counts",
        "mention_counts",
        "url_domain_counts",
        "bucket_min_posts_for_score",
    ):
        assert last_cycle.get_field_index(dropped) == -1
        assert last_2.get_field_index(dropped) == -1
    assert schema.field("spot_prices").type == pa.list_(
        pa.struct([("ask", pa.float64()), ("bid", pa.float64()), ("mid", pa.float64()),
                   ("spread_bps", pa.float64()), ("ts", pa.string())])
    )  # fmt: skip


def test_every_field_is_nullable():
    for schema in SCHEMAS.values():
        for field in schema:
            for _, struct in _structs(field.type, field.name):
                assert all(child.nullable for child in struct)
            assert field.nullable


def test_plans_are_the_patreon_tier_names():
    assert [(t.value, t.plan) for t in Tier] == [("tier1", "Explorer"), ("tier2", "Analyst"), ("tier3", "Researcher")]


def test_selected_tiers_are_checked_and_default_to_every_tier_in_order():
    assert Tier.selected() == [Tier.TIER1, Tier.TIER2, Tier.TIER3]
    assert Tier.selected(["tier3", "tier1"]) == [Tier.TIER3, Tier.TIER1]
    with pytest.raises(ValueError):
        Tier.selected(["tier4"])
