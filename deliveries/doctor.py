"""``manage.py doctor``: is this machine configured the way a real deployment needs?

``healthcheck`` asks whether the deliveries are fresh; the doctor asks whether the setup can work at
all. Settings are Django's system checks (``check --deploy``, ours in ``instrumetriq_site/checks.py``),
which the doctor reports as they are; everything else here is a live probe: the database, storage
permissions, presigned links, the archive, tokens, cron and the clock. Each finding is a ``Check``
in plain words. Messages never carry a secret: no keys, no tokens, no presigned URL (every message
goes through ``_scrub`` on its way out).

Checks that cannot run because something they need failed (storage unreachable: no round trip;
database not migrated: no token check) are left out rather than reported twice.
"""

import contextlib
import email.utils
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core import checks as django_checks
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from instrumetriq_site.logging import redact

from . import archive, storage
from .tiers import Tier

ERROR, WARNING = "error", "warning"
GROUPS = ("checks", "database", "storage", "archive", "tokens", "cron", "clock")
SCRATCH_PREFIX = "doctor/"  # outside every tier prefix: never mistaken for an orphan by the collector
MAX_CLOCK_SKEW = timedelta(seconds=60)
HTTP_TIMEOUT = 15
CRON_HINT = "run `manage.py crontab add` as the user that runs the site"
CHECK_ID = re.compile(r"^(checks\.)?[a-z_]+\.[CEWID]\d{3}$")  # a system check: instrumetriq.W104


@dataclass(frozen=True)
class Check:
    name: str  # "group.item": the group is what --skip takes
    ok: bool
    level: str  # ERROR or WARNING: how bad it is when not ok
    message: str

    @property
    def group(self):
        return self.name.split(".", 1)[0]

    @property
    def status(self):
        if self.ok:
            return "OK"
        return "FAIL" if self.level == ERROR else "WARN"

    @property
    def failed(self):
        return not self.ok and self.level == ERROR


class CrontabUnavailable(Exception):
    """The crontab could not be read (no ``crontab`` binary, permission, ...)."""


def _ok(name, message):
    return Check(name, True, ERROR, message)


def _fail(name, message, level=ERROR):
    return Check(name, False, level, message)


def _secrets():
    database = settings.DATABASES["default"]
    values = [
        settings.SECRET_KEY,
        getattr(settings, "TOKEN_SECRET", ""),
        settings.R2_SECRET_ACCESS_KEY,
        settings.R2_ACCESS_KEY_ID,
        database.get("PASSWORD"),
    ]
    return sorted((v for v in values if v and len(str(v)) >= 4), key=len, reverse=True)


def _scrub(text):
    """Remove anything secret from a message: configured secrets, tokens, signatures."""
    text = redact(str(text))
    for value in _secrets():
        text = text.replace(str(value), "[redacted]")
    return " ".join(text.split())  # one line


