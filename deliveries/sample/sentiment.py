"""The Twitter sentiment sections of an entry (``twitter_sentiment_windows`` and
``twitter_sentiment_meta``): two windows per two-hour cycle, silent coins, posts none of which was
scored, and the words, tags and mentions posts draw from."""

from datetime import UTC, datetime, timedelta

from .values import iso_z, num

P_ZERO_SCORED = 0.06  # of non-silent rows: posts but none scored, so mean_score is null

CYCLE = timedelta(hours=2)
CYCLE_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

TERMS = {
    "fud_fear": ["dump", "crash", "rekt", "sell-off", "bear", "capitulation", "liquidated", "fear"],
    "meme_slang": ["wagmi", "gm", "ngmi", "ser", "fren", "hodl", "degen", "lfg", "wen"],
    "negative_general": ["bad", "weak", "down", "worst", "delay", "lost", "problem"],
    "positive_general": ["great", "strong", "bullish", "growth", "partnership", "upgrade", "adoption"],
    "pump_hype": ["moon", "🚀", "100x", "send it", "pump", "breakout", "ath", "to the moon"],
    "scam_rug": ["rug", "scam", "honeypot", "exit", "ponzi", "fake"],
}
CATEGORIES = (
    "emoji_neg", "emoji_pos", "fud_fear", "meme_slang", "negative_general", "positive_general", "pump_hype",
    "scam_rug",
)  # fmt: skip
TAGS = ["#crypto", "#altcoin", "#defi", "#web3", "#bullrun", "#trading", "#nft", "#año2026", "#🚀", "#airdrop"]
MENTIONS = ["@binance", "@coinbase", "@cz_binance", "@VitalikButerin", "@solana", "@whale_alert", "@lookonchain"]
DOMAINS = ["x.com", "binance.com", "coingecko.com", "t.me", "youtu.be", "medium.com", "dexscreener.com"]


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
            latest_at = iso_z(latest)
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
        "latest_tweet_at": iso_z(latest),
        "hours_since_latest_tweet": num(rng, (snapshot - latest).total_seconds() / 3600, 3),
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
        "score": None if silent else num(rng, rng.uniform(-0.6, 0.8)),
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
        window["category_counts"] = {name: rng.randint(0, posts) for name in CATEGORIES}
        window["top_terms"] = {name: rng.sample(terms, rng.randint(0, 4)) for name, terms in TERMS.items()}
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
    window["tag_counts"] = _counts(rng, TAGS, posts)
    window["cashtag_counts"] = _counts(rng, ["$BTC", "$ETH", "$SOL", "$USDC", "$PEPE"], posts)
    window["mention_counts"] = _counts(rng, MENTIONS, posts)
    window["url_domain_counts"] = _counts(rng, DOMAINS, posts)
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
            followers_count_mean=num(rng, total / len(followers), 2),
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


def twitter_sections(rng, sym, snapshot, silent):
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
        "cycle_start_utc": iso_z(cycle_start - CYCLE),
        "cycle_end_utc": iso_z(cycle_end),
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
            "cycle_start_utc": iso_z(cycle_start),
            "cycle_end_utc": iso_z(cycle_end),
            "date": cycle_start.date().isoformat(),
            "created_at_utc": created.isoformat().replace("+00:00", "Z"),
            "is_silent": silent,
            "scraper_version": "x-scraper 4.2.1",
            "lexicon_version": "lex-2025.09",
            "sentiment_model_version": "hybrid-2.3.0",
        },
    }
    return windows, meta
