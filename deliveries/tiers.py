"""The three tiers: names, plans, fixed Arrow schemas and how tiers 2 and 1 derive from tier 3.

This file *is* the data contract of ``shared/spec/data-contract.md`` section 2, as data. A change
to a tier is a change here and nowhere else: the builder, the MTD bundler, the pages (columns and
types) and the tests all read these definitions.

Tier 3 is shaped from the JSON (see ``deliveries.parquet.shaping``); tiers 2 and 1 are projections of tier
3, each column naming the tier 3 path it comes from.
"""

from dataclasses import dataclass

import pyarrow as pa
from django.db import models

SCHEMA_VERSION = "v7"


class Tier(models.TextChoices):
    TIER1 = "tier1", "Explorer"
    TIER2 = "tier2", "Analyst"
    TIER3 = "tier3", "Researcher"

    @property
    def plan(self):
        return self.label

    @property
    def number(self):
        return int(self.value.removeprefix("tier"))

    @classmethod
    def selected(cls, tiers=None):
        """The tiers named (each checked: ValueError for an unknown one), or every tier."""
        return [cls(tier) for tier in (tiers or cls.values)]


# --- Building blocks ------------------------------------------------------------------------------

S, F, I, B = pa.string(), pa.float64(), pa.int64(), pa.bool_()  # noqa: E741


def struct(**children):
    """A struct whose children are in alphabetical order, as the contract requires."""
    return pa.struct([pa.field(name, children[name]) for name in sorted(children)])


def same(kind, *names):
    return dict.fromkeys(names, kind)


META = struct(
    **same(S, "added_ts", "expired_ts", "expires_ts", "futures_api_base", "last_sample_ts"),
    **same(S, "normalization_version", "pairbonus_version", "scoring_version", "session_id", "source"),
    **same(S, "universe_snapshot_id", "universe_snapshot_ts"),
    **same(I, "archive_schema_version", "sample_count", "schema_version", "total_samples"),
    **same(I, "universe_page", "universe_page_size"),
    **same(F, "duration_sec", "universe_snapshot_lag_sec"),
)
SPOT_RAW = struct(
    **same(F, "ask", "avg_impact_pct", "bid", "depth_10bps_quote", "depth_25bps_quote", "depth_5bps_quote"),
    **same(F, "depth_ask_qty_quote", "depth_bid_qty_quote", "last", "liq_eff_raw", "liq_qv_usd"),
    **same(F, "micro_premium_pct", "mid", "obi_5", "range_pct_24h", "spread_bps", "spread_eff_raw"),
    **same(F, "taker_buy_ratio_5m", "ticker24_chg"),
)
DERIVED = struct(
    **same(F, "depth_imbalance", "depth_skew", "depth_spread_bps", "depth_weighted", "flow"),
    **same(F, "liq_global_pct", "liq_self_pct", "spread_bps", "spread_pct"),
)
SCORES = struct(
    **same(F, "compression_score", "depth", "final", "flow", "liq", "liq_eff_score", "microstruct"),
    **same(F, "mom", "spread", "spread_eff_score", "str", "taker", "vol"),
)
FUTURES_RAW = struct(
    **same(S, "contract", "last_updated_ts"),
    age_sec=I,
    **same(F, "basis_now_bps", "funding_24h_mean", "funding_now", "open_interest"),
    **same(F, "open_interest_5m_delta_pct", "top_long_short_accounts_5m", "top_long_short_positions_5m"),
)
FLAGS = struct(
    **same(B, "spot_data_ok", "futures_data_ok", "futures_stale", "compression_enabled", "mom_fallback"),
    **same(B, "vol_fallback", "spread_fallback", "twitter_data_ok", "futures_contract_exists"),
    futures_contract_check_failed=B,
    pair_bonus_applied=F,
)
DIAG = struct(admission_validated=B, admission_validation_ts=S, build_duration_ms=F, builder_version=S)
BUCKET_META = struct(
    **same(S, "asset_unified_id", "bucket_span", "coin", "created_at_utc", "cycle_end_utc"),
    **same(S, "cycle_start_utc", "date", "lexicon_version", "platform", "scraper_version"),
    sentiment_model_version=S,
    **same(I, "cycle_id", "platform_cycle_id"),
    is_silent=B,
)
TWITTER_SENTIMENT_META = struct(bucket_meta=BUCKET_META, captured_at_utc=S, key_used=S, source=S)

