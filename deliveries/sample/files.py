"""A realistic, deterministic sample of the collector's raw archive (data contract section 1).

The builder must be tested against everything real files contain, and a demo needs days to build,
without access to the collector. This module writes ``ROOT/YYYYMMDD/HH.jsonl.gz`` files whose
entries have the schema-7 shape of the spec: key order, silent coins, absent sections, always-null
fields, ints where doubles are expected, and (optionally) the flaws of real files.

Determinism: every hour file is a pure function of (seed, day, hour, sizes): its random generator
is seeded from those, gzip headers carry mtime 0 and a fixed name, so the same call writes the same
bytes, and days are independent of each other (any day can be regenerated alone).

Flaws (``flaws=True`` on a day; ``write_archive`` applies them to the last day only), see
``FLAW_*`` below and ``DayStats.bad_lines``:

- hour ``FLAW_MISSING_HOUR`` (13) is not written;
- a blank line, a line that is not JSON (an object cut in half) and a JSON line that is not an
  object (``[1, 2]``), each in its own hour file;
- two coercions in one entry: a fraction in an int64 field (last_cycle ``followers_count_median``)
  and text in a double field (``spot_raw.liq_qv_usd``);
- the last hour file ends in a truncated gzip member: a first, complete member holds the hour's
  lines but its last entry, then a second member holds that entry (complete, readable) followed by
  one more entry cut in the middle, as if the collector were still writing it.

Archive flaws (``archive_flaws=True``, or with ``write_archive`` on the last day only; see
``ARCHIVE_FLAW_*`` and ``DayStats.bad_hours``), the flaws of whole files and of repeated entries:

- an empty hour file (0 bytes: the collector died right after creating it) and an hour file that
  is not gzip (its JSON lines uncompressed under the ``.jsonl.gz`` name): *bad hours*;
- a replayed buffer: an hour file starts with the previous hour's last two lines again (exact
  duplicates across hours), and an hour file copied twice (its gzip member twice: every entry of it
  an exact duplicate);
- a conflicting duplicate: the hour's first entry again, same symbol and time, another score;
- an entry whose ``snapshot_ts`` is a number (epoch milliseconds) instead of a string.
"""

import gzip
import io
import json
import math
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

SCHEMA_VERSION = 7
DEFAULT_ENTRIES_PER_HOUR = 4
DEFAULT_SAMPLES_PER_ENTRY = 20
DEFAULT_SEED = 0
COMPRESSLEVEL = 6
PARTIAL_DAY_MISSING = 3  # a partial day has 21 hour files: publishable (MIN_HOURS defaults to 20)

FLAW_MISSING_HOUR = 13
# Positions (indices into the day's written hours) of the line flaws, so they move, never vanish,
# when a partial day also misses hours.
FLAW_BLANK_AT, FLAW_NOT_JSON_AT, FLAW_NOT_OBJECT_AT, FLAW_COERCE_AT = 2, 5, 8, 10
FLAW_NOT_OBJECT_LINE = "[1, 2]"
# Positions of the archive flaws (indices into the day's written hours; they need 21 hours).
ARCHIVE_FLAW_REPLAY_AT, ARCHIVE_FLAW_EMPTY_AT, ARCHIVE_FLAW_CONFLICT_AT = 3, 6, 9
ARCHIVE_FLAW_WRONG_TYPE_AT, ARCHIVE_FLAW_NOT_GZIP_AT, ARCHIVE_FLAW_COPIED_AT = 11, 16, 19
ARCHIVE_FLAW_REPLAYED_LINES = 2
COERCED_PATHS = (
    "twitter_sentiment_windows.last_cycle.author_stats.followers_count_median",
    "spot_raw.liq_qv_usd",
)
# Delivered fields the collector never fills: they are present, and null, in every entry.
ALWAYS_NULL = (
    "meta.expired_ts",
    "spot_raw.avg_impact_pct",
    "twitter_sentiment_windows.last_cycle.platform_engagement.total_impressions",
)

TOP_KEYS = (
    "symbol", "snapshot_ts", "meta", "spot_raw", "futures_raw", "derived", "norm", "scores", "flags", "diag",
    "labels", "twitter_sentiment_windows", "twitter_sentiment_meta", "spot_prices",
)  # fmt: skip

# Rates per entry. Silent coins are about a quarter of rows (see _Symbol.silent_p).
P_DIAG_ABSENT = 0.02
P_WINDOWS_NULL = 0.02
P_TWITTER_META_NULL = 0.5  # of the rows whose windows are null
P_ZERO_SCORED = 0.06  # of non-silent rows: posts but none scored, so mean_score is null
P_INTEGRAL = 0.15  # a double written as an int (`50`, `0`)
P_QUOTE_MOVES = 0.18  # of price samples whose quotes differ from the sample before

CYCLE = timedelta(hours=2)
CYCLE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

_MAJORS = [
    "BTC",
    "ETH",
    "SOL",
    "BNB",
    "XRP",
    "ADA",
    "DOGE",
    "AVAX",
    "LINK",
    "DOT",
    "TRX",
    "TON",
    "SHIB",
    "LTC",
    "BCH",
    "NEAR",
    "UNI",
    "AAVE",
    "ATOM",
    "XLM",
    "ETC",
    "FIL",
    "APT",
    "ARB",
    "OP",
    "INJ",
    "SUI",
    "SEI",
    "TIA",
    "RNDR",
    "IMX",
    "HBAR",
    "ICP",
    "VET",
    "ALGO",
    "GRT",
    "MKR",
    "LDO",
    "STX",
    "RUNE",
    "EGLD",
    "FTM",
    "SAND",
    "MANA",
    "AXS",
    "THETA",
    "FLOW",
    "CHZ",
    "CRV",
    "SNX",
    "COMP",
    "1INCH",
    "ENS",
    "DYDX",
    "GMX",
    "PEPE",
    "WIF",
    "BONK",
    "FLOKI",
    "JUP",
    "PYTH",
    "JTO",
    "ORDI",
    "WLD",
    "STRK",
    "ZK",
    "ENA",
    "ETHFI",
    "PENDLE",
    "TAO",
    "FET",
    "AR",
    "KAS",
    "ONDO",
    "W",
    "NOT",
]
UNIVERSE_SIZE = 276

