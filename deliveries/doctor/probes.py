"""The doctor's live probes: the database (reachable, migrated), storage (a round trip on a scratch
key, a presigned download), the archive (readable, recent), tokens (every tier's link can be
printed, rotations run) and the clock (against the storage server's)."""

import contextlib
import email.utils
import os
import secrets
import time
import urllib.error
import urllib.request
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from instrumetriq_site import utc

from .. import storage
from ..parquet import archive
from .report import WARNING, fail, ok, scrub, short

SCRATCH_PREFIX = "doctor/"  # outside every tier prefix: never mistaken for an orphan by the collector
MAX_CLOCK_SKEW = timedelta(seconds=60)
HTTP_TIMEOUT = 15


# --- database ------------------------------------------------------------------------------------


def check_database():
    """Returns (checks, usable): usable means reachable and migrated, so the token check can run."""
    try:
        connection.ensure_connection()
    except Exception as exc:
        return [
            fail("database.reachable", f"cannot connect to the database ({short(exc)}): check DATABASE_URL.")
        ], False
    results = [ok("database.reachable", f"database reachable ({connection.vendor}).")]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        results.append(fail("database.migrations", f"cannot read the migration state ({short(exc)})."))
        return results, False
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        results.append(
            fail("database.migrations", f"{len(plan)} migration(s) not applied ({names}{more}): run manage.py migrate.")
        )
        return results, False
    results.append(ok("database.migrations", "every migration is applied."))
    return results, True


# --- storage -------------------------------------------------------------------------------------


def _storage_reason(exc):
    """Plain words for the usual S3/R2 failures, from the botocore error under a StorageError."""
    cause = exc.__cause__ or exc
    code = str(getattr(cause, "response", {}).get("Error", {}).get("Code", ""))
    name = type(cause).__name__
    if code in {"NoSuchBucket", "404", "NotFound"}:
        return f"the bucket {settings.R2_BUCKET!r} does not exist at R2_ENDPOINT (check R2_BUCKET)"
    if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "Unauthorized"}:
        return f"the credentials are refused ({code}): check R2_ACCESS_KEY_ID and R2_SECRET_ACCESS_KEY"
    if code in {"AccessDenied", "403", "Forbidden"}:
        return "access denied: the API token needs Object Read & Write on this bucket"
    if code in {"RequestTimeTooSkewed"}:
        return "the storage server refuses this machine's clock (RequestTimeTooSkewed): fix the time"
    if "Connect" in name or "Endpoint" in name or isinstance(cause, OSError):
        where = settings.R2_ENDPOINT if settings.STORAGE_BACKEND == "s3" else settings.LOCAL_STORAGE_ROOT
        return f"cannot reach {where} ({name})"
    return short(cause)


def check_storage(*, fetch=True):
    """Reachable, then a round trip on a scratch key: write, read, list, presigned fetch, delete."""
    backend = settings.STORAGE_BACKEND
    try:
        storage.ping()
    except storage.StorageError as exc:
        return [
            fail(
                "storage.reachable",
                f"storage ({backend}) is unreachable: {_storage_reason(exc)}. "
                "The round-trip, presigned-link and clock checks need it.",
            )
        ], False
    results = [ok("storage.reachable", f"storage ({backend}) reachable: {storage.describe()}.")]

    key = f"{SCRATCH_PREFIX}scratch-{secrets.token_hex(8)}.txt"
    payload = f"instrumetriq doctor {timezone.now().isoformat()} {secrets.token_hex(16)}\n".encode()
    step = "write"
    try:
        storage.put_bytes(key, payload, "text/plain")
        step = "read"
        if storage.read_bytes(key) != payload:
            raise storage.StorageError("read back different bytes")
        step = "list"
        if key not in storage.list_keys(SCRATCH_PREFIX):
            raise storage.StorageError("the written object is not listed")
        step = "presign"
        presigned = check_presigned(key, payload, fetch=fetch)
        step = "delete"
        storage.delete(key)
        if storage.exists(key):
            raise storage.StorageError("the object is still there after delete")
    except storage.StorageError as exc:
        results.append(
            fail(
                "storage.round_trip",
                f"cannot {step} a scratch object ({key}): {_storage_reason(exc)}. "
                "The nightly build writes, reads, lists and deletes (collection).",
            )
        )
        if step == "delete":
            if presigned is not None:
                results.append(presigned)
        else:
            _forget(key)
        return results, True
    results.append(ok("storage.round_trip", f"write, read, list and delete work ({key}, {len(payload)} bytes)."))
    if presigned is not None:
        results.append(presigned)
    return results, True


