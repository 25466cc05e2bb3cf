"""Where published files live: local files or an S3/R2 bucket, behind one interface.

Two classes, configured as Django's ``STORAGES["deliveries"]``, are the only code that knows which
backend is in use (``backends.py``): ``LocalDeliveryStorage`` (a ``FileSystemStorage``) and
``R2DeliveryStorage`` (django-storages' ``S3Storage``, through its public API only). Besides
Django's storage API both answer the same few questions: a download URL that needs no token (``download_url``), the object
as a local file when there is one (``local_path``), what is stored under a prefix
(``list_objects``), a copy to a local file (``download_to``), taking a finished local file over
(``move_in``), where builds write before uploading (``scratch_root``), what a killed upload left
behind (``clear_interrupted_uploads``), and whether it can be reached (``ping``).

Everything else speaks in keys (``tier1/daily/2026-11-23/3f9a0c1d2b4e5f60/data.parquet``) and calls
the functions at the bottom of this module, which turn any failure into a ``StorageError``.
"""

import hashlib
import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone

from .backends import LocalDeliveryStorage as LocalDeliveryStorage  # STORAGES names the classes here
from .backends import R2DeliveryStorage as R2DeliveryStorage
from .backends import StorageError

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSON_CONTENT_TYPE = "application/json"
STALE_UPLOAD_AGE = timedelta(hours=1)


# --- What the rest of the code calls ---------------------------------------------------------------


def backend():
    """The configured delivery storage (``STORAGES["deliveries"]``)."""
    return storages["deliveries"]