_TERMS = {
    "fud_fear": ["dump", "crash", "rekt", "sell-off", "bear", "capitulation", "liquidated", "fear"],
    "meme_slang": ["wagmi", "gm", "ngmi", "ser", "fren", "hodl", "degen", "lfg", "wen"],
    "negative_general": ["bad", "weak", "down", "worst", "delay", "lost", "problem"],
    "positive_general": ["great", "strong", "bullish", "growth", "partnership", "upgrade", "adoption"],
    "pump_hype": ["moon", "🚀", "100x", "send it", "pump", "breakout", "ath", "to the moon"],
    "scam_rug": ["rug", "scam", "honeypot", "exit", "ponzi", "fake"],
}
_CATEGORIES = (
    "emoji_neg", "emoji_pos", "fud_fear", "meme_slang", "negative_general", "positive_general", "pump_hype",
    "scam_rug",
)  # fmt: skip
_TAGS = ["#crypto", "#altcoin", "#defi", "#web3", "#bullrun", "#trading", "#nft", "#año2026", "#🚀", "#airdrop"]
_MENTIONS = ["@binance", "@coinbase", "@cz_binance", "@VitalikButerin", "@solana", "@whale_alert", "@lookonchain"]
_DOMAINS = ["x.com", "binance.com", "coingecko.com", "t.me", "youtu.be", "medium.com", "dexscreener.com"]


# --- The universe: fixed, seed-independent traits per symbol ---------------------------------------


@dataclass(frozen=True)
class _Symbol:
    name: str
    price: float
    decimals: int
    spread_bps: float
    vol: float  # per-sample relative volatility of the mid
    liq_usd: float
    has_futures: bool
    silent_p: float
    page: int


def _make_universe():
    """About 275 base assets, real names first, then synthetic ones; a third lack a perpetual."""
    rng = random.Random("instrumetriq-universe-v1")
    names = list(_MAJORS)
    seen = set(names)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    while len(names) < UNIVERSE_SIZE:
        name = "".join(rng.choice(letters) for _ in range(rng.choice((3, 3, 4, 4, 5))))
        if rng.random() < 0.03:
            name = "1000" + name
        if name not in seen:
            seen.add(name)
            names.append(name)
    known = {"BTC": 90_000.0, "ETH": 3_100.0, "SOL": 180.0, "BNB": 620.0, "XRP": 2.1, "DOGE": 0.17, "AAVE": 260.0}
    symbols = []
    for i, name in enumerate(names):
        major = i < 30
        price = known.get(name) or 10 ** rng.uniform(-5.5 if not major else -1, 4 if not major else 3)
        decimals = min(10, max(1, 5 - math.floor(math.log10(price))))
        has_futures = True if major else rng.random() < (0.55 if i < len(_MAJORS) else 0.62)
        symbols.append(
            _Symbol(
                name=name,
                price=price,
                decimals=decimals,
                spread_bps=rng.uniform(0.5, 3) if major else rng.uniform(2, 40),
                vol=rng.uniform(0.0003, 0.0012) if major else rng.uniform(0.0008, 0.004),
                liq_usd=10 ** (rng.uniform(8, 10) if major else rng.uniform(5, 8.5)),
                has_futures=has_futures,
                silent_p=0.02 if major else 0.28,
                page=i // 100 + 1,
            )
        )
    return tuple(symbols)


UNIVERSE = _make_universe()
_BY_NAME = {s.name: s for s in UNIVERSE}


# --- Small helpers ----------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _date_str(day_number):
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


def iso_ms(ms):
    """Epoch milliseconds as ``2026-11-23T05:17:42.123Z`` (fast: called for every price sample)."""
    days, rem = divmod(ms, 86_400_000)
    secs, msec = divmod(rem, 1000)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    return f"{_date_str(days)}T{hours:02d}:{minutes:02d}:{secs:02d}.{msec:03d}Z"


def _epoch_ms(moment):
    return int(moment.timestamp() * 1000)