_AI_SENTIMENT = dict(
    label_3class_mean=F,
    **same(I, "posts_neg", "posts_neu", "posts_pos", "posts_scored"),
    **same(S, "primary_model", "referee_model", "scoring_system"),
    **same(F, "prob_max", "prob_mean", "prob_min"),
)
CATEGORY_COUNTS = struct(
    **same(I, "emoji_neg", "emoji_pos", "fud_fear", "meme_slang", "negative_general", "positive_general"),
    **same(I, "pump_hype", "scam_rug"),
)
HYBRID_DECISION_STATS = struct(
    decision_sources=struct(**same(I, "primary_default", "referee_neutral_band", "referee_override", "single_model")),
    **same(F, "mean_score", "neg_ratio", "neu_ratio", "pos_ratio", "primary_conf_mean", "referee_conf_mean"),
    **same(I, "posts_neg", "posts_neu", "posts_pos", "posts_scored"),
)
_POSTS = same(I, "posts_neg", "posts_neu", "posts_pos", "posts_total")
CONTENT_STATS = struct(
    **same(I, "posts_original", "posts_retweets", "posts_with_cashtags", "posts_with_hashtags"),
    **same(I, "posts_with_links", "posts_with_media", "posts_with_mentions"),
)
LEXICON_SENTIMENT = struct(scale=S, score=F)
TOP_TERMS = struct(
    **same(pa.list_(S), "fud_fear", "meme_slang", "negative_general", "positive_general", "pump_hype", "scam_rug")
)

# Tier 2's view of the last cycle: exactly the 12 fields of schemas/tier2.txt.
LAST_CYCLE_TIER2 = struct(
    ai_sentiment=struct(**_AI_SENTIMENT, prob_std=F),
    author_stats=struct(
        **same(I, "distinct_authors_blue", "distinct_authors_total", "distinct_authors_verified"),
        **same(I, "followers_count_max", "followers_count_median", "followers_count_sum"),
        followers_count_mean=F,
    ),
    bucket_has_valid_sentiment=B,
    bucket_status=S,
    category_counts=CATEGORY_COUNTS,
    hybrid_decision_stats=HYBRID_DECISION_STATS,
    platform_engagement=struct(
        **same(F, "avg_likes", "avg_replies", "avg_retweets", "avg_views"),
        **same(I, "total_bookmarks", "total_impressions", "total_likes", "total_quotes", "total_replies"),
        **same(I, "total_retweets", "total_views"),
    ),
    **_POSTS,
    sentiment_activity=struct(
        has_recent_activity=B, hours_since_latest_tweet=F, is_silent=B, latest_tweet_at=S, recent_posts_count=I
    ),
)
LAST_CYCLE = struct(
    **{field.name: field.type for field in LAST_CYCLE_TIER2},
    content_stats=CONTENT_STATS,
    lexicon_sentiment=LEXICON_SENTIMENT,
    media_count=I,
    top_terms=TOP_TERMS,
)
LAST_2_CYCLES = struct(
    ai_sentiment=struct(**_AI_SENTIMENT),
    author_stats=struct(followers_count_max=I, followers_count_mean=F, followers_count_median=F, followers_count_sum=I),
    bucket_has_valid_sentiment=B,
    bucket_status=S,
    category_counts=CATEGORY_COUNTS,
    content_stats=CONTENT_STATS,
    **same(S, "cycle_end_utc", "cycle_start_utc"),
    **same(I, "from_cycle_id", "to_cycle_id", "window_cycles", "media_count"),
    hybrid_decision_stats=HYBRID_DECISION_STATS,
    lexicon_sentiment=LEXICON_SENTIMENT,
    platform_engagement=struct(
        **same(F, "avg_likes", "avg_replies", "avg_retweets", "avg_views"),
        **same(I, "total_likes", "total_replies", "total_retweets", "total_views"),
    ),
    **_POSTS,
    sentiment_activity=struct(has_recent_activity=B, latest_tweet_at=S, recent_posts_count=I),
    top_terms=TOP_TERMS,
)
SPOT_PRICES = pa.list_(struct(ask=F, bid=F, mid=F, spread_bps=F, ts=S))

# --- Tier 3: shaped from the JSON entry -----------------------------------------------------------

TIER3_SCHEMA = pa.schema(
    [
        ("symbol", S),
        ("snapshot_ts", S),
        ("meta", META),
        ("spot_raw", SPOT_RAW),
        ("futures_raw", FUTURES_RAW),
        ("derived", DERIVED),
        ("scores", SCORES),
        ("flags", FLAGS),
        ("diag", DIAG),
        ("twitter_sentiment_windows", struct(last_2_cycles=LAST_2_CYCLES, last_cycle=LAST_CYCLE)),
        ("twitter_sentiment_meta", TWITTER_SENTIMENT_META),
        ("spot_prices", SPOT_PRICES),
    ]
)

