"""Plain functions behind the subscriber pages and download endpoints.

Which files a tier shows, which stored object a download URL means, how its bytes leave (a 302 to a
presigned URL on S3/R2, or a Range/ETag-aware stream from local storage) and how it is counted.
Views stay thin: they check the token, call these, and turn ``NotAvailable``/``StorageError`` into
a 404 or a 503.
"""

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Case, F, OuterRef, Q, Subquery, TextField, When
from django.db.models.fields.json import KT
from django.http import FileResponse, HttpResponse, HttpResponseNotModified, HttpResponseRedirect
from django.http.response import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, http_date

from instrumetriq_site.compiled_queries import fetch, placeholder

from .. import storage
from ..models import DailyFile, DownloadCount, MonthBundle, StoredVersion

logger = logging.getLogger(__name__)

DAILY, MTD = "daily", "mtd"
CHUNK = 256 * 1024

# The storage layout of data-contract section 4 (a version's folder, or the unversioned keys of
# earlier installations); anything else is not a deliverable object.
KEY_PATTERN = re.compile(
    r"^(?P<tier>tier[1-9])/(?P<kind>daily|mtd)/(?P<label>\d{4}-\d{2}(?:-\d{2})?)/(?:[0-9a-f]{16}/)?"
    r"(?P<part>data\.parquet|manifest\.json)$"
)
VERSION_PATTERN = re.compile(r"^[0-9a-f]{16}$")


# A parameter value no tier has, replaced by the real tier when a compiled query runs.
TIER_PARAM = placeholder("tier")


class NotAvailable(Exception):
    """No such file to hand out: never published, delisted by retention, or gone from storage."""


# --- What a tier shows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """The files on a tier's page, feed and API: the newest month bundle and the retained days."""

    tier: str
    mtd: MonthBundle | None
    daily: list = field(default_factory=list)
    newest: dict = field(default_factory=dict)  # the newest day's profile and preview, as JSON text

    @property
    def last_build_at(self):
        """Newest build among the shown files: no query for BuildRun needed."""
        stamps = [daily.built_at for daily in self.daily]
        if self.mtd is not None:
            stamps.append(self.mtd.built_at)
        return max(stamps, default=None)

    @property
    def is_empty(self):
        return self.mtd is None and not self.daily


# Only what the page, API and feed show: manifests (their profiles are tens of KB) and
# ``input_fingerprint`` stay behind, but for the few keys named here.
DAILY_FIELDS = (
    "id", "tier", "date", "key", "manifest_key", "size_bytes", "sha256", "row_count", "hours_found", "is_partial",
    "built_at", "published_at", "deleted_at",
)  # fmt: skip
MTD_FIELDS = (
    "id", "tier", "month", "key", "manifest_key", "coverage_start", "coverage_end", "days_included", "days_missing",
    "partial_days", "row_count", "size_bytes", "sha256", "built_at",
)  # fmt: skip
NEWEST_ONLY = ("profile", "preview")  # manifest keys the page shows for the newest day alone
MTD_SHOWN = MTD_FIELDS + ("listed_days",)

# The newest day's profile and preview as last read, per tier: (sha256, {key: JSON text}). They are
# tens of KB and computed from the file alone, so while the newest day is the same file (same
# SHA-256) the page's query does not send them again; they are decoded only when a page is rendered.
KNOWN_SHA = placeholder("known_sha")
_newest_parts = {}


def _of_newest_day(name):
    """A manifest key of the tier's newest published day, unless that day's SHA-256 is the known
    one; null on the other rows. Part of the daily files' query: no query of its own."""
    newest = DailyFile.objects.published().filter(tier=OuterRef("tier")).order_by("-date").values("pk")[:1]
    sent = Q(pk=Subquery(newest)) & ~Q(sha256=KNOWN_SHA)
    return Case(When(sent, then=KT(f"manifest__{name}")), default=None, output_field=TextField())


def _daily_instance(values):
    daily = DailyFile(**{name: values[name] for name in DAILY_FIELDS})
    daily.manifest = {"missing_hours": values["listed_missing_hours"] or []}  # all the page reads of it
    return daily


