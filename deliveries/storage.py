"""Where published files live: local files or an S3/R2 bucket, behind one interface.

Two classes, configured as Django's ``STORAGES["deliveries"]``, are the only code that knows which
backend is in use: ``LocalDeliveryStorage`` (a ``FileSystemStorage``) and ``R2DeliveryStorage``
(django-storages' ``S3Storage``, through its public API only). Besides Django's storage API both
answer the same few questions: a download URL that needs no token (``download_url``), the object
as a local file when there is one (``local_path``), what is stored under a prefix
(``list_objects``), a copy to a local file (``download_to``), taking a finished local file over
(``move_in``), where builds write before uploading (``scratch_root``), what a killed upload left
behind (``clear_interrupted_uploads``), and whether it can be reached (``ping``).

Everything else speaks in keys (``tier1/daily/2026-11-23/3f9a0c1d2b4e5f60/data.parquet``) and calls
the functions at the bottom of this module, which turn any failure into a ``StorageError``.
"""

import errno
import hashlib
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.config import Config
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.urls import reverse
from django.utils import timezone
from storages.backends.s3 import S3Storage

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSON_CONTENT_TYPE = "application/json"
LOCAL_URL_SALT = "deliveries.local-file"
INCOMING = ".incoming-"  # files and folders being written: never objects, never listed
STALE_UPLOAD_AGE = timedelta(hours=1)


class StorageError(Exception):
    """Storage could not be reached or refused an operation. The message is safe to show."""


# --- Local files ---------------------------------------------------------------------------------


