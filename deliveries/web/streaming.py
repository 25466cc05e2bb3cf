"""Local files served by the site with what resuming and range reading need: Range and If-Range,
ETag and If-None-Match, HEAD, from one open descriptor."""

import os

from django.http import FileResponse, HttpResponse, HttpResponseNotModified
from django.http.response import StreamingHttpResponse
from django.utils.http import content_disposition_header, http_date

from .. import storage

CHUNK = 256 * 1024


class NotAvailable(Exception):
    """No such file to hand out: never published, delisted by retention, or gone from storage."""


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
