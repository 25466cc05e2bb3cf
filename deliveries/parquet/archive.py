"""Reading the collector's raw archive: ``ARCHIVE_ROOT/YYYYMMDD/HH.jsonl.gz``.

Hour files are read as a stream, one at a time, so memory follows one hour, not the day. Real
files have flaws, and each is handled by one rule, in its own function, so that a faster reader can
apply the same rules (or fall back to this one) and agree with it exactly:

- a hour file that is empty, not gzip, or gzip with nothing readable in it is a *bad hour*
  (``gzip_lines.hour_file_problem``): not read, counted as missing (``MIN_HOURS``, ``is_partial``)
  and listed in the manifest with its reason;
- a line longer than ``max_line_bytes`` is skipped without being held in memory
  (``gzip_lines.HourLines``);
- a blank line, a line that is not JSON or not a JSON object (``parse_line``), an entry without a
  required field or with one of the wrong type (``entry_problem``) is skipped and counted;
- an entry that repeats an earlier one of the day byte for byte (same ``symbol`` and
  ``snapshot_ts``, same line: an hour file copied twice, a replayed buffer) is skipped and counted
  as ``duplicate``; one with the key of an earlier entry but other content is kept, both are, and
  counted as a conflicting duplicate (``SeenEntries``);
- a truncated gzip member at the end of an hour still being written keeps what decompressed before
  the cut (``gzip_lines.HourLines``).

A bad line is counted with its reason, never fatal.
"""

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from ..tiers import REQUIRED_KEYS
from .gzip_lines import DEFAULT_MAX_LINE_BYTES, HourLines, hour_file_problem
from .shaping import is_text

HOURS = tuple(f"{h:02d}" for h in range(24))
DAY_FOLDER = re.compile(r"^\d{8}$")


class Skip:
    """Why a line is skipped (the manifest's ``skipped_lines.by_reason`` keys)."""

    LINE_TOO_LONG = "line_too_long"
    BLANK = "blank_line"
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_REQUIRED = "missing_required"
    WRONG_TYPE = "wrong_type"
    DUPLICATE = "duplicate"


class ArchiveError(Exception):
    """The archive cannot be read for a day. The message says why, in plain words."""


@dataclass
class HourFile:
    hour: str
    path: Path
    size: int
    problem: str = ""  # a BadHour reason: the file is not read


@dataclass
class DayFiles:
    day: date
    folder: Path
    files: list  # HourFile, every hour file present, in hour order

    @property
    def hours(self):
        """The hour files that are read: present and not bad."""
        return [h for h in self.files if not h.problem]

    @property
    def bad_hours(self):
        """``{"HH": reason}`` of the hour files present but unreadable, in hour order."""
        return {h.hour: h.problem for h in self.files if h.problem}

    @property
    def hours_found(self):
        return len(self.hours)

    @property
    def missing_hours(self):
        """Hours without data: no file, or a bad one."""
        good = {h.hour for h in self.hours}
        return [h for h in HOURS if h not in good]

    @property
    def fingerprint(self):
        """Names and sizes of the hour files: equal fingerprints mean the same input."""
        digest = hashlib.sha256()
        for hour in self.files:
            digest.update(f"{hour.hour}:{hour.size}{':bad' if hour.problem else ''}\n".encode())
        return digest.hexdigest()


@dataclass
class HourRead:
    hour: str
    entries: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    truncated: bool = False
    conflicting_duplicates: int = 0  # kept entries whose key an earlier, different entry of the day has
    batch: object = None  # the hour as a tier 3 RecordBatch, when the fast reader (fastjson) made it

    @property
    def skipped_total(self):
        return sum(self.skipped.values())

    @property
    def rows(self):
        return self.batch.num_rows if self.batch is not None else len(self.entries)


def folder_name(day):
    return day.strftime("%Y%m%d")


def available_days(root):
    """Days that have a folder in the archive, oldest first."""
    root = Path(root)
    try:
        names = os.listdir(root)
    except OSError as exc:
        raise ArchiveError(f"archive root {root} is not readable: {exc.strerror or exc}") from None
    days = []
    for name in names:
        if DAY_FOLDER.match(name) and (root / name).is_dir():
            try:
                days.append(datetime.strptime(name, "%Y%m%d").date())
            except ValueError:
                continue
    return sorted(days)