def _newest_texts(tier, rows, parts):
    """{key: JSON text} of the newest day's ``parts``: as the query sent them, or as kept."""
    if not parts or not rows:
        return {}
    known = _newest_parts.get(tier)
    sha256 = rows[0]["sha256"]
    if known is not None and known[0] == sha256:
        return known[1]
    texts = {name: rows[0][name] for name in parts if rows[0][name] is not None}
    if texts:  # a day built before profiles has none: asked again, until a rebuild adds them
        _newest_parts[tier] = (sha256, texts)
    return texts


def newest_part(listing, name):
    """A manifest key of the newest shown day (``profile``, ``preview``), decoded, or None."""
    text = listing.newest.get(name)
    return json.loads(text) if isinstance(text, str | bytes) else text


def _mtd_instance(values):
    bundle = MonthBundle(**{name: values[name] for name in MTD_FIELDS})
    bundle.manifest = {"days": values["listed_days"] or []}  # the rows of each day, for the chart
    return bundle


def listing(tier, *, newest_parts=False):
    """Two queries: the retained daily files (newest first) and the newest month bundle.

    Built with the ORM, compiled once, run with the tier as parameter; instances carry only the
    shown fields (a day's ``manifest`` is reduced to its ``missing_hours``; a bundle's to its
    ``days``, both read from their generated columns, not from the manifest). With
    ``newest_parts`` (the page) the listing has the newest day's ``profile`` and ``preview`` too,
    as text (``newest_part`` decodes them), sent by the query only when the newest file changed.
    """
    limit = settings.DAILY_RETENTION_DAYS
    tier = str(tier)
    parts = NEWEST_ONLY if newest_parts else ()
    names = DAILY_FIELDS + ("listed_missing_hours", *parts)
    daily = fetch(
        f"daily-{limit}" + ("-newest" if parts else ""),
        DailyFile,
        names,
        lambda: (
            DailyFile.objects.for_tier(TIER_PARAM)
            .published()
            .newest_first()
            .annotate(**{name: _of_newest_day(name) for name in parts})
            .values_list(*names)[:limit]
        ),
        {TIER_PARAM: tier, KNOWN_SHA: _newest_parts.get(tier, ("",))[0]},
        json_names=("listed_missing_hours",),
        text_names=parts,
    )
    bundles = fetch(
        "mtd",
        MonthBundle,
        MTD_SHOWN,
        lambda: MonthBundle.objects.for_tier(TIER_PARAM).newest_first().values_list(*MTD_SHOWN)[:1],
        {TIER_PARAM: tier},
        json_names=("listed_days",),
    )
    mtd = _mtd_instance(bundles[0]) if bundles else None
    return Listing(
        tier=tier,
        mtd=mtd,
        daily=[_daily_instance(values) for values in daily],
        newest=_newest_texts(tier, daily, parts),
    )


def mtd_day_rows(bundle):
    """Rows per included day of a month bundle, from its manifest's ``days`` list."""
    if bundle is None:
        return {}
    days = (bundle.manifest or {}).get("days") or []
    return {day["date"]: day["row_count"] for day in days if isinstance(day, dict) and "date" in day}


# --- Which object a URL means --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One deliverable object: where it is, what it is called for the subscriber, how it counts."""

    tier: str
    kind: str  # a DownloadCount.Kind value
    label: str  # "2026-11-23" or "2026-11"
    key: str
    filename: str

    @property
    def is_manifest(self):
        return self.kind.endswith("_manifest")

    @property
    def content_type(self):
        return "application/json; charset=utf-8" if self.is_manifest else storage.PARQUET_CONTENT_TYPE


def parse_label(kind, label):
    """The date a URL label names (first day of the month for MTD), or NotAvailable."""
    try:
        if kind == DAILY:
            return date.fromisoformat(label)
        return datetime.strptime(label, "%Y-%m").date()
    except ValueError:
        raise NotAvailable(f"no {kind} file {label}")


