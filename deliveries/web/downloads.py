"""The token-checked downloads and the signed local links: which stored object a URL means, how
its bytes leave (a 302 to a presigned URL on S3/R2, or a Range/ETag-aware stream from local
storage) and how it is counted. ``NotAvailable`` becomes the 404 page, ``StorageError`` the 503.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from .. import storage
from ..models import DailyFile, DownloadCount, MonthBundle, StoredVersion
from ..storage import StorageError
from .access import tier_token
from .links import tier_url
from .streaming import NotAvailable, stream_local

logger = logging.getLogger(__name__)

DAILY, MTD = "daily", "mtd"

# The storage layout of data-contract section 4 (a version's folder, or the unversioned keys of
# earlier installations); anything else is not a deliverable object.
KEY_PATTERN = re.compile(
    r"^(?P<tier>tier[1-9])/(?P<kind>daily|mtd)/(?P<label>\d{4}-\d{2}(?:-\d{2})?)/(?:[0-9a-f]{16}/)?"
    r"(?P<part>data\.parquet|manifest\.json)$"
)
VERSION_PATTERN = re.compile(r"^[0-9a-f]{16}$")


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
    """The download response for a Target, whichever storage holds it.

    An object that is a file here (local storage) is streamed by Django with Range, ETag and
    Content-Length. Otherwise (S3/R2): a 302 to a short-lived presigned URL (the middleware marks
    it no-store), signed for the request's own method (a HEAD is sent to a URL that answers HEAD),
    after checking the object is there so a missing object is our clear 404 rather than the
    bucket's XML. A manifest viewed inline is small and proxied then, since presigned URLs here
    always download as attachments.
    """
    path = storage.local_path(target.key)
    if path is not None:
        return stream_local(
            request, path, filename=target.filename, content_type=target.content_type, attachment=attachment
        )
    if storage.size(target.key) is None:
        raise NotAvailable(f"{target.key} is missing from storage")
    if attachment:
        url, _ = storage.download_url(
            target.key,
            target.filename,
            target.content_type.split(";")[0],
            settings.DOWNLOAD_REDIRECT_EXPIRY,
            method="HEAD" if request.method == "HEAD" else "GET",
        )
        return HttpResponseRedirect(url)
    data = storage.read_bytes(target.key)
    response = HttpResponse(data, content_type=target.content_type)
    response["Content-Disposition"] = content_disposition_header(False, target.filename)
    response["ETag"] = f'"{hashlib.sha256(data).hexdigest()}"'
    return response


def signed_url(target):
    """(absolute URL, expiry) that fetches the object without a token, for SIGNED_URL_EXPIRY seconds:
    a presigned URL of the bucket, or on local storage a site-signed ``/files/...`` link."""
    content_type = target.content_type.split(";")[0]
    return storage.download_url(target.key, target.filename, content_type, settings.SIGNED_URL_EXPIRY)


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


# --- Views ---------------------------------------------------------------------------------------


def file_missing(request):
    context = {"tier": request.tier, "plan": request.tier.plan}
    context["page_url"] = tier_url("tier_page", request.tier, request.token)
    return render(request, "deliveries/file_missing.html", context, status=404)


def unavailable(request, exc):
    logger.error("storage unavailable while serving %s: %s", request.path, exc)
    return render(request, "503.html", status=503)


def _download(request, kind, label, *, manifest):
    try:
        target = find(request.tier, kind, label, manifest=manifest, version=request.GET.get("v"))
        attachment = not manifest or request.GET.get("download") == "1"
        response = respond(request, target, attachment=attachment)
    except NotAvailable:
        return file_missing(request)
    except StorageError as exc:
        return unavailable(request, exc)
    if is_new_download(request, response):
        count(target)
    return response


@require_safe
@tier_token
def daily_file(request, label):
    """A day's Parquet: token checked again here, then a presigned redirect or a local stream."""
    return _download(request, DAILY, label, manifest=False)


@require_safe
@tier_token
def daily_manifest(request, label):
    """A day's manifest, shown inline (``?download=1`` for an attachment)."""
    return _download(request, DAILY, label, manifest=True)


@require_safe
@tier_token
def mtd_file(request, label):
    return _download(request, MTD, label, manifest=False)


@require_safe
@tier_token
def mtd_manifest(request, label):
    return _download(request, MTD, label, manifest=True)


@require_safe
def signed_file(request, filename):
    """A local-storage file by a signed, expiring ticket (the API's ``signed_url``): no token.

    The ticket rides in ``?t=`` so the log filter and the recommended access-log format drop it.
    """
    ref = storage.read_download_ticket(request.GET.get("t", ""))
    if ref is None or ref[1] != filename:
        response = render(request, "deliveries/link_expired.html", status=403)
    else:
        try:
            target = target_for_key(*ref)
            response = stream_local(
                request, storage.local_path(target.key), filename=target.filename, content_type=target.content_type
            )
        except NotAvailable:
            response = render(request, "404.html", status=404)
        except StorageError as exc:
            response = unavailable(request, exc)
        else:
            if is_new_download(request, response):
                count(target)
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store, private"
    return response
