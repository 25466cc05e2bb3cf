"""One entry of the archive, as the collector writes it (data contract section 1): schema 7's
key order and sections, spot prices on the symbol's tick grid, always-null fields, absent
sections, and the JSON line itself (built partly as text: the price samples are most of it).
"""

import json
import math
from datetime import UTC, datetime

from .sentiment import twitter_sections
from .symbols import BY_NAME, Symbol
from .values import date_str, hex_digits, hour_ms, iso_ms, num, score

SCHEMA_VERSION = 7
DEFAULT_SAMPLES_PER_ENTRY = 20
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

# Rates per entry. Silent coins are about a quarter of rows (see Symbol.silent_p).
P_DIAG_ABSENT = 0.02
P_WINDOWS_NULL = 0.02
P_TWITTER_META_NULL = 0.5  # of the rows whose windows are null
P_QUOTE_MOVES = 0.18  # of price samples whose quotes differ from the sample before


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
        append(f'{{"ts": "{date_str(days)}T{hours:02d}:{minutes:02d}:{secs:02d}.{msec:03d}Z", {quote}')
        t += step
    last = {
        "first_ms": first_ms,
        "mid": float(f"{mid_t2 * tick / 2:.{d1}f}"),
        "bid": float(f"{bid_t * tick:.{d}f}"),
        "ask": float(f"{ask_t * tick:.{d}f}"),
    }
    return ", ".join(parts), last


# --- One entry -------------------------------------------------------------------------------------


def entry_parts(rng, sym, snapshot_ms, samples):
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
        "session_id": f"{sym.name}-{hex_digits(rng, 12)}",
        "source": "binance_spot_ws",
        "added_ts": iso_ms(added_ms),
        "expires_ts": iso_ms(added_ms + 2 * 3_600_000 + 600_000),
        "expired_ts": None,  # always null
        "last_sample_ts": iso_ms(last_sample_ms),
        "duration_sec": num(rng, duration_ms / 1000, 3),
        "sample_count": samples,
        "total_samples": samples + rng.choice((0, 0, rng.randint(1, 30))),
        "universe_snapshot_id": f"u-{universe_ms // 1000}",
        "universe_snapshot_ts": iso_ms(universe_ms),
        "universe_snapshot_lag_sec": num(rng, (snapshot_ms - universe_ms) / 1000, 3),
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
        "range_pct_24h": num(rng, rng.uniform(0.5, 25)),
        "ticker24_chg": num(rng, rng.gauss(0, 6)),
        "depth_5bps_quote": num(rng, depth5, 2),
        "depth_10bps_quote": num(rng, depth5 * rng.uniform(1.5, 3), 2),
        "depth_25bps_quote": num(rng, depth5 * rng.uniform(3, 8), 2),
        "depth_bid_qty_quote": num(rng, depth5 * rng.uniform(2, 10), 2),
        "depth_ask_qty_quote": num(rng, depth5 * rng.uniform(2, 10), 2),
        "obi_5": num(rng, rng.uniform(-1, 1)),
        "micro_premium_pct": num(rng, rng.gauss(0, 0.01), 6),
        "avg_impact_pct": None,  # always null
        "liq_qv_usd": num(rng, liq, 2),
        "liq_eff_raw": num(rng, rng.uniform(0, 1), 6),
        "spread_eff_raw": num(rng, rng.uniform(0, 1), 6),
        "taker_buy_ratio_5m": num(rng, rng.uniform(0.2, 0.8)),
    }
    futures = None
    if sym.has_futures:
        age = rng.choice((rng.randint(1, 60), rng.randint(1, 60), rng.randint(60, 900)))
        futures = {
            "contract": f"{sym.name}USDT",
            "last_updated_ts": iso_ms(snapshot_ms - age * 1000 - rng.randint(0, 999)),
            "age_sec": age,
            "funding_now": num(rng, rng.gauss(0.0001, 0.0002), 8),
            "funding_24h_mean": num(rng, rng.gauss(0.0001, 0.0001), 8),
            "open_interest": num(rng, liq * rng.uniform(0.05, 2), 3),
            "open_interest_1h_delta_pct": num(rng, rng.gauss(0, 2)),
            "basis_now_bps": num(rng, rng.gauss(2, 8), 3),
            "top_long_short_accounts_1h": num(rng, rng.uniform(0.4, 3.5)),
            "top_long_short_positions_1h": num(rng, rng.uniform(0.4, 3.5)),
        }
    derived = {
        "spread_bps": spread_bps,
        "spread_pct": round(spread_bps / 100, 6),
        "depth_spread_bps": num(rng, spread_bps * rng.uniform(1, 3)),
        "depth_weighted": num(rng, depth5 * rng.uniform(1, 4), 2),
        "depth_imbalance": num(rng, rng.uniform(-1, 1)),
        "depth_skew": num(rng, rng.gauss(0, 0.5)),
        "flow": num(rng, rng.uniform(-1, 1)),
        "liq_global_pct": num(rng, rng.uniform(0, 100), 2),
        "liq_self_pct": num(rng, rng.uniform(0, 100), 2),
    }
    score_names = ("final", "liq", "spread", "depth", "flow", "taker", "mom", "vol", "str", "microstruct")
    scores = {name: score(rng) for name in score_names}
    scores.update(compression_score=score(rng), liq_eff_score=score(rng), spread_eff_score=score(rng))
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
    diag = {"builder_version": "snapbuilder-7.3.2", "build_duration_ms": num(rng, rng.uniform(2, 90), 3)}
    if rng.random() < 0.6:
        diag["admission_validated"] = rng.random() < 0.97
        diag["admission_validation_ts"] = iso_ms(added_ms + rng.randint(50, 2000))
    if rng.random() < 0.1:
        diag["backfill_normalized"] = {"applied": True, "fields": ["spot_raw.obi_5"], "from_version": "norm-3.0"}
    windows, twitter_meta = twitter_sections(rng, sym, snapshot, silent)
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


def entry_line(head, prices_text):
    """The entry's JSON line (no newline): the head dict plus the prebuilt spot_prices text."""
    text = json.dumps(head, ensure_ascii=False, allow_nan=False)
    return f'{text[:-1]}, "spot_prices": [{prices_text}]}}'


def make_entry(rng, symbol, day, hour, *, samples_per_entry=DEFAULT_SAMPLES_PER_ENTRY, snapshot_ms=None):
    """One entry as a dict, exactly as it would be parsed back from a written line."""
    sym = BY_NAME.get(symbol) or Symbol(symbol, 1.0, 5, 10.0, 0.002, 1e6, True, 0.25, 1)
    if snapshot_ms is None:
        snapshot_ms = hour_ms(day, hour) + rng.randrange(3_600_000)
    return json.loads(entry_line(*entry_parts(rng, sym, snapshot_ms, samples_per_entry)))