def find(tier, kind, label, *, manifest=False, version=None):
    """The Target for a tier's daily or MTD file (or its manifest). One query (a second for a pinned
    version no longer listed); NotAvailable if none.

    ``version`` (the first 16 hex digits of the data's SHA-256, as the API's links carry it) pins
    the version the subscriber was shown: served while it is in storage, even after a rebuild
    listed a newer one, so a listing and the downloads made from it always agree.
    """
    day = parse_label(kind, label)
    if kind == DAILY:
        rows = DailyFile.objects.published().filter(tier=tier, date=day)
        label = day.isoformat()
    else:
        rows = MonthBundle.objects.filter(tier=tier, month=day)
        label = f"{day:%Y-%m}"
    row = rows.values_list("key", "manifest_key", "sha256").first()
    if version is not None and (row is None or not row[2].startswith(version)):
        row = _pinned(tier, kind, label, version)
    if row is None:
        raise NotAvailable(f"no {kind} file {label} for {tier}")
    key, manifest_key, _sha256 = row
    filename = storage.download_name(tier, kind, label, manifest=manifest)
    if manifest:
        return Target(tier, f"{kind}_manifest", label, manifest_key, filename)
    return Target(tier, kind, label, key, filename)


def _pinned(tier, kind, label, version):
    """(key, manifest key, sha256) of a version of a file that is not collected yet, or None."""
    if not VERSION_PATTERN.match(version):
        return None
    return (
        StoredVersion.objects.uncollected()
        .filter(tier=tier, kind=kind, label=label, sha256__startswith=version)
        .values_list("key", "manifest_key", "sha256")
        .first()
    )


def target_for_key(key, filename):
    """The Target of a signed local link, checked against the storage layout."""
    match = KEY_PATTERN.match(key or "")
    if not match:
        raise NotAvailable("not a deliverable key")
    kind = match["kind"] + ("_manifest" if match["part"] == "manifest.json" else "")
    return Target(match["tier"], kind, match["label"], key, filename)


# --- Handing out the bytes -----------------------------------------------------------------------


