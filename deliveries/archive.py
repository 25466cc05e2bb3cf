"""Reading the collector's raw archive: ``ARCHIVE_ROOT/YYYYMMDD/HH.jsonl.gz``.

Hour files are read as a stream, one at a time, so memory follows one hour, not the day. Real
files have flaws (blank lines, lines that are not JSON, a truncated gzip member at the end of an
hour still being written): a bad line is skipped and counted with its reason, never fatal.
"""

import contextlib
import hashlib
import json
import os
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from .tiers import REQUIRED_KEYS

HOURS = tuple(f"{h:02d}" for h in range(24))
DAY_FOLDER = re.compile(r"^\d{8}$")
READ_CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """The archive cannot be read for a day. The message says why, in plain words."""


@dataclass
class HourFile:
    hour: str
    path: Path
    size: int


@dataclass
class DayFiles:
    day: date
    folder: Path
    hours: list  # HourFile, in hour order

    @property
    def hours_found(self):
        return len(self.hours)

    @property
    def missing_hours(self):
        present = {h.hour for h in self.hours}
        return [h for h in HOURS if h not in present]

    @property
    def fingerprint(self):
        """Names and sizes of the hour files: equal fingerprints mean the same input."""
        digest = hashlib.sha256()
        for hour in self.hours:
            digest.update(f"{hour.hour}:{hour.size}\n".encode())
        return digest.hexdigest()


@dataclass
class HourRead:
    hour: str
    entries: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    truncated: bool = False

    @property
    def skipped_total(self):
        return sum(self.skipped.values())


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
    """The hour files of a day. Raises ArchiveError when the root or the day folder is unusable."""
    root = Path(root)
    if not root.is_dir():
        raise ArchiveError(f"archive root {root} does not exist or is not a folder")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ArchiveError(f"archive root {root} is not readable")
    folder = root / folder_name(day)
    if not folder.is_dir():
        raise ArchiveError(f"no archive folder for {day.isoformat()} ({folder} is missing)")
    hours = []
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
        hours.append(HourFile(hour, path, size))
    return DayFiles(day, folder, hours)


def read_hour(hour_file):
    """Parse one hour file into entries, counting every skipped line by reason."""
    result = HourRead(hour_file.hour)
    append = result.entries.append
    loads = json.loads
    gen = _lines_with_truncation(hour_file.path)
    for raw in gen:
        if not raw.strip():
            result.skipped["blank_line"] += 1
            continue
        try:
            entry = loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError both derive from it
            result.skipped["not_json"] += 1
            continue
        if type(entry) is not dict:
            result.skipped["not_an_object"] += 1
            continue
        missing = [key for key in REQUIRED_KEYS if entry.get(key) is None]
        meta = entry.get("meta")
        if not missing and (type(meta) is not dict or meta.get("schema_version") is None):
            missing.append("meta.schema_version")
        if missing:
            result.skipped["missing_required"] += 1
            continue
        append(entry)
    result.truncated = gen.truncated
    return result


class _lines_with_truncation:
    """Iterate a gzip file's complete lines, member after member, and say whether the tail was cut.

    A file that ends inside a gzip member (an hour still being written) or holds corrupt data sets
    ``truncated``; what decompressed before the cut is still yielded, including the partial last
    line, whose parse then fails and is counted, so no text is lost silently.
    """

    def __init__(self, path):
        self.path = path
        self.truncated = False

    def __iter__(self):
        decompressor = zlib.decompressobj(wbits=31)
        fed = False
        pending = b""
        with open(self.path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                data = chunk
                while data:
                    fed = True
                    try:
                        text = decompressor.decompress(data)
                    except zlib.error:
                        self.truncated = True
                        break
                    if text:
                        pending += text
                        *lines, pending = pending.split(b"\n")
                        yield from lines
                    if decompressor.eof:
                        data = decompressor.unused_data
                        decompressor = zlib.decompressobj(wbits=31)
                        fed = False
                        if not data.strip(b"\x00"):
                            data = b""
                    else:
                        data = b""
                if self.truncated:
                    break
        if fed and not decompressor.eof:
            self.truncated = True
            with contextlib.suppress(zlib.error):
                pending += decompressor.flush()
        if pending:
            yield pending


def read_day(day_files):
    """Yield HourRead for each hour file present, in hour order."""
    for hour_file in day_files.hours:
        yield read_hour(hour_file)