def _iso_z(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(rng, value, digits=4):
    """A double as the collector writes it: rounded, and now and then an int (``50`` not ``50.0``)."""
    value = round(value, digits)
    if rng.random() < P_INTEGRAL or value == int(value):
        return int(round(value))
    return value


def _score(rng):
    """A 0..100 score; clamped and round values are written as ints."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice((0, 50, 100))
    if roll < P_INTEGRAL:
        return rng.randint(0, 100)
    return round(rng.uniform(0, 100), 2)


def _hex(rng, n):
    return f"{rng.getrandbits(4 * n):0{n}x}"


# --- Spot prices: the bulk of every entry, so built as text ------------------------------------------


def _price_samples(rng, sym, count, end_ms, mid):
    """``count`` samples, one every ~10 s ending at ``end_ms``, as JSON text; returns (text, last).

    Quotes walk on the symbol's tick grid and often stay put between samples, as real books do:
    that is what makes real archives compress about tenfold, so the benchmarks see real sizes.
    """
    rand, gauss = rng.random, rng.gauss
    steps = [9_600 + int(rand() * 800) for _ in range(count - 1)]
    first_ms = t = end_ms - sum(steps)
    steps.append(0)
    d, d1 = sym.decimals, sym.decimals + 1
    tick = 10.0**-d
    spread0 = max(1, round(mid * sym.spread_bps / 10_000 / tick))
    spread_step = max(1, spread0 // 8)
    spread_t = spread0
    bid_t = max(1, round(mid / tick - spread_t / 2))
    sigma = max(0.6, sym.vol * mid / tick)
    parts = []
    append = parts.append
    quote = None
    for step in steps:
        if quote is None or rand() < P_QUOTE_MOVES:
            bid_t = max(1, bid_t + round(gauss(0.0, sigma)))
            if rand() < 0.25:
                spread_t = min(2 * spread0, max(1, spread0 // 2, spread_t + rng.choice((-spread_step, spread_step))))
            ask_t = bid_t + spread_t
            mid_t2 = bid_t + ask_t  # twice the mid, in ticks: exact on the grid of half ticks
            quote = (
                f'"mid": {mid_t2 * tick / 2:.{d1}f}, "bid": {bid_t * tick:.{d}f}, "ask": {ask_t * tick:.{d}f}, '
                f'"spread_bps": {spread_t * 20_000 / mid_t2:.4f}}}'
            )
        days, rem = divmod(t, 86_400_000)
        secs, msec = divmod(rem, 1000)
        hours, secs = divmod(secs, 3600)
        minutes, secs = divmod(secs, 60)
        append(f'{{"ts": "{_date_str(days)}T{hours:02d}:{minutes:02d}:{secs:02d}.{msec:03d}Z", {quote}')
        t += step
    last = {
        "first_ms": first_ms,
        "mid": float(f"{mid_t2 * tick / 2:.{d1}f}"),
        "bid": float(f"{bid_t * tick:.{d}f}"),
        "ask": float(f"{ask_t * tick:.{d}f}"),
    }
    return ", ".join(parts), last


# --- Sentiment windows ---------------------------------------------------------------------------------


def _split(rng, total, parts):
    """``total`` split into ``parts`` non-negative ints."""
    cuts = sorted(rng.randint(0, total) for _ in range(parts - 1))
    bounds = [0, *cuts, total]
    return [bounds[i + 1] - bounds[i] for i in range(parts)]


def _counts(rng, pool, total, prefix=""):
    if total == 0:
        return {}
    return {prefix + key: rng.randint(1, max(1, total)) for key in rng.sample(pool, rng.randint(1, min(4, len(pool))))}


def _activity(rng, silent, posts, cycle_end, snapshot):
    """``sentiment_activity``; a silent coin's lacks ``is_silent`` and ``has_recent_activity``."""
    config = {"recent_window_hours": 6, "silent_after_hours": 24, "min_posts": 1}
    if silent:
        recent_24h = rng.choice((0, 0, 0, rng.randint(1, 5)))
        if recent_24h:
            latest = cycle_end - timedelta(hours=rng.uniform(3, 23))
            hours_since = round((snapshot - latest).total_seconds() / 3600, 3)
            latest_at = _iso_z(latest)
        else:
            hours_since, latest_at = None, None
        return {
            "recent_posts_count": 0,
            "latest_tweet_at": latest_at,
            "hours_since_latest_tweet": hours_since,
            "recent_posts_1h": 0,
            "recent_posts_4h": 0,
            "recent_posts_24h": recent_24h,
            "config": config,
        }
    latest = cycle_end - timedelta(seconds=rng.randint(5, 7000))
    recent_1h = rng.randint(0, posts)
    recent_4h = recent_1h + rng.randint(0, posts)
    return {
        "is_silent": False,
        "has_recent_activity": rng.random() < 0.9,
        "recent_posts_count": posts,
        "latest_tweet_at": _iso_z(latest),
        "hours_since_latest_tweet": _num(rng, (snapshot - latest).total_seconds() / 3600, 3),
        "recent_posts_1h": recent_1h,
        "recent_posts_4h": recent_4h,
        "recent_posts_24h": recent_4h + rng.randint(0, 3 * posts),
        "config": config,
    }


def _ai_sentiment(rng, pos, neu, neg, with_std):
    scored = pos + neu + neg
    ai = {
        "scoring_system": "hybrid_two_model",
        "primary_model": "cryptobert-v3",
        "referee_model": "finbert-tone-v2",
        "posts_scored": scored,
        "posts_pos": pos,
        "posts_neu": neu,
        "posts_neg": neg,
        # 1 when every scored post is positive, else a float like 0.857: the int/float flaw of the spec.
        "label_3class_mean": None,
        "prob_mean": None,
        "prob_min": None,
        "prob_max": None,
    }
    if with_std:
        ai["prob_std"] = None
    if scored:
        mean = round((pos - neg) / scored, 3)
        ai["label_3class_mean"] = int(mean) if mean == int(mean) else mean
        low = round(rng.uniform(0.34, 0.7), 4)
        high = round(rng.uniform(max(low, 0.8), 0.999), 4)
        ai.update(prob_min=low, prob_max=high, prob_mean=round((low + high) / 2, 4))
        if with_std:
            ai["prob_std"] = round(rng.uniform(0, 0.2), 4) if scored > 1 else 0
    return ai


def _hybrid(rng, pos, neu, neg):
    scored = pos + neu + neg
    sources = dict(
        zip(
            ("primary_default", "referee_override", "referee_neutral_band", "single_model"),
            _split(rng, scored, 4),
            strict=True,
        )
    )
    ratio = (lambda n: round(n / scored, 4)) if scored else (lambda n: None)
    return {
        "posts_scored": scored,
        "posts_pos": pos,
        "posts_neu": neu,
        "posts_neg": neg,
        "pos_ratio": ratio(pos),
        "neu_ratio": ratio(neu),
        "neg_ratio": ratio(neg),
        "mean_score": round(max(-1.0, min(1.0, (pos - neg) / scored + rng.uniform(-0.1, 0.1))), 4) if scored else None,
        "primary_conf_mean": round(rng.uniform(0.55, 0.97), 4) if scored else None,
        "referee_conf_mean": round(rng.uniform(0.5, 0.95), 4) if scored and sources["referee_override"] else None,
        "decision_sources": sources,
    }


def _window(rng, posts, *, last2, zero_scored, cycle_end, snapshot):
    """One sentiment window as the collector writes it (``last2`` for the two-cycle one)."""
    silent = posts == 0
    if silent or zero_scored:
        pos = neu = neg = 0
    else:
        pos, neu, neg = _split(rng, posts, 3)
    scored = pos + neu + neg
    window = {"posts_total": posts, "posts_pos": pos, "posts_neu": neu, "posts_neg": neg}
    window["lexicon_sentiment"] = {
        "scale": "vader_compound_-1_1",
        "score": None if silent else _num(rng, rng.uniform(-0.6, 0.8)),
    }
    if silent:
        window["category_counts"] = {}
        window["top_terms"] = {}
        window["platform_engagement"] = {
            "total_likes": 0,
            "total_retweets": 0,
            "total_replies": 0,
            "total_views": 0,
            "avg_likes": 0,
            "avg_retweets": 0,
            "avg_replies": 0,
            "avg_views": 0.0,
        }
    else:
        window["category_counts"] = {name: rng.randint(0, posts) for name in _CATEGORIES}
        window["top_terms"] = {name: rng.sample(terms, rng.randint(0, 4)) for name, terms in _TERMS.items()}
        likes, retweets, replies = rng.randint(0, 80 * posts), rng.randint(0, 20 * posts), rng.randint(0, 15 * posts)
        engagement = {"total_likes": likes, "total_retweets": retweets, "total_replies": replies}
        engagement["total_quotes"] = rng.randint(0, 3 * posts)
        engagement["total_bookmarks"] = rng.randint(0, 5 * posts)
        if last2:
            views = rng.randint(100 * posts, 3000 * posts)
            engagement.update(
                total_views=views,
                avg_likes=round(likes / posts, 3),
                avg_retweets=round(retweets / posts, 3),
                avg_replies=round(replies / posts, 3),
                avg_views=round(views / posts, 3),
            )
        else:
            engagement["total_impressions"] = None  # always null today (spec)
        window["platform_engagement"] = engagement
    window["tag_counts"] = _counts(rng, _TAGS, posts)
    window["cashtag_counts"] = _counts(rng, ["$BTC", "$ETH", "$SOL", "$USDC", "$PEPE"], posts)
    window["mention_counts"] = _counts(rng, _MENTIONS, posts)
    window["url_domain_counts"] = _counts(rng, _DOMAINS, posts)
    window["media_count"] = 0 if silent else rng.randint(0, posts)
    if silent:
        window["author_stats"] = {}
        window["content_stats"] = {}
    else:
        authors = rng.randint(1, posts)
        followers = sorted(int(10 ** rng.uniform(1, 6)) for _ in range(min(authors, 25)))
        total = sum(followers)
        mid = len(followers) // 2
        if last2:
            even = len(followers) % 2 == 0
            median = (followers[mid - 1] + followers[mid]) / 2 if even else followers[mid]
            stats = {}
        else:
            blue = rng.randint(0, authors)
            stats = {
                "distinct_authors_total": authors,
                "distinct_authors_blue": blue,
                "distinct_authors_verified": rng.randint(0, blue),
            }
            # An int64 field, sometimes written as an integral float by the collector.
            median = float(followers[mid]) if rng.random() < 0.2 else followers[mid]
        stats.update(
            followers_count_max=followers[-1],
            followers_count_mean=_num(rng, total / len(followers), 2),
            followers_count_median=median,
            followers_count_sum=total,
        )
        window["author_stats"] = stats
        retweets_n = rng.randint(0, posts)
        window["content_stats"] = {
            "posts_original": posts - retweets_n,
            "posts_retweets": retweets_n,
            "posts_with_cashtags": rng.randint(0, posts),
            "posts_with_hashtags": rng.randint(0, posts),
            "posts_with_links": rng.randint(0, posts),
            "posts_with_media": rng.randint(0, posts),
            "posts_with_mentions": rng.randint(0, posts),
        }
    window["sentiment_activity"] = _activity(rng, silent, posts, cycle_end, snapshot)
    min_posts = 3
    if silent:
        status = "silent"
    elif scored == 0 or posts < min_posts:
        status = "insufficient_data"
    else:
        status = "ok"
    window["bucket_status"] = status
    window["bucket_has_valid_sentiment"] = status == "ok"
    window["bucket_min_posts_for_score"] = min_posts
    window["ai_sentiment"] = _ai_sentiment(rng, pos, neu, neg, with_std=not last2)
    window["hybrid_decision_stats"] = {} if silent else _hybrid(rng, pos, neu, neg)
    return window


def _twitter(rng, sym, snapshot, silent):
    """(``twitter_sentiment_windows``, ``twitter_sentiment_meta``) for one entry."""
    cycle_end = CYCLE_EPOCH + ((snapshot - CYCLE_EPOCH) // CYCLE) * CYCLE
    cycle_start = cycle_end - CYCLE
    cycle_id = (cycle_start - CYCLE_EPOCH) // CYCLE
    zero_scored = not silent and rng.random() < P_ZERO_SCORED
    posts = 0 if silent else (rng.randint(1, 2) if zero_scored else int(10 ** rng.uniform(0, 2.3)))
    previous = rng.choice((0, posts, rng.randint(0, 40)))
    last = _window(rng, posts, last2=False, zero_scored=zero_scored, cycle_end=cycle_end, snapshot=snapshot)
    two = {
        "window_cycles": 2,
        "from_cycle_id": cycle_id - 1,
        "to_cycle_id": cycle_id,
        "cycle_start_utc": _iso_z(cycle_start - CYCLE),
        "cycle_end_utc": _iso_z(cycle_end),
    }
    two.update(
        _window(rng, posts + previous, last2=True, zero_scored=zero_scored, cycle_end=cycle_end, snapshot=snapshot)
    )
    windows = {"last_cycle": last, "last_2_cycles": two}
    created = cycle_end + timedelta(seconds=rng.randint(30, 600))
    meta = {
        "source": "sentiment_store",
        "captured_at_utc": (snapshot - timedelta(milliseconds=rng.randint(200, 5000))).isoformat(),
        "key_used": f"twitter:{sym.name}USDC:2h:{cycle_id}",
        "bucket_meta": {
            "coin": f"{sym.name}USDC",
            "asset_unified_id": f"asset:{sym.name.lower()}",
            "platform": "twitter",
            "bucket_span": "2h",
            "cycle_id": cycle_id,
            "platform_cycle_id": 500_000 + cycle_id,
            "cycle_start_utc": _iso_z(cycle_start),
            "cycle_end_utc": _iso_z(cycle_end),
            "date": cycle_start.date().isoformat(),
            "created_at_utc": created.isoformat().replace("+00:00", "Z"),
            "is_silent": silent,
            "scraper_version": "x-scraper 4.2.1",
            "lexicon_version": "lex-2025.09",
            "sentiment_model_version": "hybrid-2.3.0",
        },
    }
    return windows, meta


# --- One entry -------------------------------------------------------------------------------------


def _entry_parts(rng, sym, snapshot_ms, samples):
    """The entry as (dict without ``spot_prices``, spot_prices JSON text): the writer's fast path."""
    snapshot = datetime.fromtimestamp(snapshot_ms / 1000, UTC)
    price = sym.price * math.exp(rng.gauss(0, 0.05))
    last_sample_ms = snapshot_ms - rng.randint(300, 4000)
    prices_text, last = _price_samples(rng, sym, samples, last_sample_ms, price)
    duration_ms = snapshot_ms - last["first_ms"] + rng.randint(0, 3000)
    added_ms = snapshot_ms - duration_ms
    mid, bid, ask = last["mid"], last["bid"], last["ask"]
    spread_bps = round((ask - bid) / mid * 10_000, 4) if mid else 0
    depth5 = sym.liq_usd * rng.uniform(0.0005, 0.003)
    liq = sym.liq_usd * math.exp(rng.gauss(0, 0.3))
    universe_ms = snapshot_ms - rng.randint(60_000, 3_600_000)
    meta = {
        "schema_version": SCHEMA_VERSION,
        "archive_schema_version": SCHEMA_VERSION,
        "session_id": f"{sym.name}-{_hex(rng, 12)}",
        "source": "binance_spot_ws",
        "added_ts": iso_ms(added_ms),
        "expires_ts": iso_ms(added_ms + 2 * 3_600_000 + 600_000),
        "expired_ts": None,  # always null
        "last_sample_ts": iso_ms(last_sample_ms),
        "duration_sec": _num(rng, duration_ms / 1000, 3),
        "sample_count": samples,
        "total_samples": samples + rng.choice((0, 0, rng.randint(1, 30))),
        "universe_snapshot_id": f"u-{universe_ms // 1000}",
        "universe_snapshot_ts": iso_ms(universe_ms),
        "universe_snapshot_lag_sec": _num(rng, (snapshot_ms - universe_ms) / 1000, 3),
        "universe_page": sym.page,
        "universe_page_size": 100,
        "futures_api_base": "https://fapi.binance.com",
        "scoring_version": "score-7.4",
        "normalization_version": "norm-3.1",
        "pairbonus_version": "pb-1.2",
    }
    spot_raw = {
        "mid": mid,
        "bid": bid,
        "ask": ask,
        "last": round(rng.choice((bid, ask, mid)), sym.decimals + 1),
        "spread_bps": spread_bps,
        "range_pct_24h": _num(rng, rng.uniform(0.5, 25)),
        "ticker24_chg": _num(rng, rng.gauss(0, 6)),
        "depth_5bps_quote": _num(rng, depth5, 2),
        "depth_10bps_quote": _num(rng, depth5 * rng.uniform(1.5, 3), 2),
        "depth_25bps_quote": _num(rng, depth5 * rng.uniform(3, 8), 2),
        "depth_bid_qty_quote": _num(rng, depth5 * rng.uniform(2, 10), 2),
        "depth_ask_qty_quote": _num(rng, depth5 * rng.uniform(2, 10), 2),
        "obi_5": _num(rng, rng.uniform(-1, 1)),
        "micro_premium_pct": _num(rng, rng.gauss(0, 0.01), 6),
        "avg_impact_pct": None,  # always null
        "liq_qv_usd": _num(rng, liq, 2),
        "liq_eff_raw": _num(rng, rng.uniform(0, 1), 6),
        "spread_eff_raw": _num(rng, rng.uniform(0, 1), 6),
        "taker_buy_ratio_5m": _num(rng, rng.uniform(0.2, 0.8)),
    }
    futures = None
    if sym.has_futures:
        age = rng.choice((rng.randint(1, 60), rng.randint(1, 60), rng.randint(60, 900)))
        futures = {
            "contract": f"{sym.name}USDT",
            "last_updated_ts": iso_ms(snapshot_ms - age * 1000 - rng.randint(0, 999)),
            "age_sec": age,
            "funding_now": _num(rng, rng.gauss(0.0001, 0.0002), 8),
            "funding_24h_mean": _num(rng, rng.gauss(0.0001, 0.0001), 8),
            "open_interest": _num(rng, liq * rng.uniform(0.05, 2), 3),
            "open_interest_1h_delta_pct": _num(rng, rng.gauss(0, 2)),
            "basis_now_bps": _num(rng, rng.gauss(2, 8), 3),
            "top_long_short_accounts_1h": _num(rng, rng.uniform(0.4, 3.5)),
            "top_long_short_positions_1h": _num(rng, rng.uniform(0.4, 3.5)),
        }
    derived = {
        "spread_bps": spread_bps,
        "spread_pct": round(spread_bps / 100, 6),
        "depth_spread_bps": _num(rng, spread_bps * rng.uniform(1, 3)),
        "depth_weighted": _num(rng, depth5 * rng.uniform(1, 4), 2),
        "depth_imbalance": _num(rng, rng.uniform(-1, 1)),
        "depth_skew": _num(rng, rng.gauss(0, 0.5)),
        "flow": _num(rng, rng.uniform(-1, 1)),
        "liq_global_pct": _num(rng, rng.uniform(0, 100), 2),
        "liq_self_pct": _num(rng, rng.uniform(0, 100), 2),
    }
    score_names = ("final", "liq", "spread", "depth", "flow", "taker", "mom", "vol", "str", "microstruct")
    scores = {name: _score(rng) for name in score_names}
    scores.update(compression_score=_score(rng), liq_eff_score=_score(rng), spread_eff_score=_score(rng))
    stale = futures is not None and futures["age_sec"] > 300
    flags = {
        "spot_data_ok": rng.random() < 0.99,
        "futures_data_ok": futures is not None and not stale,
        "futures_stale": stale,
        "compression_enabled": rng.random() < 0.7,
        "mom_fallback": rng.random() < 0.05,
        "vol_fallback": rng.random() < 0.05,
        "spread_fallback": rng.random() < 0.03,
        "pair_bonus_applied": rng.choice((0, 0, 0.05, 0.1, 0.025)),
    }
    silent = rng.random() < sym.silent_p
    windows_null = rng.random() < P_WINDOWS_NULL
    if rng.random() < 0.6:
        flags["twitter_data_ok"] = not windows_null
    if rng.random() < 0.5:
        flags["futures_contract_exists"] = sym.has_futures
    if rng.random() < 0.2:
        flags["futures_contract_check_failed"] = rng.random() < 0.1
    diag = {"builder_version": "snapbuilder-7.3.2", "build_duration_ms": _num(rng, rng.uniform(2, 90), 3)}
    if rng.random() < 0.6:
        diag["admission_validated"] = rng.random() < 0.97
        diag["admission_validation_ts"] = iso_ms(added_ms + rng.randint(50, 2000))
    if rng.random() < 0.1:
        diag["backfill_normalized"] = {"applied": True, "fields": ["spot_raw.obi_5"], "from_version": "norm-3.0"}
    windows, twitter_meta = _twitter(rng, sym, snapshot, silent)
    if windows_null:
        windows = None
        if rng.random() < P_TWITTER_META_NULL:
            twitter_meta = None
    head = {
        "symbol": sym.name,
        "snapshot_ts": iso_ms(snapshot_ms),
        "meta": meta,
        "spot_raw": spot_raw,
        "futures_raw": futures,
        "derived": derived,
        "norm": {},
        "scores": scores,
        "flags": flags,
        "diag": diag,
        "labels": {},
        "twitter_sentiment_windows": windows,
        "twitter_sentiment_meta": twitter_meta,
    }
    if rng.random() < P_DIAG_ABSENT:
        del head["diag"]
    return head, prices_text


def _line(head, prices_text):
    """The entry's JSON line (no newline): the head dict plus the prebuilt spot_prices text."""
    text = json.dumps(head, ensure_ascii=False, allow_nan=False)
    return f'{text[:-1]}, "spot_prices": [{prices_text}]}}'


def make_entry(rng, symbol, day, hour, *, samples_per_entry=DEFAULT_SAMPLES_PER_ENTRY, snapshot_ms=None):
    """One entry as a dict, exactly as it would be parsed back from a written line."""
    sym = _BY_NAME.get(symbol) or _Symbol(symbol, 1.0, 5, 10.0, 0.002, 1e6, True, 0.25, 1)
    if snapshot_ms is None:
        snapshot_ms = _hour_ms(day, hour) + rng.randrange(3_600_000)
    return json.loads(_line(*_entry_parts(rng, sym, snapshot_ms, samples_per_entry)))


# --- Hour files and days -----------------------------------------------------------------------------


@dataclass
class DayStats:
    """What ``write_day`` wrote: the oracle for tests of the builder (rows, bad lines, coercions)."""

    day: date
    path: Path
    hours: tuple = ()  # hour numbers of the files written
    missing_hours: tuple = ()
    rows_by_hour: dict = field(default_factory=dict)  # "HH" -> complete entry lines
    skipped_by_hour: dict = field(default_factory=dict)  # "HH" -> every other line (blank included)
    bad_lines: list = field(default_factory=list)  # ("HH", kind): blank, not_json, not_object, truncated,
    # and with archive flaws duplicate (one per repeated line) and wrong_type
    bad_hours: dict = field(default_factory=dict)  # "HH" -> "empty" or "not_gzip": files written, never read
    conflicting_duplicates: int = 0
    coerced: dict = field(default_factory=dict)  # tier 3 path -> values a typed reader must null
    coerced_hour: str | None = None  # "HH" of the entry carrying the coercions
    symbols: int = 0
    silent_rows: int = 0
    futures_null_rows: int = 0
    min_snapshot_ts: str | None = None
    max_snapshot_ts: str | None = None
    json_bytes: int = 0
    gz_bytes: int = 0
    seconds: float = 0.0
    flaws: bool = False
    archive_flaws: bool = False

    @property
    def rows(self):
        return sum(self.rows_by_hour.values())

    @property
    def hours_found(self):
        """Hour files a reader reads: written and not bad."""
        return len(self.hours) - len(self.bad_hours)

    @property
    def is_partial(self):
        return self.hours_found < 24

    @property
    def folder(self):
        return self.day.strftime("%Y%m%d")


def _hour_ms(day, hour):
    return _epoch_ms(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def _rng(seed, day, hour, part=""):
    return random.Random(f"{seed}:{day.isoformat()}:{hour:02d}{part}")


def _gzip_member(lines, *, name, sync_after=None):
    """One gzip member (mtime 0, fixed name); with ``sync_after``, also the offset after that line."""
    buf = io.BytesIO()
    offset = None
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, compresslevel=COMPRESSLEVEL, mtime=0) as gz:
        for i, line in enumerate(lines):
            gz.write(line)
            if i == sync_after:
                gz.flush(zlib.Z_SYNC_FLUSH)
                offset = buf.tell()
    return buf.getvalue(), offset


def _truncated_member(complete_line, cut_line, *, name):
    """A gzip member holding a complete line then a line cut mid-way, with no end (no trailer).

    The complete line is flushed first, so a streaming reader gets all of it; the cut lands in the
    middle of the second line's compressed bytes, so the reader gets part of it and no newline.
    """
    data, offset = _gzip_member([complete_line, cut_line], name=name, sync_after=0)
    for cut in range(offset + (len(data) - offset) // 2, len(data) - 8):
        out = zlib.decompressobj(wbits=31).decompress(data[:cut])
        if len(out) > len(complete_line) + 10 and not out.endswith(b"\n"):
            return data[:cut]
    raise AssertionError("could not cut the member mid-line")  # pragma: no cover


def partial_day_missing_hours(day, seed=DEFAULT_SEED, count=PARTIAL_DAY_MISSING):
    """The hours a partial day lacks: deterministic per (seed, day), never hour 00 or 23."""
    return tuple(sorted(random.Random(f"{seed}:{day.isoformat()}:partial").sample(range(1, 23), count)))


def write_day(
    root,
    day,
    *,
    seed=DEFAULT_SEED,
    entries_per_hour=DEFAULT_ENTRIES_PER_HOUR,
    samples_per_entry=DEFAULT_SAMPLES_PER_ENTRY,
    flaws=False,
    missing_hours=(),
    archive_flaws=False,
):
    """Write one day folder (24 hour files but ``missing_hours``, and ``FLAW_MISSING_HOUR`` with flaws).

    Stale hour files of a previous run that this day should lack are removed, so the folder always
    matches the returned stats. Each file is written beside its final name, then renamed.
    """
    started = time.perf_counter()
    if entries_per_hour < 1 or samples_per_entry < 1:
        raise ValueError("entries_per_hour and samples_per_entry must be at least 1")
    folder = Path(root) / day.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    missing = set(missing_hours) | ({FLAW_MISSING_HOUR} if flaws else set())
    hours = [h for h in range(24) if h not in missing]
    if archive_flaws and len(hours) < 21:
        raise ValueError("archive_flaws needs at least 21 hour files")
    stats = DayStats(
        day=day,
        path=folder,
        hours=tuple(hours),
        missing_hours=tuple(sorted(missing)),
        flaws=flaws,
        archive_flaws=archive_flaws,
    )
    for hour in sorted(missing):
        (folder / f"{hour:02d}.jsonl.gz").unlink(missing_ok=True)

    def at(index):
        return hours[min(index, len(hours) - 1)] if hours else None

    flaw_at = {}
    if flaws and hours:
        for kind, index in (
            ("blank", FLAW_BLANK_AT),
            ("not_json", FLAW_NOT_JSON_AT),
            ("not_object", FLAW_NOT_OBJECT_AT),
            ("coerce", FLAW_COERCE_AT),
            ("truncated", len(hours) - 1),
        ):
            flaw_at.setdefault(at(index), []).append(kind)
    if archive_flaws:
        for kind, index in (
            ("replay", ARCHIVE_FLAW_REPLAY_AT),
            ("empty", ARCHIVE_FLAW_EMPTY_AT),
            ("conflict", ARCHIVE_FLAW_CONFLICT_AT),
            ("wrong_type", ARCHIVE_FLAW_WRONG_TYPE_AT),
            ("not_gzip", ARCHIVE_FLAW_NOT_GZIP_AT),
            ("copied", ARCHIVE_FLAW_COPIED_AT),
        ):
            flaw_at.setdefault(at(index), []).append(kind)
    symbols = set()
    snapshots = []
    previous_lines = []  # the entry lines of the hour before, for a replay
    for hour in hours:
        kinds = flaw_at.get(hour, [])
        rng = _rng(seed, day, hour)
        picked = rng.sample(UNIVERSE, min(entries_per_hour, len(UNIVERSE)))
        picked += [rng.choice(UNIVERSE) for _ in range(entries_per_hour - len(picked))]
        start = _hour_ms(day, hour)
        moments = sorted(start + rng.randrange(3_600_000) for _ in picked)
        parts = [_entry_parts(rng, sym, ms, samples_per_entry) for sym, ms in zip(picked, moments, strict=True)]
        hh = f"{hour:02d}"
        skipped = 0
        bad = next((kind for kind in ("empty", "not_gzip") if kind in kinds), None)
        if bad:  # a bad hour is never read: none of its entries count
            lines = [(_line(head, text) + "\n").encode() for head, text in parts]
            data = b"" if bad == "empty" else b"".join(lines)
            _write_hour(folder, hh, data)
            stats.bad_hours[hh] = bad
            stats.gz_bytes += len(data)
            stats.rows_by_hour[hh] = 0
            stats.skipped_by_hour[hh] = 0
            previous_lines = []
            continue
        if "coerce" in kinds and _coerce(parts, stats):
            stats.coerced_hour = hh
        for head, _ in parts:
            symbols.add(head["symbol"])
            snapshots.append(head["snapshot_ts"])
            meta = head.get("twitter_sentiment_meta")
            stats.silent_rows += bool(meta and meta["bucket_meta"]["is_silent"])
            stats.futures_null_rows += head["futures_raw"] is None
        lines = [(_line(head, text) + "\n").encode() for head, text in parts]
        entry_lines = list(lines)
        rows = len(parts)
        if "conflict" in kinds:  # the first entry again, with another score: both are published
            head = json.loads(json.dumps(parts[0][0]))
            head["scores"]["final"] = (head["scores"].get("final") or 0) + 0.5
            lines.append((_line(head, parts[0][1]) + "\n").encode())
            stats.conflicting_duplicates += 1
            rows += 1
        if "wrong_type" in kinds:  # a collector bug: the time as epoch milliseconds
            head = json.loads(json.dumps(parts[-1][0]))
            head["snapshot_ts"] = _epoch_ms(datetime.fromisoformat(head["snapshot_ts"].replace("Z", "+00:00")))
            lines.append((_line(head, parts[-1][1]) + "\n").encode())
            stats.bad_lines.append((hh, "wrong_type"))
            skipped += 1
        if "replay" in kinds and previous_lines:  # a restarted collector replays its last lines
            replayed = previous_lines[-ARCHIVE_FLAW_REPLAYED_LINES:]
            lines[:0] = replayed
            stats.bad_lines.extend((hh, "duplicate") for _ in replayed)
            skipped += len(replayed)
        for kind, line, position in (
            ("blank", b"\n", 1),
            ("not_json", _cut(lines[0]), 2),
            ("not_object", (FLAW_NOT_OBJECT_LINE + "\n").encode(), 1),
        ):
            if kind in kinds:
                lines.insert(min(position, len(lines)), line)
                stats.bad_lines.append((hh, kind))
                skipped += 1
        name = f"{hh}.jsonl"
        data, _ = _gzip_member(lines if "truncated" not in kinds else lines[:-1], name=name)
        if "copied" in kinds:  # the hour file appended to itself: every line a second time
            data += data
            stats.bad_lines.extend((hh, "duplicate") for _ in lines)
            skipped += len(lines)
        if "truncated" in kinds:
            tail_rng = _rng(seed, day, hour, ":tail")
            tail_ms = max(moments[-1], start + 3_599_000)
            tail_sym = tail_rng.choice(UNIVERSE)
            tail = (_line(*_entry_parts(tail_rng, tail_sym, tail_ms, samples_per_entry)) + "\n").encode()
            data += _truncated_member(lines[-1], tail, name=name)
            stats.bad_lines.append((hh, "truncated"))
            skipped += 1
        stats.json_bytes += sum(len(line) for line in lines) * (2 if "copied" in kinds else 1)
        stats.gz_bytes += len(data)
        _write_hour(folder, hh, data)
        previous_lines = entry_lines
        stats.rows_by_hour[hh] = rows
        stats.skipped_by_hour[hh] = skipped
    stats.symbols = len(symbols)
    if snapshots:
        stats.min_snapshot_ts, stats.max_snapshot_ts = min(snapshots), max(snapshots)
    stats.seconds = time.perf_counter() - started
    return stats


def _write_hour(folder, hh, data):
    """Written beside its final name, then renamed: a reader never sees half a file."""
    temp = folder / f".{hh}.jsonl.gz.tmp"
    temp.write_bytes(data)
    os.replace(temp, folder / f"{hh}.jsonl.gz")


def _cut(line):
    """An entry cut at a third (on a character boundary: the line stays UTF-8, only not JSON)."""
    text = line.decode()
    return (text[: len(text) // 3] + "\n").encode()


def _coerce(parts, stats):
    """Put the two coercion flaws into the first entry that has a non-silent last cycle."""
    for head, _ in parts:
        windows = head.get("twitter_sentiment_windows")
        author = windows and windows["last_cycle"]["author_stats"]
        if author:
            author["followers_count_median"] = author["followers_count_max"] - 0.5
            head["spot_raw"]["liq_qv_usd"] = "n/a"
            for path in COERCED_PATHS:
                stats.coerced[path] = stats.coerced.get(path, 0) + 1
            return True
    return False  # no entry of that hour has a non-silent last cycle: no coercion this day


def today_utc():
    """Today is still being written by the collector: samples stop at yesterday."""
    return datetime.now(UTC).date()


def yesterday_utc():
    return today_utc() - timedelta(days=1)


def archive_days(days, end=None):
    """The ``days`` dates ending at ``end`` (default yesterday UTC), oldest first."""
    end = end or yesterday_utc()
    return [end - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def write_archive(
    root,
    days,
    *,
    end=None,
    seed=DEFAULT_SEED,
    entries_per_hour=DEFAULT_ENTRIES_PER_HOUR,
    samples_per_entry=DEFAULT_SAMPLES_PER_ENTRY,
    flaws=False,
    partial_days=(),
    on_day=None,
    archive_flaws=False,
):
    """Write several days; ``days`` is a count (ending at ``end``) or an iterable of dates.

    ``flaws`` and ``archive_flaws`` apply to the last (latest) day only, so the days before it are
    clean references.
    ``partial_days`` lack ``partial_day_missing_hours`` (3 hours: 21 files). ``on_day(stats)`` is
    called after each day, for progress.
    """
    dates = archive_days(days, end) if isinstance(days, int) else sorted(days)
    partial = set(partial_days)
    results = []
    for day in dates:
        stats = write_day(
            root,
            day,
            seed=seed,
            entries_per_hour=entries_per_hour,
            samples_per_entry=samples_per_entry,
            flaws=flaws and day == dates[-1],
            archive_flaws=archive_flaws and day == dates[-1],
            missing_hours=partial_day_missing_hours(day, seed) if day in partial else (),
        )
        results.append(stats)
        if on_day:
            on_day(stats)
    return results
