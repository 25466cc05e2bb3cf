"""A realistic, deterministic sample of the collector's raw archive (data contract section 1).

The builder must be tested against everything real files contain, and a demo needs days to build,
without access to the collector. This module writes ``ROOT/YYYYMMDD/HH.jsonl.gz`` files whose
entries have the schema-7 shape of the spec: key order, silent coins, absent sections, always-null
fields, ints where doubles are expected, and (optionally) the flaws of real files.

The parts, from the bottom up: ``symbols`` (the symbol table), ``values`` (how the collector
writes numbers and times), ``sentiment`` (the Twitter sections), ``entries`` (one entry and its
JSON line), ``files`` (hour files and days, with the flaws below). This package is their interface.

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

from .entries import ALWAYS_NULL, DEFAULT_SAMPLES_PER_ENTRY, SCHEMA_VERSION, TOP_KEYS, make_entry
from .files import (
    COERCED_PATHS,
    DEFAULT_ENTRIES_PER_HOUR,
    DEFAULT_SEED,
    FLAW_MISSING_HOUR,
    PARTIAL_DAY_MISSING,
    DayStats,
    archive_days,
    partial_day_missing_hours,
    today_utc,
    write_archive,
    write_day,
    yesterday_utc,
)
from .symbols import UNIVERSE

__all__ = [
    "ALWAYS_NULL",
    "COERCED_PATHS",
    "DEFAULT_ENTRIES_PER_HOUR",
    "DEFAULT_SAMPLES_PER_ENTRY",
    "DEFAULT_SEED",
    "FLAW_MISSING_HOUR",
    "PARTIAL_DAY_MISSING",
    "SCHEMA_VERSION",
    "TOP_KEYS",
    "UNIVERSE",
    "DayStats",
    "archive_days",
    "make_entry",
    "partial_day_missing_hours",
    "today_utc",
    "write_archive",
    "write_day",
    "yesterday_utc",
]
