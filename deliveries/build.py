"""One UTC day from the raw archive to the three tiers' published Parquet files.

``plan_day`` decides whether the day is to be written (over, in the archive, not published from
the same input); ``daily_file.write_day_files`` writes its three files; ``publish_day`` publishes
them. Nothing is published until every requested tier is written; then the bytes go to storage
(data, then manifest, each version under keys of its own) and only then the database rows, all
tiers of the day in one transaction, and then the tiers' index.
"""

import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from instrumetriq_site import utc

from . import index, publish, storage
from .daily_file import Reader, write_day_files
from .models import DailyFile
from .outcomes import Outcome
from .parquet import archive
from .tiers import Tier

logger = logging.getLogger(__name__)


class Cause:
    """Why a day failed: the archive (retrying will not help until it changes) or the system."""

    INPUT = "input"
    STORAGE = "storage"
    SYSTEM = "system"


@dataclass
class DayResult:
    date: date
    outcome: str
    message: str
    tiers: list = field(default_factory=list)
    rows: int = 0
    hours_found: int = 0
    seconds: float = 0.0
    cause: str = ""

    @property
    def ok(self):
        return self.outcome != Outcome.FAILED

    def as_dict(self):
        return {
            "date": self.date.isoformat(),
            "outcome": self.outcome,
            "message": self.message,
            "tiers": list(self.tiers),
            "rows": self.rows,
            "hours_found": self.hours_found,
            "seconds": round(self.seconds, 3),
            "cause": self.cause,
        }


def build_day(day, *, tiers=None, force=False, dry_run=False, archive_root=None, progress=None, now=None, reader=None):
    """Build and publish one day. Never raises for bad input: the result says what happened.

    ``reader``: ``"fast"`` or ``"strict"`` (default: settings.ARCHIVE_READER), see ``read_hours``.
    The three steps (``plan_day``, ``write_day_files``, ``publish_day``) are separate so that a
    backfill can write days in other processes (``parallel``) and publish them here."""
    started = timezone.now()
    plan = plan_day(day, tiers=tiers, force=force, dry_run=dry_run, archive_root=archive_root, now=now, reader=reader)
    if isinstance(plan, DayResult):
        return plan
    with tempfile.TemporaryDirectory(prefix="instrumetriq-build-", dir=storage.scratch_dir()) as tmp:
        try:
            written = plan.write(Path(tmp), progress=progress)
        except OSError as exc:
            return plan.write_failed(exc)
        return publish_day(plan, written, started)


def unexpected_failure(day, exc):
    """The DayResult of a day an unexpected error stopped (logged with its traceback): the other
    days of a run still run."""
    logger.error("building %s failed unexpectedly", day, exc_info=exc)
    return DayResult(day, Outcome.FAILED, f"unexpected error: {type(exc).__name__}: {exc}", cause=Cause.SYSTEM)


@dataclass
class DayPlan:
    """A day to write: everything the writing needs, and nothing that needs the database or the
    settings (it may run in another process)."""

    day: date
    tiers: list
    day_files: archive.DayFiles
    reader: str
    max_line_bytes: int

    def write(self, out_dir, progress=None):
        """The day's files, profiled for their manifests where they were written (a backfill's
        worker), so the process that publishes reads none of them back."""
        written = write_day_files(
            self.day_files,
            self.tiers,
            out_dir,
            progress=progress,
            reader=self.reader,
            max_line_bytes=self.max_line_bytes,
        )
        return written.profile_files() if written.row_count else written

    def write_failed(self, exc):
        return DayResult(
            self.day,
            Outcome.FAILED,
            f"could not write the Parquet files: {exc}",
            hours_found=self.day_files.hours_found,
            cause=Cause.SYSTEM,
        )