# Where a delivered name differs from the archive's. The archive's ``_1h`` futures names are
# historical (the values are 5-minute figures); the delivered name is also accepted as a source,
# so the builder keeps working the day the collector fixes the name.
SOURCE_NAMES = {
    "futures_raw.open_interest_5m_delta_pct": ("open_interest_1h_delta_pct", "open_interest_5m_delta_pct"),
    "futures_raw.top_long_short_accounts_5m": ("top_long_short_accounts_1h", "top_long_short_accounts_5m"),
    "futures_raw.top_long_short_positions_5m": ("top_long_short_positions_1h", "top_long_short_positions_5m"),
}

# Top-level keys an entry must have to be a row at all; anything else may be null or absent.
REQUIRED_KEYS = ("symbol", "snapshot_ts", "meta", "spot_raw", "derived", "scores", "flags")


# --- Tiers 2 and 1: projections of tier 3 --------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One output column: its name, its type, and the tier 3 path(s) it is read from.

    With several paths the first non-null value wins (a coalesce).
    """

    name: str
    type: pa.DataType
    sources: tuple


def column(name, type_, *sources):
    return Column(name, type_, sources or (name,))


TIER2_COLUMNS = (
    column("symbol", S),
    column("snapshot_ts", S),
    column("meta", META),
    column("spot_raw", SPOT_RAW),
    column("derived", DERIVED),
    column("scores", SCORES),
    column("twitter_sentiment_meta", TWITTER_SENTIMENT_META),
    column("twitter_sentiment_last_cycle", LAST_CYCLE_TIER2, "twitter_sentiment_windows.last_cycle"),
)

_LAST = "twitter_sentiment_windows.last_cycle"
TIER1_COLUMNS = (
    column("symbol", S),
    column("snapshot_ts", S),
    column("meta_added_ts", S, "meta.added_ts"),
    column("meta_expires_ts", S, "meta.expires_ts"),
    column("meta_duration_sec", F, "meta.duration_sec"),
    column("meta_archive_schema_version", I, "meta.archive_schema_version"),
    column("spot_mid", F, "spot_raw.mid"),
    column("spot_spread_bps", F, "spot_raw.spread_bps"),
    column("spot_range_pct_24h", F, "spot_raw.range_pct_24h"),
    column("spot_ticker24_chg", F, "spot_raw.ticker24_chg"),
    column("derived_liq_global_pct", F, "derived.liq_global_pct"),
    column("derived_spread_bps", F, "derived.spread_bps"),
    column("score_final", F, "scores.final"),
    column("sentiment_posts_total", I, f"{_LAST}.posts_total"),
    column("sentiment_posts_pos", I, f"{_LAST}.posts_pos"),
    column("sentiment_posts_neu", I, f"{_LAST}.posts_neu"),
    column("sentiment_posts_neg", I, f"{_LAST}.posts_neg"),
    column("sentiment_mean_score", F, f"{_LAST}.hybrid_decision_stats.mean_score"),
    column(
        "sentiment_is_silent",
        B,
        f"{_LAST}.sentiment_activity.is_silent",
        "twitter_sentiment_meta.bucket_meta.is_silent",
    ),
)

TIER_COLUMNS = {
    Tier.TIER3: tuple(column(field.name, field.type) for field in TIER3_SCHEMA),
    Tier.TIER2: TIER2_COLUMNS,
    Tier.TIER1: TIER1_COLUMNS,
}
SCHEMAS = {tier: pa.schema([(col.name, col.type) for col in cols]) for tier, cols in TIER_COLUMNS.items()}

TIER_DESCRIPTIONS = {
    Tier.TIER1: "19 flat columns: market snapshot, final score and the sentiment headline.",
    Tier.TIER2: "8 columns: full market state, scores and the last sentiment cycle.",
    Tier.TIER3: "12 columns: everything, including futures, both sentiment windows and ~740 price samples a row.",
}


def schema_for(tier):
    return SCHEMAS[Tier(tier)]


def describe_type(type_):
    """A short human-readable type, for the subscriber page."""
    if pa.types.is_struct(type_):
        return f"struct ({type_.num_fields} fields)"
    if pa.types.is_list(type_):
        return f"list<{describe_type(type_.value_type)}>"
    return str(type_)


def schema_lines(schema, indent=""):
    """The schema in the format of ``shared/spec/schemas/tierN.txt``, one field per line."""
    lines = []
    for field in schema:
        lines.append(f"{indent}{field.name}: {describe_type(field.type)}")
        if pa.types.is_struct(field.type):
            lines.extend(schema_lines(list(field.type), indent + "  "))
    return lines