def _forget(key):
    """Best-effort removal of the scratch object after a failed step."""
    with contextlib.suppress(storage.StorageError):
        storage.delete(key)


def check_presigned(key, payload, *, fetch=True):
    """A download link for ``key`` really returns its bytes. None when skipped (--no-fetch)."""
    name = "storage.presigned"
    url, _expires = storage.download_url(key, "doctor.txt", "text/plain", 60)
    if storage.local_path(key) is not None:  # the site streams the files: its own signed links
        value = parse_qs(urlsplit(url).query)["t"][0]
        if storage.read_download_ticket(value) != (key, "doctor.txt"):
            return fail(name, "a signed local link does not verify: is SECRET_KEY the same in every process?")
        if storage.read_download_ticket(value[:-2] + ("AA" if not value.endswith("AA") else "BB")) is not None:
            return fail(name, "a tampered signed local link verifies: signing is broken.")
        return ok(name, "local storage: signed local links verify (downloads stream through the site).")
    if not fetch:
        return None
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 (our endpoint)
            body = response.read()
            disposition = response.headers.get("Content-Disposition", "")
    except urllib.error.HTTPError as exc:
        return fail(
            name,
            f"a presigned link answered HTTP {exc.code}: subscribers' downloads would fail "
            "(is R2_ENDPOINT the account endpoint, not a custom domain? is the clock right?).",
        )
    except (urllib.error.URLError, OSError) as exc:
        return fail(name, f"a presigned link could not be fetched ({short(getattr(exc, 'reason', exc))}).")
    if body != payload:
        return fail(name, "a presigned link returned other bytes than were written.")
    if "attachment" not in disposition:
        return fail(name, "a presigned link ignores the download filename (no attachment disposition).", WARNING)
    return ok(name, "a presigned link downloads the scratch object byte for byte.")


# --- archive -------------------------------------------------------------------------------------


def check_archive(now=None):
    now = now or timezone.now()
    root = Path(settings.ARCHIVE_ROOT)
    if not root.is_dir():
        return [fail("archive.root", f"ARCHIVE_ROOT {root} does not exist or is not a folder.")]
    if not os.access(root, os.R_OK | os.X_OK):
        return [fail("archive.root", f"ARCHIVE_ROOT {root} is not readable by this user.")]
    results = [ok("archive.root", f"ARCHIVE_ROOT {root} is readable.")]
    try:
        days = archive.available_days(root)
    except archive.ArchiveError as exc:
        return [*results, fail("archive.recent", scrub(exc))]
    if not days:
        return [
            *results,
            fail("archive.recent", f"no day folders (YYYYMMDD) in {root}: is this the collector's archive?"),
        ]
    today = utc.today(now)
    yesterday = utc.yesterday(now)
    newest = days[-1]
    if newest < yesterday:
        return [
            *results,
            fail(
                "archive.recent",
                f"the newest day folder is {newest} ({(today - newest).days} days old): "
                "the collector may have stopped, or ARCHIVE_ROOT points at an old copy.",
            ),
        ]
    day = yesterday if yesterday in days else newest
    try:
        found = archive.find_day(root, day)
        hours = found.hours
    except (archive.ArchiveError, OSError) as exc:
        return [*results, fail("archive.recent", f"cannot read the {day} folder: {short(exc)}.")]
    bad = ", ".join(f"{hour}.jsonl.gz is {reason.replace('_', ' ')}" for hour, reason in found.bad_hours.items())
    bad = f" ({bad}: counted as missing, never read)" if bad else ""
    if not hours:
        return [*results, fail("archive.recent", f"the {day} folder has no readable hour files (HH.jsonl.gz).")]
    if day == yesterday and len(hours) < settings.MIN_HOURS:
        return [
            *results,
            fail(
                "archive.recent",
                f"yesterday ({day}) has {len(hours)} hour files{bad}, fewer than MIN_HOURS={settings.MIN_HOURS}: "
                "it will not be published.",
                WARNING,
            ),
        ]
    if bad:
        return [*results, fail("archive.recent", f"{day} has {len(hours)} readable hour files{bad}.", WARNING)]
    return [*results, ok("archive.recent", f"newest day folder {newest}; {day} has {len(hours)} readable hour files.")]