def _wrap(action, key, func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except StorageError:
        raise
    except Exception as exc:  # botocore, OSError: one clear message for the operator
        raise StorageError(f"storage {action} of {key} failed: {type(exc).__name__}: {exc}") from exc


def describe():
    """Where the files are, for the operator: a folder or a bucket."""
    return backend().describe()


def scratch_dir():
    """Where builds write files that are about to be stored (``scratch_root``: beside local
    storage, ``BUILD_SCRATCH_DIR`` for a bucket).

    Only runs that hold the build lock write here (a dry run writes nothing), which is what lets
    the next holder clear it all (``clear_scratch``): what is there was left by a dead run.
    """
    scratch = backend().scratch_root()
    scratch.mkdir(parents=True, exist_ok=True)
    return str(scratch)


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clear_scratch(*, now=None):
    """Remove what killed runs left behind. Call it only while holding the build lock.

    - Everything in the scratch folder (a killed build's work folder): every writer there holds
      the lock, so none of it belongs to a live run.
    - Uploads interrupted over an hour ago (``clear_interrupted_uploads``): the index and the
      doctor also upload, without the lock, but only for a moment.

    Returns the names removed.
    """
    removed = []
    scratch = backend().scratch_root()
    if scratch.is_dir():
        for entry in sorted(scratch.iterdir()):
            _remove(entry)
            removed.append(entry.name)
    cutoff = (now or timezone.now()) - STALE_UPLOAD_AGE
    return removed + _wrap("cleanup", "unfinished uploads", backend().clear_interrupted_uploads, cutoff)


def clear_stale_scratch(older_than, *, now=None):
    """Remove entries of the scratch folder untouched for ``older_than`` (for callers that do not
    hold the build lock: a running build keeps writing to its own). Returns the names removed."""
    scratch = backend().scratch_root()
    if not scratch.is_dir():
        return []
    cutoff = (now or timezone.now()).timestamp() - older_than.total_seconds()
    removed = []
    for entry in scratch.iterdir():
        newest = max([entry.stat().st_mtime, *(p.stat().st_mtime for p in entry.rglob("*"))])
        if newest < cutoff:
            _remove(entry)
            removed.append(entry.name)
    return sorted(removed)


def _save(key, django_file):
    saved = backend().save(key, django_file)
    if saved != key:
        raise StorageError(f"storage saved {key} under another name ({saved}); overwrite is off")


def put_file(key, path, content_type, *, consume=False):
    """Upload a local file to ``key``, replacing what is there.

    With ``consume`` the caller is done with ``path``: local storage may then move it in place of
    copying it.
    """

    def upload():
        if consume and backend().move_in(key, path):
            return
        with open(path, "rb") as fh:
            django_file = File(fh, name=os.path.basename(key))
            django_file.content_type = content_type
            _save(key, django_file)

    _wrap("upload", key, upload)


def put_bytes(key, data, content_type):
    """Upload ``data`` to ``key`` from memory (no temporary file for a killed run to leave)."""

    def upload():
        content = ContentFile(data, name=os.path.basename(key))
        content.content_type = content_type
        _save(key, content)

    _wrap("upload", key, upload)


def read_bytes(key):
    def read():
        with backend().open(key, "rb") as fh:
            return fh.read()

    return _wrap("read", key, read)


def download_to(key, path):
    """Copy an object to a local file, in chunks (memory stays flat whatever its size)."""
    _wrap("download", key, backend().download_to, key, path)


def local_path(key):
    """The object as a file this process can open (local storage), or None (a bucket)."""
    return backend().local_path(key)


@contextmanager
def open_checked(key, scratch_dir):
    """(file, sha256) of an object: an open Arrow file and the digest of exactly the bytes it holds.

    Local objects are read in place (no copy); the digest is taken through the same open handle,
    so an atomic replacement of the object meanwhile cannot pair one file's digest with another's
    bytes. Remote objects are downloaded to ``scratch_dir`` first and removed afterwards. The
    handle is Arrow's own (``pa.OSFile``), so Parquet reads on it do not hold the GIL.
    """
    import pyarrow as pa

    path, scratch = local_path(key), None
    if path is None:
        path = scratch = Path(scratch_dir) / f"{uuid.uuid4().hex}.part"
        download_to(key, path)
    try:
        fh = _wrap("read", key, pa.OSFile, str(path), "r")
        try:
            digest = _sha256_of_stream(fh)
            fh.seek(0)
            yield fh, digest
        finally:
            fh.close()
    finally:
        if scratch is not None:
            scratch.unlink(missing_ok=True)


def delete(key):
    _wrap("delete", key, backend().delete, key)


def prune_empty_folders(key):
    """Remove the folders above a deleted key that are left empty (local storage; a bucket has none)."""
    backend().prune_empty_folders(key)


def exists(key):
    return _wrap("lookup", key, backend().exists, key)


def _missing_is_none(method, key):
    try:
        return method(key)
    except FileNotFoundError:
        return None
    except Exception as exc:
        response = getattr(exc, "response", None) or {}
        if str(response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def size(key):
    """Size in bytes, or None when the object is missing."""
    return _wrap("lookup", key, _missing_is_none, backend().size, key)


def modified_time(key):
    """When the object was last written (aware UTC datetime), or None when it is missing."""
    return _wrap("lookup", key, _missing_is_none, backend().get_modified_time, key)


def list_objects(prefix):
    """(key, last modified, aware UTC datetime) of every object under a prefix, recursively.
    Upload leftovers of local storage (``.incoming-*``) are not objects and are left out."""
    return _wrap("listing", prefix or "/", backend().list_objects, prefix)


def list_keys(prefix=""):
    """Every key under a prefix, recursively."""
    return [key for key, _ in list_objects(prefix)]


def download_url(key, filename, content_type, expires, *, method="GET"):
    """(absolute URL, expiry) that fetches the object as ``filename`` without a token, for
    ``expires`` seconds: presigned on a bucket, signed by the site on local storage."""
    return _wrap("signing", key, backend().download_url, key, filename, content_type, expires, method=method)


def read_download_ticket(value):
    """(key, filename) of a site-signed download link's ticket, or None (forged, expired, or a
    bucket's storage, which hands out presigned URLs instead)."""
    return backend().read_download_ticket(value)


def ping():
    """Raise StorageError when storage cannot be reached."""
    _wrap("ping", settings.STORAGE_BACKEND, backend().ping)


def sha256_of(path):
    with open(path, "rb") as fh:
        return _sha256_of_stream(fh)


def _sha256_of_stream(fh, chunk=1024 * 1024):
    digest = hashlib.sha256()
    while block := fh.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def download_name(tier, kind, label, *, manifest=False):
    """The file name a subscriber's download gets (data contract section 4): kind is daily or mtd,
    label the date or the month."""
    return f"instrumetriq_{tier}_{kind}_{label}." + ("manifest.json" if manifest else "parquet")


def version_keys(tier, kind, label, sha256):
    """(data key, manifest key) of one published version (data contract section 4): a folder per
    tier and day (``daily``, label ``YYYY-MM-DD``) or month (``mtd``, label ``YYYY-MM``), and in it
    a folder per version named by the first 16 hex digits of the data's SHA-256. The same bytes
    always get the same keys, so a rebuild of unchanged data lands where it already is."""
    base = f"{tier}/{kind}/{label}/{sha256[:16]}"
    return f"{base}/data.parquet", f"{base}/manifest.json"


def legacy_keys(tier, kind, label):
    """The unversioned keys earlier installations published to (``tierN/daily/DATE/data.parquet``).
    Still served while a row lists them; collected like any version once delisted."""
    base = f"{tier}/{kind}/{label}"
    return f"{base}/data.parquet", f"{base}/manifest.json"


def index_key(tier):
    return f"index/{tier}.json"
