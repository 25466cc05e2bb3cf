"""The symbol table: about 275 base assets, real names first, then synthetic ones, each with fixed
traits (price, tick, spread, volatility, liquidity, a perpetual or not, how often it is silent),
the same whatever the seed."""

import math
import random
from dataclasses import dataclass

MAJORS = [
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


@dataclass(frozen=True)
class Symbol:
    name: str
    price: float
    decimals: int
    spread_bps: float
    vol: float  # per-sample relative volatility of the mid
    liq_usd: float
    has_futures: bool
    silent_p: float
    page: int


def make_universe():
    """About 275 base assets, real names first, then synthetic ones; a third lack a perpetual."""
    rng = random.Random("instrumetriq-universe-v1")
    names = list(MAJORS)
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
        has_futures = True if major else rng.random() < (0.55 if i < len(MAJORS) else 0.62)
        symbols.append(
            Symbol(
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


UNIVERSE = make_universe()
BY_NAME = {s.name: s for s in UNIVERSE}
