"""Hour files and days: ``ROOT/YYYYMMDD/HH.jsonl.gz`` written deterministically (gzip with mtime 0
and a fixed name, each hour file's generator seeded by seed, day and hour), partial days, and the
flaws of real files (``FLAW_*``, ``ARCHIVE_FLAW_*``), with ``DayStats`` saying what was written.
"""

import gzip
import io
import json
import os
import random
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from .entries import DEFAULT_SAMPLES_PER_ENTRY, entry_line, entry_parts
from .symbols import UNIVERSE
from .values import epoch_ms, hour_ms

DEFAULT_ENTRIES_PER_HOUR = 4
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
        start = hour_ms(day, hour)
        moments = sorted(start + rng.randrange(3_600_000) for _ in picked)
        parts = [entry_parts(rng, sym, ms, samples_per_entry) for sym, ms in zip(picked, moments, strict=True)]
        hh = f"{hour:02d}"
        skipped = 0
        bad = next((kind for kind in ("empty", "not_gzip") if kind in kinds), None)
        if bad:  # a bad hour is never read: none of its entries count
            lines = [(entry_line(head, text) + "\n").encode() for head, text in parts]
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
        lines = [(entry_line(head, text) + "\n").encode() for head, text in parts]
        entry_lines = list(lines)
        rows = len(parts)
        if "conflict" in kinds:  # the first entry again, with another score: both are published
            head = json.loads(json.dumps(parts[0][0]))
            head["scores"]["final"] = (head["scores"].get("final") or 0) + 0.5
            lines.append((entry_line(head, parts[0][1]) + "\n").encode())
            stats.conflicting_duplicates += 1
            rows += 1
        if "wrong_type" in kinds:  # a collector bug: the time as epoch milliseconds
            head = json.loads(json.dumps(parts[-1][0]))
            head["snapshot_ts"] = epoch_ms(datetime.fromisoformat(head["snapshot_ts"].replace("Z", "+00:00")))
            lines.append((entry_line(head, parts[-1][1]) + "\n").encode())
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
            tail = (entry_line(*entry_parts(tail_rng, tail_sym, tail_ms, samples_per_entry)) + "\n").encode()
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