# --- tokens --------------------------------------------------------------------------------------


def check_tokens(now=None):
    from tokens.links import tier_links
    from tokens.models import RotationEvent

    now = now or timezone.now()
    results = []
    links = tier_links()
    for item in links:
        name = f"tokens.{item.tier}"
        if item.ok:
            extra = " and a next one (overlap)" if item.overlap else ""
            results.append(ok(name, f"{item.tier} ({item.plan}): a current token{extra}; its link can be printed."))
        else:
            results.append(fail(name, f"{item.tier} ({item.plan}): {item.problem}"))
    if any(item.ok for item in links):
        last = RotationEvent.objects.filter(ok=True).order_by("-at").first()
        if last is not None and now - last.at > timedelta(days=8):
            results.append(
                fail(
                    "tokens.rotation",
                    f"no rotation since {last.at:%Y-%m-%d %H:%M} UTC ({(now - last.at).days} days): "
                    "the weekly rotate_tokens cron jobs are not running.",
                    WARNING,
                )
            )
        else:
            results.append(ok("tokens.rotation", "a rotation ran in the last 8 days."))
    return results


# --- clock ---------------------------------------------------------------------------------------


def remote_date(url):
    """The ``Date`` header of a HEAD on ``url`` (any status: an error page has one too), or None."""
    request = urllib.request.Request(url, method="HEAD")  # noqa: S310 (the configured endpoint)
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
            header = response.headers.get("Date")
    except urllib.error.HTTPError as exc:
        header = exc.headers.get("Date") if exc.headers else None
    if not header:
        return None
    return email.utils.parsedate_to_datetime(header).astimezone(UTC)


def check_clock(clock=None):
    clock = clock or timezone.now
    name = "clock.skew"
    if settings.STORAGE_BACKEND != "s3":
        return [ok(name, "local storage: no remote clock.")]
    started = time.monotonic()
    before = clock()
    try:
        remote = remote_date(settings.R2_ENDPOINT)
    except (urllib.error.URLError, OSError, ValueError, TypeError) as exc:
        return [fail(name, f"cannot read the storage server's clock ({short(getattr(exc, 'reason', exc))}).")]
    local = before + timedelta(seconds=(time.monotonic() - started) / 2)
    if remote is None:
        return [fail(name, "the storage server sent no Date header: the clock was not compared.", WARNING)]
    delta = (local - remote).total_seconds()
    if abs(delta) >= MAX_CLOCK_SKEW.total_seconds():
        direction = "ahead of" if delta > 0 else "behind"
        return [
            fail(
                name,
                f"this machine's clock is {abs(delta):.0f} s {direction} the storage server's: presigned links "
                "would expire early or not be valid yet, and past 15 minutes storage refuses every request. "
                "Enable time sync (timedatectl set-ntp true).",
            )
        ]
    return [ok(name, f"clock within {abs(delta):.0f} s of the storage server's (limit {MAX_CLOCK_SKEW.seconds} s).")]
