"""The one place that knows local storage from S3/R2.

Everything else speaks in keys (``tier1/daily/2026-11-23/3f9a0c1d2b4e5f60/data.parquet``) and calls these
functions.
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

from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, storages
from django.utils import timezone

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
JSON_CONTENT_TYPE = "application/json"
LOCAL_URL_SALT = "deliveries.local-file"
INCOMING = ".incoming-"  # files and folders being written: never objects, never listed


class StorageError(Exception):
    """Storage could not be reached or refused an operation. The message is safe to show."""


class LocalDeliveryStorage(FileSystemStorage):
    """Local files, replaced atomically so a reader never sees a half-written object."""

    def __init__(self, **kwargs):
        kwargs.setdefault("allow_overwrite", True)
        super().__init__(**kwargs)

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


def storage():
    return storages["deliveries"]


def is_local():
    return isinstance(storage(), FileSystemStorage)


def _wrap(action, key, func, *args):
    try:
        return func(*args)
    except StorageError:
        raise
    except Exception as exc:  # botocore, OSError: one clear message for the operator
        raise StorageError(f"storage {action} of {key} failed: {type(exc).__name__}: {exc}") from exc


def scratch_dir():
    """Where builds write files that are about to be stored: beside local storage, so that they
    can be renamed into place instead of copied; ``BUILD_SCRATCH_DIR`` for remote storage.

    Only runs that hold the build lock write here (a dry run writes nothing), which is what lets
    the next holder clear it all (``clear_scratch``): what is there was left by a dead run.
    """
    scratch = _scratch_root()
    scratch.mkdir(parents=True, exist_ok=True)
    return str(scratch)


def _scratch_root():
    return _local_scratch() if is_local() else Path(settings.BUILD_SCRATCH_DIR)


def _local_scratch():
    return Path(storage().location) / f"{INCOMING}work"


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clear_scratch(*, now=None):
    """Remove what killed runs left behind. Call it only while holding the build lock.

    - Everything in the scratch folder (a killed build's work folder): every writer there holds
      the lock, so none of it belongs to a live run.
    - On local storage, interrupted uploads (``.incoming-*.part`` beside an object) untouched for
      an hour: the index and the doctor also upload, without the lock, but only for a moment.
    - On S3/R2, multipart uploads a killed upload left unfinished, started over an hour ago (the
      bucket keeps, and bills, their parts until they are aborted).

    Returns the names removed.
    """
    removed = []
    scratch = _scratch_root()
    if scratch.is_dir():
        for entry in sorted(scratch.iterdir()):
            _remove(entry)
            removed.append(entry.name)
    cutoff = (now or timezone.now()) - STALE_UPLOAD_AGE
    if is_local():
        removed += _clear_interrupted_local_uploads(cutoff)
    else:
        removed += _abort_stale_multipart_uploads(cutoff)
    return removed


STALE_UPLOAD_AGE = timedelta(hours=1)


def _clear_interrupted_local_uploads(cutoff):
    root = Path(storage().location)
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


def _abort_stale_multipart_uploads(cutoff):
    def abort():
        s3 = storage()
        client = s3.connection.meta.client
        removed = []
        prefix = f"{s3.location.strip('/')}/" if s3.location else ""
        paginator = client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=s3.bucket_name, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    client.abort_multipart_upload(Bucket=s3.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"])
                    removed.append(f"{upload['Key']} (unfinished upload)")
        return removed

    return _wrap("cleanup", "unfinished uploads", abort)


def clear_stale_scratch(older_than, *, now=None):
    """Remove entries of the scratch folder untouched for ``older_than`` (for callers that do not
    hold the build lock: a running build keeps writing to its own). Returns the names removed."""
    scratch = _scratch_root()
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
    saved = storage().save(key, django_file)
    if saved != key:
        raise StorageError(f"storage saved {key} under another name ({saved}); overwrite is off")


def put_file(key, path, content_type, *, consume=False):
    """Upload a local file to ``key``, replacing what is there.

    With ``consume`` the caller is done with ``path``: local storage may then move it in place of
    copying it.
    """

    def upload():
        if consume and is_local() and storage().move_in(key, path):
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
        with storage().open(key, "rb") as fh:
            return fh.read()

    return _wrap("read", key, read)


def download_to(key, path):
    """Copy an object to a local file, in chunks (memory stays flat whatever its size)."""

    def copy():
        if is_local():
            shutil.copyfile(storage().path(key), path)
        else:
            s3 = storage()
            s3.bucket.download_file(s3._normalize_name(key), str(path))

    _wrap("download", key, copy)


@contextmanager
def open_checked(key, scratch_dir):
    """(file, sha256) of an object: an open Arrow file and the digest of exactly the bytes it holds.

    Local objects are read in place (no copy); the digest is taken through the same open handle,
    so an atomic replacement of the object meanwhile cannot pair one file's digest with another's
    bytes. Remote objects are downloaded to ``scratch_dir`` first and removed afterwards. The
    handle is Arrow's own (``pa.OSFile``), so Parquet reads on it do not hold the GIL.
    """
    import pyarrow as pa

    if is_local():
        path, scratch = storage().path(key), None
    else:
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
    _wrap("delete", key, storage().delete, key)


def prune_empty_folders(key):
    """Local storage: remove the folders above a deleted key that are left empty (a collected
    version's folder, then its day's), never the storage root. S3 has no folders."""
    if not is_local():
        return
    root = Path(storage().location).resolve()
    folder = Path(storage().path(key)).resolve().parent
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (another version, an upload under way) or already gone
            return
        folder = folder.parent


def exists(key):
    return _wrap("lookup", key, storage().exists, key)


def size(key):
    """Size in bytes, or None when the object is missing."""

    def lookup():
        try:
            return storage().size(key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    return _wrap("lookup", key, lookup)


def _is_not_found(exc):
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in {"404", "NoSuchKey", "NotFound"}


def list_keys(prefix=""):
    """Every key under a prefix, recursively."""

    def listing():
        if is_local():
            root = Path(storage().location)
            base = root / prefix if prefix else root
            if not base.exists():
                return []
            return sorted(
                path.relative_to(root).as_posix()
                for path in base.rglob("*")
                if path.is_file() and not any(part.startswith(INCOMING) for part in path.relative_to(root).parts)
            )
        s3 = storage()
        return sorted(obj.key for obj in s3.bucket.objects.filter(Prefix=prefix))

    return _wrap("listing", prefix or "/", listing)


def list_objects(prefix):
    """(key, last modified, aware UTC datetime) of every object under a prefix, recursively.
    Upload leftovers of local storage (``.incoming-*``) are not objects and are left out."""

    def listing():
        if is_local():
            root = Path(storage().location)
            base = root / prefix
            if not base.exists():
                return []
            found = []
            for path in base.rglob("*"):
                relative = path.relative_to(root)
                if path.is_file() and not any(part.startswith(INCOMING) for part in relative.parts):
                    found.append((relative.as_posix(), _from_timestamp(path.stat().st_mtime)))
            return sorted(found)
        s3 = storage()
        return sorted((obj.key, obj.last_modified) for obj in s3.bucket.objects.filter(Prefix=prefix))

    return _wrap("listing", prefix or "/", listing)


def modified_time(key):
    """When the object was last written (aware UTC datetime), or None when it is missing."""

    def lookup():
        if is_local():
            try:
                return _from_timestamp(os.stat(storage().path(key)).st_mtime)
            except FileNotFoundError:
                return None
        try:
            return storage().connection.meta.client.head_object(
                Bucket=storage().bucket_name, Key=storage()._normalize_name(key)
            )["LastModified"]
        except Exception as exc:
            if _is_not_found(exc):
                return None
            raise

    return _wrap("lookup", key, lookup)


def _from_timestamp(seconds):
    return datetime.fromtimestamp(seconds, tz=UTC)


def open_local(key):
    """The local path of an object (local storage only), for streaming with Range support."""
    return Path(storage().path(key))


def presigned_url(key, filename, expires_in, content_type, *, method="GET"):
    """A URL on S3/R2 that downloads the object as ``filename`` for ``expires_in`` seconds.

    A presigned URL is signed for one HTTP method: ``method="HEAD"`` gives one that answers HEAD
    (what readers send to learn a file's size before reading ranges of it), which a GET URL refuses.
    """

    def sign():
        s3 = storage()
        client = s3.connection.meta.client
        return client.generate_presigned_url(
            "head_object" if method == "HEAD" else "get_object",
            Params={
                "Bucket": s3.bucket_name,
                "Key": s3._normalize_name(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=int(expires_in),
        )

    return _wrap("signing", key, sign)


def sign_local_key(key, filename, expires_in):
    """A Django-signed, expiring reference to a local object (the local twin of a presigned URL)."""
    expires_at = timezone.now() + timedelta(seconds=expires_in)
    value = signing.dumps({"k": key, "f": filename, "e": int(expires_at.timestamp())}, salt=LOCAL_URL_SALT)
    return value, expires_at


def unsign_local_key(value):
    """(key, filename) of a signed local reference, or None when it is forged or expired."""
    try:
        payload = signing.loads(value, salt=LOCAL_URL_SALT)
    except signing.BadSignature:
        return None
    if payload.get("e", 0) < timezone.now().timestamp():
        return None
    return payload["k"], payload["f"]


def ping():
    """Raise StorageError when storage cannot be reached."""

    def check():
        if is_local():
            root = Path(storage().location)
            root.mkdir(parents=True, exist_ok=True)
            if not os.access(root, os.W_OK):
                raise StorageError(f"local storage root {root} is not writable")
        else:
            s3 = storage()
            s3.connection.meta.client.head_bucket(Bucket=s3.bucket_name)

    _wrap("ping", settings.STORAGE_BACKEND, check)


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