def plan_day(day, *, tiers=None, force=False, dry_run=False, archive_root=None, now=None, reader=None):
    """A DayPlan, or the DayResult of a day that is not to be written (not over yet, not buildable,
    already published from the same input, a dry run)."""
    tiers = Tier.selected(tiers)
    if day >= utc.today(now):
        return DayResult(
            day, Outcome.FAILED, f"{day} is not over yet (UTC); only past days can be built", cause=Cause.INPUT
        )
    root = Path(archive_root or settings.ARCHIVE_ROOT)
    try:
        day_files = archive.find_day(root, day)
    except archive.ArchiveError as exc:
        return DayResult(day, Outcome.FAILED, str(exc), cause=Cause.INPUT)
    found = day_files.hours_found
    if found < settings.MIN_HOURS:
        return DayResult(
            day,
            Outcome.FAILED,
            f"only {found} of 24 hour files{unreadable(day_files)} (MIN_HOURS is {settings.MIN_HOURS}); "
            "nothing published",
            hours_found=found,
            cause=Cause.INPUT,
        )
    fingerprint = day_files.fingerprint
    if not force:
        existing = {d.tier: d for d in DailyFile.objects.filter(date=day, tier__in=tiers)}
        current = [t for t in tiers if t in existing and existing[t].input_fingerprint == fingerprint]
        if len(current) == len(tiers):
            retired = [t for t in current if existing[t].deleted_at is not None]
            why = "delisted by retention" if retired else "already published from the same input"
            return DayResult(day, Outcome.SKIPPED, f"{why}; --force rebuilds", tiers=list(tiers), hours_found=found)
    if dry_run:
        partial = f", partial: missing {','.join(day_files.missing_hours)}" if day_files.missing_hours else ""
        partial += unreadable(day_files)
        return DayResult(
            day,
            Outcome.DRY_RUN,
            f"would build {', '.join(tiers)} from {found} hour files{partial}",
            list(tiers),
            0,
            found,
        )
    return DayPlan(day, tiers, day_files, reader or settings.ARCHIVE_READER, settings.MAX_LINE_BYTES)


def publish_day(plan, written, started):
    """Upload a written day (its files are consumed) and show it: the DayResult."""
    day, tiers, day_files = plan.day, plan.tiers, plan.day_files
    found = day_files.hours_found
    fingerprint = day_files.fingerprint
    if written.row_count == 0:
        return DayResult(
            day,
            Outcome.FAILED,
            f"no valid entries in {found} hour files; nothing published",
            hours_found=found,
            cause=Cause.INPUT,
        )
    built_at = timezone.now()
    manifests = {tier: written.manifest(tier, day_files, built_at) for tier in tiers}
    try:
        for tier in tiers:
            publish.upload_daily(tier, day, written.paths[tier], manifests[tier], consume=True)
        with transaction.atomic():
            for tier in tiers:
                publish.record_daily(tier, day, manifests[tier], input_fingerprint=fingerprint, built_at=built_at)
    except storage.StorageError as exc:
        return DayResult(
            day, Outcome.FAILED, f"{exc}; nothing new is shown to subscribers", hours_found=found, cause=Cause.STORAGE
        )
    try:
        index.publish_index(tiers)
    except storage.StorageError as exc:
        message = f"published, but the index was not rewritten ({exc}); the next run rewrites it"
        return DayResult(day, Outcome.FAILED, message, list(tiers), hours_found=found, cause=Cause.STORAGE)
    seconds = (timezone.now() - started).total_seconds()
    partial = f" (partial: {found}/24 hours{unreadable(day_files)})" if day_files.missing_hours else ""
    skipped = written.skipped_total
    message = f"published {written.row_count} rows{partial}" + (f", {skipped} bad lines skipped" if skipped else "")
    if written.conflicting_duplicates:
        message += f", {written.conflicting_duplicates} entries share a symbol and time with a different entry"
    if written.hours_strict and plan.reader == Reader.FAST:
        message += f", {written.hours_strict} of {found} hours read strictly"
        if not written.hours_fast:
            logger.warning("%s: every hour was read strictly; has the collector changed? (the log says why)", day)
    return DayResult(day, Outcome.PUBLISHED, message, list(tiers), written.row_count, found, seconds)


def unreadable(day_files):
    """``, 2 unreadable: 05 not_gzip, 07 empty`` for a day's bad hours; nothing when there are none."""
    bad = day_files.bad_hours
    listed = ", ".join(f"{hour} {reason}" for hour, reason in bad.items())
    return f", {len(bad)} unreadable: {listed}" if bad else ""


def parse_day(text):
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