def find_day(root, day):
    """The hour files of a day, each checked (``hour_file_problem``). Raises ArchiveError when the
    root or the day folder is unusable."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"archive root {root} does not exist or is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ArchiveError(f"archive root {root} is not readable")
    folder = root / folder_name(day)
    if not folder.is_dir():
        raise ArchiveError(f"no archive folder for {day.isoformat()} ({folder} is missing)")
    files = []
    for hour in HOURS:
        path = folder / f"{hour}.jsonl.gz"
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not os.access(path, os.R_OK):
            raise ArchiveError(f"cannot read {path}: permission denied")
        try:
            problem = hour_file_problem(path, size)
        except OSError as exc:
            raise ArchiveError(f"cannot read {path}: {exc.strerror or exc}") from None
        files.append(HourFile(hour, path, size, problem or ""))
    return DayFiles(day, folder, files)


def parse_line(raw):
    """(entry, None) for a line that is an entry, else (None, the Skip reason)."""
    if not raw.strip():
        return None, Skip.BLANK
    try:
        entry = _loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError derive from ValueError
        return None, Skip.NOT_JSON  # RecursionError: nested deeper than Python reads (no entry is)
    if type(entry) is not dict:
        return None, Skip.NOT_AN_OBJECT
    problem = entry_problem(entry)
    return (None, problem) if problem else (entry, None)


class OutOfRange:
    """An integer too long for Python to read (more than ``sys.get_int_max_str_digits()`` digits).

    The line is still JSON, so the entry is kept; no column can hold the number (int64, nor a double
    exactly), so where the schema has it, it becomes null and is counted, like any value of the
    wrong type; elsewhere it is dropped with the unknown field.
    """

    __slots__ = ()


def _long_int(text):
    try:
        return int(text)
    except ValueError:
        return OutOfRange()


def _loads(raw):
    try:
        return json.loads(raw)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
    return json.loads(raw, parse_int=_long_int)


# The required fields (data contract 1.1) and the JSON types they must have: the key is two
# strings, the sections objects (``{}`` is an object: it becomes null), the schema version a number.
REQUIRED_TYPES = {
    "symbol": str,
    "snapshot_ts": str,
    "meta": dict,
    "spot_raw": dict,
    "derived": dict,
    "scores": dict,
    "flags": dict,
}
assert tuple(REQUIRED_TYPES) == REQUIRED_KEYS


def entry_problem(entry):
    """The Skip reason of a parsed entry that cannot be published, or None.

    Missing (absent or null) comes before wrong type: an entry missing one field and mistyping
    another is counted once, as missing. An empty ``symbol`` or ``snapshot_ts``, or one that is no
    text (a lone surrogate), is a wrong type: the row would have no key.
    """
    missing = False
    wrong = False
    for key, kind in REQUIRED_TYPES.items():
        value = entry.get(key)
        if value is None:
            missing = True
        elif type(value) is not kind or (kind is str and not (value.strip() and is_text(value))):
            wrong = True
    meta = entry.get("meta")
    if type(meta) is dict:
        version = meta.get("schema_version")
        if version is None:
            missing = True
        elif type(version) is not int:
            wrong = True
    if missing:
        return Skip.MISSING_REQUIRED
    return Skip.WRONG_TYPE if wrong else None


def entry_key(entry):
    """What identifies an entry: its symbol and snapshot time (an entry that passed ``entry_problem``)."""
    return entry["symbol"], entry["snapshot_ts"]


def line_digest(raw):
    """The content of a line, for telling a repeated entry from a different one with the same key.

    Byte for byte, without the line ending and surrounding blanks: a copied hour file, or a replayed
    buffer, repeats the collector's lines exactly.
    """
    return trimmed_digest(raw.strip())


def trimmed_digest(trimmed):
    """``line_digest`` of a line already without its surrounding blanks (bytes or a memoryview)."""
    return hashlib.sha256(trimmed).digest()[:16]


class SeenEntries:
    """The keys and line digests of a day's entries so far: a few dozen bytes an entry, not the entry."""

    NEW, DUPLICATE, CONFLICT = "new", "duplicate", "conflict"

    def __init__(self):
        self._digests = {}  # (symbol, snapshot_ts) -> {digest, ...}

    def check(self, entry, raw):
        """NEW (first of its key), DUPLICATE (the same line again) or CONFLICT (its key, other content)."""
        key, digest = entry_key(entry), line_digest(raw)
        verdict = self.verdict(key, digest)
        if verdict != self.DUPLICATE:
            self.add(key, digest)
        return verdict

    def verdict(self, key, digest):
        """What ``check`` would say of an entry, without remembering it (a reader that may give up
        on an hour asks first, and remembers the hour's entries only once it keeps them)."""
        known = self._digests.get(key)
        if not known:
            return self.NEW
        return self.DUPLICATE if digest in known else self.CONFLICT

    def add(self, key, digest):
        self._digests.setdefault(key, set()).add(digest)


def read_hour(hour_file, *, seen=None, max_line_bytes=DEFAULT_MAX_LINE_BYTES):
    """Parse one hour file into entries, counting every skipped line by reason.

    ``seen``: the day's SeenEntries, so that repeats across hours are found (None: no check).
    """
    result = HourRead(hour_file.hour)
    append = result.entries.append
    skipped = result.skipped
    lines = HourLines(hour_file.path, max_line_bytes)
    for raw in lines:
        if raw is None:
            skipped[Skip.LINE_TOO_LONG] += 1
            continue
        entry, reason = parse_line(raw)
        if reason:
            skipped[reason] += 1
            continue
        if seen is not None:
            verdict = seen.check(entry, raw)
            if verdict == SeenEntries.DUPLICATE:
                skipped[Skip.DUPLICATE] += 1
                continue
            if verdict == SeenEntries.CONFLICT:
                result.conflicting_duplicates += 1
        append(entry)
    result.truncated = lines.truncated
    return result


def read_day(day_files, *, max_line_bytes=DEFAULT_MAX_LINE_BYTES):
    """Yield HourRead for each hour file that is read, in hour order, repeats found across the day."""
    seen = SeenEntries()
    for hour_file in day_files.hours:
        yield read_hour(hour_file, seen=seen, max_line_bytes=max_line_bytes)