class LocalDeliveryStorage(FileSystemStorage):
    """Local files, replaced atomically so a reader never sees a half-written object. The site
    streams them itself; a link without a token is a Django-signed, expiring ``/files/`` URL."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

    def describe(self):
        return str(self.location)

    def _save(self, name, content):
        full_path = Path(self.path(name))
        full_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=full_path.parent, prefix=INCOMING, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                content.seek(0)
                shutil.copyfileobj(content, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, full_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return name

    def move_in(self, name, path):
        """Take over a finished local file as ``name`` by renaming it, when it is on the same
        filesystem (no copy of a bundle of hundreds of MB). False when it is not: copy instead."""
        full_path = Path(self.path(name))
        full_path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())  # durable before it becomes visible, as _save's copy is
        try:
            os.replace(path, full_path)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
        os.chmod(full_path, 0o644)
        return True

    def local_path(self, name):
        return Path(self.path(name))

    def download_to(self, name, path):
        shutil.copyfile(self.path(name), path)

    def download_url(self, name, filename, content_type, expires, *, method="GET"):
        """(absolute ``/files/`` URL, expiry): a signed reference the site verifies and streams
        (``read_download_ticket``); it answers GET and HEAD alike."""
        expires_at = timezone.now() + timedelta(seconds=expires)
        value = signing.dumps({"k": name, "f": filename, "e": int(expires_at.timestamp())}, salt=LOCAL_URL_SALT)
        path = reverse("deliveries:signed_file", kwargs={"filename": filename})
        return f"{settings.SITE_URL}{path}?t={value}", expires_at

    def read_download_ticket(self, value):
        """(key, filename) of a ``download_url``'s ticket, or None when it is forged or expired."""
        try:
            payload = signing.loads(value, salt=LOCAL_URL_SALT)
        except signing.BadSignature:
            return None
        if payload.get("e", 0) < timezone.now().timestamp():
            return None
        return payload["k"], payload["f"]

    def list_objects(self, prefix):
        root = Path(self.location)
        base = root / prefix if prefix else root
        if not base.exists():
            return []
        found = []
        for path in base.rglob("*"):
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(INCOMING) for part in relative.parts):
                found.append((relative.as_posix(), datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)))
        return sorted(found)

    def scratch_root(self):
        """Beside the stored files, so that finished files are renamed into place, not copied."""
        return Path(self.location) / f"{INCOMING}work"

    def clear_interrupted_uploads(self, cutoff):
        """Uploads cut short (``.incoming-*.part`` beside an object) untouched since ``cutoff``."""
        root = Path(self.location)
        if not root.is_dir():
            return []
        removed = []
        for path in root.rglob(f"{INCOMING}*.part"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff.timestamp():
                    path.unlink()
                    removed.append(path.relative_to(root).as_posix())
            except FileNotFoundError:
                continue  # finished (renamed into place) meanwhile
        return removed

    def prune_empty_folders(self, name):
        """Remove the folders above a deleted object that are left empty (a collected version's
        folder, then its day's), never the storage root."""
        root = Path(self.location).resolve()
        folder = Path(self.path(name)).resolve().parent
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (another version, an upload under way) or already gone
                return
            folder = folder.parent

    def ping(self):
        root = Path(self.location)
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise StorageError(f"local storage root {root} is not writable")


# --- S3 / R2 -------------------------------------------------------------------------------------

# Cloudflare R2's needs, in the botocore client config: django-storages reads its own
# ``signature_version`` and ``addressing_style`` options only when no ``client_config`` is given.
R2_CLIENT_CONFIG = Config(
    signature_version="s3v4",
    s3={"addressing_style": "path"},
    request_checksum_calculation="when_required",  # R2 rejects the CRC checksums boto3 >= 1.36 sends
    response_checksum_validation="when_required",
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=10,
    read_timeout=60,
)


class R2DeliveryStorage(S3Storage):
    """A private R2 (or any S3) bucket: objects at their keys, presigned download URLs, private
    objects (no ACL), replaced in place. ``client_config`` given in the options is merged over
    ``R2_CLIENT_CONFIG``. Only django-storages' public API and boto3's resources are used."""

    def __init__(self, **options):
        if options.get("location"):
            raise ImproperlyConfigured("R2DeliveryStorage keeps objects at their keys: no location prefix.")
        options.setdefault("region_name", "auto")
        options.setdefault("default_acl", None)
        options.setdefault("querystring_auth", True)
        options.setdefault("file_overwrite", True)
        given = options.get("client_config")
        options["client_config"] = R2_CLIENT_CONFIG.merge(given) if given is not None else R2_CLIENT_CONFIG
        super().__init__(**options)

    def describe(self):
        return f"bucket {self.bucket_name}"

    def move_in(self, name, path):
        return False  # a bucket cannot take a local file over: it is uploaded

    def local_path(self, name):
        return None  # the bytes leave through presigned URLs, never through the site

    def download_to(self, name, path):
        self.bucket.download_file(name, str(path))  # chunked; objects are at their keys (no location)

    def download_url(self, name, filename, content_type, expires, *, method="GET"):
        """(presigned URL, expiry) that downloads the object as ``filename``. Signed for one HTTP
        method: ``"HEAD"`` gives a URL that answers HEAD (what readers send to learn a file's size
        before reading ranges of it), which a GET URL refuses."""
        parameters = {
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": content_type,
        }
        url = self.url(name, parameters=parameters, expire=int(expires), http_method=method)
        return url, timezone.now() + timedelta(seconds=expires)

    def read_download_ticket(self, value):
        return None  # the site signs no links of its own for a bucket

    def list_objects(self, prefix):
        return sorted((obj.key, obj.last_modified) for obj in self.bucket.objects.filter(Prefix=prefix))

    def scratch_root(self):
        return Path(settings.BUILD_SCRATCH_DIR)

    def clear_interrupted_uploads(self, cutoff):
        """Multipart uploads a killed upload left unfinished, started before ``cutoff`` (the
        bucket keeps, and bills, their parts until they are aborted)."""
        removed = []
        for upload in self.bucket.multipart_uploads.all():
            if upload.initiated < cutoff:
                upload.abort()
                removed.append(f"{upload.object_key} (unfinished upload)")
        return removed

    def prune_empty_folders(self, name):
        pass  # a bucket has no folders

    def ping(self):
        self.listdir("")  # lists the bucket's top level: reachable, the bucket exists, the keys may list


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