def respond(request, target, *, attachment=True):
    """The download response for a Target on whichever storage is configured.

    Local: streamed by Django with Range, ETag and Content-Length. S3/R2: a 302 to a short-lived
    presigned URL (the middleware marks it no-store), signed for the request's own method (a HEAD
    is sent to a URL that answers HEAD), after checking the object is there so a missing object is
    our clear 404 rather than the bucket's XML. A manifest viewed inline on S3 is small and
    proxied, since presigned URLs here always download as attachments.
    """
    if storage.is_local():
        return stream_local(
            request,
            storage.open_local(target.key),
            filename=target.filename,
            content_type=target.content_type,
            attachment=attachment,
        )
    if storage.size(target.key) is None:
        raise NotAvailable(f"{target.key} is missing from storage")
    if attachment:
        url = storage.presigned_url(
            target.key,
            target.filename,
            settings.DOWNLOAD_REDIRECT_EXPIRY,
            target.content_type.split(";")[0],
            method="HEAD" if request.method == "HEAD" else "GET",
        )
        return HttpResponseRedirect(url)
    data = storage.read_bytes(target.key)
    response = HttpResponse(data, content_type=target.content_type)
    response["Content-Disposition"] = content_disposition_header(False, target.filename)
    response["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
    return response


def signed_url(target):
    """(absolute URL, expiry) that fetches the object without a token, for SIGNED_URL_EXPIRY seconds.

    S3/R2: a presigned URL of the bucket. Local: a Django-signed reference to ``/files/...``.
    """
    expiry = settings.SIGNED_URL_EXPIRY
    if storage.is_local():
        value, expires_at = storage.sign_local_key(target.key, target.filename, expiry)
        path = reverse("deliveries:signed_file", kwargs={"filename": target.filename})
        return f"{settings.SITE_URL}{path}?t={value}", expires_at
    url = storage.presigned_url(target.key, target.filename, expiry, target.content_type.split(";")[0])
    return url, timezone.now() + timedelta(seconds=expiry)


def _etag_matches(header, etag):
    if not header:
        return False
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or etag in candidates or f"W/{etag}" in candidates


def parse_range(header, size):
    """(start, end) inclusive for one ``bytes=`` range, None to serve the whole file, or "unsatisfiable".

    Malformed headers and multi-range requests are ignored (a full 200 is always a valid answer).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header[len("bytes=") :].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    try:
        if first == "":
            if not last.isdigit():
                return None
            suffix = int(last)
            if suffix == 0 or size == 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        if not first.isdigit() or (last and not last.isdigit()):
            return None
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if last and end < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class RangeReader:
    """Yields ``length`` bytes of an open file from ``start``, then closes it."""

    def __init__(self, fh, start, length):
        self.fh, self.remaining = fh, length
        fh.seek(start)

    def __iter__(self):
        while self.remaining > 0:
            block = self.fh.read(min(CHUNK, self.remaining))
            if not block:
                break
            self.remaining -= len(block)
            yield block

    def close(self):
        self.fh.close()


def stream_local(request, path, *, filename, content_type, attachment=True):
    """A local file as a response that supports resume: Range/If-Range, ETag/If-None-Match, HEAD.

    The file is opened once and served from that descriptor, so a nightly in-place replacement
    (``os.replace``) mid-download cannot mix two versions; the ETag comes from the same ``fstat``.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115  (closed by the response, or below)
    except FileNotFoundError:
        raise NotAvailable(f"{path.name} is missing from storage")
    except OSError as exc:
        raise storage.StorageError(f"storage read of {filename} failed: {type(exc).__name__}") from exc
    stat = os.fstat(fh.fileno())
    size = stat.st_size
    etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
    headers = {
        "ETag": etag,
        "Last-Modified": http_date(stat.st_mtime),
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition_header(attachment, filename),
    }

    if _etag_matches(request.headers.get("If-None-Match"), etag):
        fh.close()
        response = HttpResponseNotModified()
        response["ETag"] = etag
        return response

    wanted = parse_range(request.headers.get("Range"), size)
    if_range = request.headers.get("If-Range")
    if wanted is not None and if_range and if_range not in (etag, headers["Last-Modified"]):
        wanted = None  # the file changed since the client's first part: send it whole
    if wanted == "unsatisfiable":
        fh.close()
        response = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
        response["Content-Range"] = f"bytes */{size}"
        response["Accept-Ranges"] = "bytes"
        response["ETag"] = etag
        return response

    start, end, status = (0, size - 1, 200) if wanted is None else (*wanted, 206)
    length = end - start + 1 if size else 0

    if request.method == "HEAD":
        fh.close()
        response = HttpResponse(status=status, content_type=content_type)
    elif status == 200:
        response = FileResponse(fh, content_type=content_type)
    else:
        response = StreamingHttpResponse(RangeReader(fh, start, length), status=206, content_type=content_type)
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(length)
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


# --- Counting ------------------------------------------------------------------------------------


def is_new_download(request, response):
    """A GET that hands out a file from its first byte; resumes, HEADs and 304s do not count again,
    nor do the range reads of a reader querying the file in place (footer, then column chunks),
    whether served here (206) or redirected to storage (302 of a request with a Range header)."""
    if request.method != "GET":
        return False
    if response.status_code == 200:
        return True
    if response.status_code == 302:
        wanted = request.headers.get("Range", "").replace(" ", "")
        return not wanted or wanted.startswith("bytes=0-")
    return response.status_code == 206 and response.get("Content-Range", "").startswith("bytes 0-")


def count(target, day=None):
    """Add one to the file's counter for the UTC day: per tier, file and day, nothing about who.

    An upsert safe under concurrency (a racing insert is retried as a read by get_or_create, the
    increment is done by the database). A failed count is logged and never fails the download.
    """
    day = day or timezone.now().date()
    try:
        with transaction.atomic():
            row, created = DownloadCount.objects.get_or_create(
                tier=target.tier, kind=target.kind, file_label=target.label, day=day, defaults={"count": 1}
            )
            if not created:
                DownloadCount.objects.filter(pk=row.pk).update(count=F("count") + 1)
    except DatabaseError:
        logger.exception("download count not recorded for %s %s %s", target.tier, target.kind, target.label)
