"""The two delivery storages, configured as Django's ``STORAGES["deliveries"]``: the only code
that knows local files from a bucket. Both answer the interface ``deliveries.storage`` calls
(see its docstring); everything else goes through that module's functions."""

import errno
import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from botocore.config import Config
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from django.utils import timezone
from storages.backends.s3 import S3Storage

LOCAL_URL_SALT = "deliveries.local-file"
INCOMING = ".incoming-"  # files and folders being written: never objects, never listed


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
