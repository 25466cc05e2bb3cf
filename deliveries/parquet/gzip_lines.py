"""An hour file's gzip, before any line of it is parsed: does it hold anything readable at all
(``hour_file_problem``: else it is a *bad hour*, never read), and its lines streamed with bounded
memory, a line longer than the limit dropped as it goes by and a cut member's text kept
(``HourLines``). ``archive`` applies the rules of the lines and entries on top.
"""

import contextlib
import zlib

READ_CHUNK = 1024 * 1024  # compressed bytes read at a time, and decompressed bytes made at a time
PROBE_CHUNK = 64 * 1024
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024  # settings.MAX_LINE_BYTES; a real entry is about 100 KB
GZIP_MAGIC = b"\x1f\x8b"


class BadHour:
    """Why an hour file is not read at all (the manifest's ``bad_hours`` values)."""

    EMPTY = "empty"  # no bytes, or a gzip stream with nothing in it (yet)
    NOT_GZIP = "not_gzip"  # does not start as gzip does
    CORRUPT = "corrupt_gzip"  # starts as gzip, but not one byte of it can be decompressed


def hour_file_problem(path, size=None):
    """The BadHour reason of an hour file, or None when it holds data to read.

    Reads only until the first decompressed byte (a few KB of a real file): a gzip stream that
    yields anything is read, and any flaw after that is the reader's to count.
    """
    if size == 0:
        return BadHour.EMPTY
    with open(path, "rb") as fh:
        head = fh.read(len(GZIP_MAGIC))
        if not head:
            return BadHour.EMPTY
        if head != GZIP_MAGIC:
            return BadHour.NOT_GZIP
        fh.seek(0)
        decompressor = zlib.decompressobj(wbits=31)
        while chunk := fh.read(PROBE_CHUNK):
            data = chunk
            while data:
                try:
                    if decompressor.decompress(data, 1):
                        return None
                except zlib.error:
                    return BadHour.CORRUPT
                if decompressor.eof:  # an empty member: look at the next one, if any
                    data = decompressor.unused_data
                    decompressor = zlib.decompressobj(wbits=31)
                    if not data.strip(b"\x00"):
                        data = b""
                else:
                    data = decompressor.unconsumed_tail
    return BadHour.EMPTY


class HourLines:
    """Iterate a gzip file's lines (bytes, without the newline), member after member.

    Memory is bounded whatever the file holds: at most ``READ_CHUNK`` bytes are decompressed at a
    time, and a line longer than ``max_line_bytes`` is dropped as it streams by and stands as None.

    A file that ends inside a gzip member (an hour still being written) or holds corrupt data sets
    ``truncated``; what decompressed before the cut is still yielded, including the partial last
    line, whose parse then fails and is counted, so no text is lost silently.
    """

    def __init__(self, path, max_line_bytes=DEFAULT_MAX_LINE_BYTES):
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.truncated = False

    def __iter__(self):
        self._pending = bytearray()
        self._too_long = False
        decompressor = zlib.decompressobj(wbits=31)
        fed = False
        with open(self.path, "rb") as fh:
            while chunk := fh.read(READ_CHUNK):
                data, more = chunk, False
                while data or more:  # ``more``: a full chunk came out, zlib may hold the rest
                    fed = True
                    try:
                        text = decompressor.decompress(data, READ_CHUNK)
                    except zlib.error:
                        self.truncated = True
                        break
                    more = len(text) == READ_CHUNK
                    if text:
                        yield from self._lines(text)
                    if decompressor.eof:
                        data, more = decompressor.unused_data, False
                        decompressor = zlib.decompressobj(wbits=31)
                        fed = False
                        if not data.strip(b"\x00"):
                            data = b""
                    else:
                        data = decompressor.unconsumed_tail
                if self.truncated:
                    break
        if fed and not decompressor.eof:
            self.truncated = True
            with contextlib.suppress(zlib.error):
                yield from self._lines(decompressor.flush())
        if self._too_long:
            yield None
        elif self._pending:
            yield bytes(self._pending)

    def _lines(self, text):
        start = 0
        limit = self.max_line_bytes
        while True:
            end = text.find(b"\n", start)
            piece = text[start:] if end < 0 else text[start:end]
            if not self._too_long:
                if len(self._pending) + len(piece) > limit:
                    self._too_long = True
                    self._pending.clear()
                else:
                    self._pending += piece
            if end < 0:
                return
            if self._too_long:
                self._too_long = False
                yield None
            else:
                yield bytes(self._pending)
                self._pending.clear()
            start = end + 1
