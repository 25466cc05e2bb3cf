"""How the collector writes numbers and times: ISO times with milliseconds and ``Z``, doubles
rounded and now and then written as ints, scores clamped to 0..100."""

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

P_INTEGRAL = 0.15  # a double written as an int (`50`, `0`)


@lru_cache(maxsize=64)
def date_str(day_number):
    return (date(1970, 1, 1) + timedelta(days=day_number)).isoformat()


def iso_ms(ms):
    """Epoch milliseconds as ``2026-11-23T05:17:42.123Z`` (fast: called for every price sample)."""
    days, rem = divmod(ms, 86_400_000)
    secs, msec = divmod(rem, 1000)
    hours, secs = divmod(secs, 3600)
    minutes, secs = divmod(secs, 60)
    return f"{date_str(days)}T{hours:02d}:{minutes:02d}:{secs:02d}.{msec:03d}Z"


def epoch_ms(moment):
    return int(moment.timestamp() * 1000)


def iso_z(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def num(rng, value, digits=4):
    """A double as the collector writes it: rounded, and now and then an int (``50`` not ``50.0``)."""
    value = round(value, digits)
    if rng.random() < P_INTEGRAL or value == int(value):
        return int(round(value))
    return value


def score(rng):
    """A 0..100 score; clamped and round values are written as ints."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice((0, 50, 100))
    if roll < P_INTEGRAL:
        return rng.randint(0, 100)
    return round(rng.uniform(0, 100), 2)


def hex_digits(rng, n):
    return f"{rng.getrandbits(4 * n):0{n}x}"


def hour_ms(day, hour):
    return epoch_ms(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))