def _short(exc):
    """An exception in a few words: its type and first line, scrubbed."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return _scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


# --- system checks -------------------------------------------------------------------------------


def check_system(skip=()):
    """Django's system checks with the deployment ones, as ``manage.py check --deploy`` runs them.
    The settings a deployment needs are checked there (``instrumetriq_site/checks.py``), never here:
    one place says what a setting must be. ``skip`` takes check ids (``instrumetriq.W104``)."""
    messages = [
        m
        for m in django_checks.run_checks(include_deployment_checks=True)
        if m.is_serious(django_checks.WARNING) and not m.is_silenced() and m.id not in skip
    ]
    if not messages:
        return [_ok("checks", "manage.py check --deploy finds nothing.")]
    results = []
    for message in messages:
        level = ERROR if message.is_serious(django_checks.ERROR) else WARNING
        text = str(message.msg).split(". ")[0].rstrip(".")  # Django's security texts run on; the id says the rest
        hint = f" ({message.hint})" if message.hint else ""
        results.append(_fail(f"checks.{message.id}", _scrub(f"{text}.{hint}"), level))
    return results


# --- database ------------------------------------------------------------------------------------


def check_database():
    """Returns (checks, usable): usable means reachable and migrated, so the token check can run."""
    try:
        connection.ensure_connection()
    except Exception as exc:
        return [
            _fail("database.reachable", f"cannot connect to the database ({_short(exc)}): check DATABASE_URL.")
        ], False
    results = [_ok("database.reachable", f"database reachable ({connection.vendor}).")]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        results.append(_fail("database.migrations", f"cannot read the migration state ({_short(exc)})."))
        return results, False
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _backwards in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        results.append(
            _fail(
                "database.migrations", f"{len(plan)} migration(s) not applied ({names}{more}): run manage.py migrate."
            )
        )
        return results, False
    results.append(_ok("database.migrations", "every migration is applied."))
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
    return _short(cause)


def check_storage(*, fetch=True):
    """Reachable, then a round trip on a scratch key: write, read, list, presigned fetch, delete."""
    backend = settings.STORAGE_BACKEND
    try:
        storage.ping()
    except storage.StorageError as exc:
        return [
            _fail(
                "storage.reachable",
                f"storage ({backend}) is unreachable: {_storage_reason(exc)}. "
                "The round-trip, presigned-link and clock checks need it.",
            )
        ], False
    results = [_ok("storage.reachable", f"storage ({backend}) reachable: {storage.describe()}.")]

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
            _fail(
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
    results.append(_ok("storage.round_trip", f"write, read, list and delete work ({key}, {len(payload)} bytes)."))
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
            return _fail(name, "a signed local link does not verify: is SECRET_KEY the same in every process?")
        if storage.read_download_ticket(value[:-2] + ("AA" if not value.endswith("AA") else "BB")) is not None:
            return _fail(name, "a tampered signed local link verifies: signing is broken.")
        return _ok(name, "local storage: signed local links verify (downloads stream through the site).")
    if not fetch:
        return None
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 (our endpoint)
            body = response.read()
            disposition = response.headers.get("Content-Disposition", "")
    except urllib.error.HTTPError as exc:
        return _fail(
            name,
            f"a presigned link answered HTTP {exc.code}: subscribers' downloads would fail "
            "(is R2_ENDPOINT the account endpoint, not a custom domain? is the clock right?).",
        )
    except (urllib.error.URLError, OSError) as exc:
        return _fail(name, f"a presigned link could not be fetched ({_short(getattr(exc, 'reason', exc))}).")
    if body != payload:
        return _fail(name, "a presigned link returned other bytes than were written.")
    if "attachment" not in disposition:
        return _fail(name, "a presigned link ignores the download filename (no attachment disposition).", WARNING)
    return _ok(name, "a presigned link downloads the scratch object byte for byte.")


# --- archive -------------------------------------------------------------------------------------


def check_archive(now=None):
    now = now or timezone.now()
    root = Path(settings.ARCHIVE_ROOT)
    if not root.is_dir():
        return [_fail("archive.root", f"ARCHIVE_ROOT {root} does not exist or is not a folder.")]
    if not os.access(root, os.R_OK | os.X_OK):
        return [_fail("archive.root", f"ARCHIVE_ROOT {root} is not readable by this user.")]
    results = [_ok("archive.root", f"ARCHIVE_ROOT {root} is readable.")]
    try:
        days = archive.available_days(root)
    except archive.ArchiveError as exc:
        return [*results, _fail("archive.recent", _scrub(exc))]
    if not days:
        return [
            *results,
            _fail("archive.recent", f"no day folders (YYYYMMDD) in {root}: is this the collector's archive?"),
        ]
    today = now.astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    newest = days[-1]
    if newest < yesterday:
        return [
            *results,
            _fail(
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
        return [*results, _fail("archive.recent", f"cannot read the {day} folder: {_short(exc)}.")]
    bad = ", ".join(f"{hour}.jsonl.gz is {reason.replace('_', ' ')}" for hour, reason in found.bad_hours.items())
    bad = f" ({bad}: counted as missing, never read)" if bad else ""
    if not hours:
        return [*results, _fail("archive.recent", f"the {day} folder has no readable hour files (HH.jsonl.gz).")]
    if day == yesterday and len(hours) < settings.MIN_HOURS:
        return [
            *results,
            _fail(
                "archive.recent",
                f"yesterday ({day}) has {len(hours)} hour files{bad}, fewer than MIN_HOURS={settings.MIN_HOURS}: "
                "it will not be published.",
                WARNING,
            ),
        ]
    if bad:
        return [*results, _fail("archive.recent", f"{day} has {len(hours)} readable hour files{bad}.", WARNING)]
    return [*results, _ok("archive.recent", f"newest day folder {newest}; {day} has {len(hours)} readable hour files.")]


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
            results.append(_ok(name, f"{item.tier} ({item.plan}): a current token{extra}; its link can be printed."))
        else:
            results.append(_fail(name, f"{item.tier} ({item.plan}): {item.problem}"))
    if any(item.ok for item in links):
        last = RotationEvent.objects.filter(ok=True).order_by("-at").first()
        if last is not None and now - last.at > timedelta(days=8):
            results.append(
                _fail(
                    "tokens.rotation",
                    f"no rotation since {last.at:%Y-%m-%d %H:%M} UTC ({(now - last.at).days} days): "
                    "the weekly rotate_tokens cron jobs are not running.",
                    WARNING,
                )
            )
        else:
            results.append(_ok("tokens.rotation", "a rotation ran in the last 8 days."))
    return results


# --- cron ----------------------------------------------------------------------------------------


def read_user_crontab():
    """The current user's crontab text ('' when the user has none)."""
    executable = getattr(settings, "CRONTAB_EXECUTABLE", "/usr/bin/crontab")
    if not (os.path.exists(executable) or shutil.which(executable)):
        raise CrontabUnavailable(f"{executable} is not installed (apt install cron)")
    try:
        completed = subprocess.run(  # noqa: S603 (fixed argv)
            [executable, "-l"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise CrontabUnavailable(f"crontab -l failed ({type(exc).__name__})") from None
    if completed.returncode != 0:
        if "no crontab" in completed.stderr.lower():
            return ""
        raise CrontabUnavailable(f"crontab -l failed: {completed.stderr.strip()[:200]}")
    return completed.stdout


def expected_cron_lines():
    """The lines ``manage.py crontab add`` would install, from django-crontab itself."""
    from django_crontab.crontab import Crontab

    crontab = Crontab(verbosity=0, readonly=True)
    crontab.crontab_lines = []
    crontab.add_jobs()
    return [line.rstrip("\n") for line in crontab.crontab_lines]


def _job_key(line):
    """(schedule, job hash) of a django-crontab line: what must match, whatever the python path."""
    fields = line.split()
    if "run" not in fields or len(fields) < 6:
        return None
    position = fields.index("run")
    if position == 0 or fields[position - 1] != "crontab" or position + 1 >= len(fields):
        return None
    return tuple(fields[:5]), fields[position + 1]


def _job_label(job):
    args = job[2] if len(job) > 2 and not isinstance(job[2], str) else []
    kwargs = job[3] if len(job) > 3 and isinstance(job[3], dict) else {}
    return " ".join([*map(str, args), *(f"--{k} {v}" for k, v in kwargs.items())])


def check_cron(read_crontab=None):
    read_crontab = read_crontab or read_user_crontab
    try:
        text = read_crontab()
    except CrontabUnavailable as exc:
        return [_fail("cron.installed", f"cannot read the crontab: {_scrub(exc)}; then {CRON_HINT}.")]
    try:
        expected = expected_cron_lines()
    except Exception as exc:
        return [_fail("cron.installed", f"cannot work out the expected cron lines ({_short(exc)}).")]
    installed = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    installed_keys = {_job_key(line): line for line in installed}
    missing, moved = [], []
    for job, line in zip(settings.CRONJOBS, expected, strict=True):
        if line.strip() in installed:
            continue
        key = _job_key(line)
        if key in installed_keys:
            moved.append(_job_label(job))
        else:
            missing.append(f"{_job_label(job)} at {job[0]!r}")
    comment = expected[0].rsplit("#", 1)[-1].strip() if expected else ""
    stale = [
        line
        for line in installed
        if comment
        and line.endswith(comment)
        and line not in {e.strip() for e in expected}
        and _job_key(line) not in {_job_key(e) for e in expected}
    ]
    results = []
    if missing:
        results.append(
            _fail(
                "cron.installed",
                f"{len(missing)} of {len(expected)} cron jobs are not installed ({'; '.join(missing)}): {CRON_HINT}.",
            )
        )
    if stale:
        results.append(
            _fail(
                "cron.installed",
                f"{len(stale)} django-crontab line(s) no longer match CRONJOBS (the schedule or a setting "
                f"changed): {CRON_HINT} (it replaces them).",
            )
        )
    if moved:
        results.append(
            _fail(
                "cron.installed",
                f"installed with another python or manage.py path ({', '.join(moved)}): "
                f"{CRON_HINT} from this deployment's virtualenv.",
                WARNING,
            )
        )
    if not results:
        results.append(_ok("cron.installed", f"all {len(expected)} cron jobs are installed (build_daily, rotations)."))
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
        return [_ok(name, "local storage: no remote clock.")]
    started = time.monotonic()
    before = clock()
    try:
        remote = remote_date(settings.R2_ENDPOINT)
    except (urllib.error.URLError, OSError, ValueError, TypeError) as exc:
        return [_fail(name, f"cannot read the storage server's clock ({_short(getattr(exc, 'reason', exc))}).")]
    local = before + timedelta(seconds=(time.monotonic() - started) / 2)
    if remote is None:
        return [_fail(name, "the storage server sent no Date header: the clock was not compared.", WARNING)]
    delta = (local - remote).total_seconds()
    if abs(delta) >= MAX_CLOCK_SKEW.total_seconds():
        direction = "ahead of" if delta > 0 else "behind"
        return [
            _fail(
                name,
                f"this machine's clock is {abs(delta):.0f} s {direction} the storage server's: presigned links "
                "would expire early or not be valid yet, and past 15 minutes storage refuses every request. "
                "Enable time sync (timedatectl set-ntp true).",
            )
        ]
    return [_ok(name, f"clock within {abs(delta):.0f} s of the storage server's (limit {MAX_CLOCK_SKEW.seconds} s).")]


# --- all -----------------------------------------------------------------------------------------


def run_doctor(*, fetch=True, skip=(), read_crontab=None, clock=None, now=None):
    """Every check, in a stable order. ``skip`` takes groups (``cron``) or names (``storage.presigned``).

    ``fetch=False`` makes no HTTP request outside the storage client: no presigned download, no clock.
    ``read_crontab`` and ``clock`` are injectable so tests never touch the real crontab or time.
    """
    skip = set(skip)

    def wanted(name):
        return name not in skip and name.split(".", 1)[0] not in skip

    results = []
    if wanted("checks"):
        results += check_system(skip)
    usable = False
    if wanted("database"):
        found, usable = check_database()
        results += found
    else:
        usable = True
    reachable = False
    if wanted("storage"):
        found, reachable = check_storage(fetch=fetch and wanted("storage.presigned"))
        results += found
    if wanted("archive"):
        results += check_archive(now)
    if wanted("tokens") and usable:
        try:
            results += check_tokens(now)
        except DatabaseError as exc:
            results.append(_fail("tokens.query", f"cannot read the tokens ({_short(exc)})."))
    if wanted("cron"):
        results += check_cron(read_crontab)
    if wanted("clock") and fetch and (reachable or not wanted("storage")):
        results += check_clock(clock)
    return [r for r in results if wanted(r.name)]


def is_known(name):
    """True for a group, a check name or a system check id that --skip accepts."""
    return name in _NAMES or bool(CHECK_ID.match(name))


_NAMES = frozenset(
    {
        *GROUPS,
        "database.reachable",
        "database.migrations",
        "storage.reachable",
        "storage.round_trip",
        "storage.presigned",
        "archive.root",
        "archive.recent",
        *(f"tokens.{tier}" for tier in Tier.values),
        "tokens.rotation",
        "cron.installed",
        "clock.skew",
    }
)


def summary(results, skipped=()):
    failed = sum(1 for r in results if r.failed)
    warned = sum(1 for r in results if not r.ok and not r.failed)
    passed = sum(1 for r in results if r.ok)
    text = f"doctor: {passed} ok, {warned} warning(s), {failed} failure(s)"
    if skipped:
        text += f"; skipped: {', '.join(sorted(skipped))}"
    return text
