"""The fast reader: an hour file read by Arrow's C++ JSON reader, or not at all.

The strict reader (``archive.read_hour`` + ``shaping.shape_tier3``) pays Python's price for every
value to apply the contract's rules; real hours almost never need them. This one hands the whole
hour to ``pyarrow.json`` against a read schema derived from tier 3's, and keeps the result only when
it can prove it is exactly what the strict reader would have produced. Otherwise it raises
``Fallback`` with the reason, having changed nothing, and the build reads that hour strictly.

What Arrow would get wrong, and how each is caught or mended:

- ``{}`` (null by the contract) and ``{"x": null}`` (an object) both read as an object of nulls.
  Every ``{}`` is rewritten to ``{"\\u0000": true}`` before reading, and every struct of the read
  schema has that child: an object that has it was ``{}`` and becomes null. Rewritten inside a string,
  it would end the string early and make the line invalid, so it can never change a value silently;
  an hour that already holds the escape ``\\u0000`` falls back. ``{ }`` with blanks falls back.
- Integers in an int64 field may be written ``5.0``: int64 fields are read as doubles, and cast back
  only if every value is whole (a fraction, which the contract nulls, falls back); but
  ``meta.schema_version``, which must be a JSON integer, is read as int64. A double of
  magnitude 2^53 or more falls back: the integer it was read from may not have been exact.
- Arrow accepts ``NaN``, ``-NaN``, ``Inf`` and ``-Inf`` where Python (and so the strict reader)
  accepts only some: an hour with ``NaN`` or ``Inf`` anywhere falls back.
- Arrow reads several values on one line as several rows, a ``null`` line as a row of nulls, and a
  ``null`` first line crashes it: every line must start ``{"`` and end ``}``, and there must be one
  row per line. Arrow does not check UTF-8: the hour is checked (Python's ``surrogatepass`` reading
  of it accepts a little more; such hours fall back).
- Python cannot read a line nested about 1,000 deep (the strict reader skips it): a line that might
  be nested more than ``MAX_DEPTH`` deep falls back.
- Every rule of ``archive`` that would skip or count something falls back rather than being
  reimplemented: a blank, bad or over-long line, a cut-off gzip member, a missing or mistyped
  required field, a duplicate or conflicting entry (checked against the whole day's ``SeenEntries``,
  which remembers this hour's entries only once it is kept), and any value the contract would
  coerce (Arrow refuses a boolean in a double, text in a number and the like).

So a fast hour has no skipped line and no coerced value, by construction; the tests build the same
days both ways and compare files, manifests and counts.

No Python value is converted to Arrow here (the few Arrow values made are packed from bytes):
pyarrow imports pandas on the first such conversion, about 40 MB in every process that builds a
day (``tests/deliveries/test_build.py`` keeps it so).
"""

import functools
import re
import struct
import sys
import zlib

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from ..tiers import REQUIRED_KEYS, SOURCE_NAMES, TIER3_SCHEMA
from . import archive

SENTINEL = "\x00"  # a child of every struct of the read schema: present only in a rewritten ``{}``
EMPTY_OBJECT = b"{}"
EMPTY_REWRITTEN = b'{"\\u0000":true}'
JSON_BLANKS = b" \t\r"  # besides the newline; Python's json accepts no others either
# Text Arrow reads where Python does not, or not alike (NaN, -NaN, Inf...), and the escape of the
# rewritten ``{}``: (a byte rare in JSON to look for, what it starts, why the hour falls back).
TEXT_FALLBACKS = (
    (b"N", b"NaN", "NaN (Arrow reads -NaN too)"),
    (b"I", b"Inf", "Infinity (Arrow reads Inf too)"),
    (b"\\", b"\\u0000", "the escape \\u0000 (the rewritten {} uses it)"),
)
SPACED_EMPTY = re.compile(rb"\{[ \t\r]+\}")  # not rewritten: falls back
BLOCK_BYTES = 4 * 1024 * 1024  # Arrow parses blocks of this size in parallel
MAX_HOUR_BYTES = 512 * 1024 * 1024  # decompressed; beyond it (a real hour is ~12 MB) read strictly
MAX_DEPTH = 200  # a real entry nests 6 deep (its bound: about 60); Python reads up to about 1,000
# int64 fields the strict reader requires to be written as JSON integers (``archive.entry_problem``):
# read as int64, so that ``7.0`` there is refused (and read strictly) rather than read as 7.
JSON_INTEGER_PATHS = frozenset({"meta.schema_version"})
EXACT = 2**53  # doubles at or beyond this magnitude may not be the integer that was written


class Fallback(Exception):
    """This hour cannot be proven to read as the strict reader reads it: read it strictly."""


def _read_type(type_, path):
    """Tier 3's type at ``path`` as Arrow reads it: int64 read as double, every struct with the
    sentinel child, and a delivered name that has source names read under each of them."""
    if pa.types.is_struct(type_):
        fields = []
        for child in type_:
            child_path = f"{path}.{child.name}"
            for name in SOURCE_NAMES.get(child_path, (child.name,)):
                fields.append(pa.field(name, _read_type(child.type, child_path)))
        fields.append(pa.field(SENTINEL, pa.bool_()))
        return pa.struct(fields)
    if pa.types.is_list(type_):
        return pa.list_(_read_type(type_.value_type, f"{path}[]"))
    if type_ == pa.int64() and path not in JSON_INTEGER_PATHS:
        return pa.float64()
    return type_


@functools.cache
def read_schema():
    """The schema Arrow reads an hour with, derived from ``TIER3_SCHEMA`` (the contract)."""
    return pa.schema([pa.field(field.name, _read_type(field.type, field.name)) for field in TIER3_SCHEMA])


def read_hour(hour_file, *, seen, max_line_bytes=archive.DEFAULT_MAX_LINE_BYTES):
    """An ``archive.HourRead`` whose ``batch`` is the hour's tier 3 rows, or raise Fallback.

    ``seen`` is the day's ``archive.SeenEntries``; it learns this hour's entries only on success.
    """
    if recursion_headroom() < 2 * MAX_DEPTH:
        raise Fallback("too little recursion headroom for the strict reader to agree")
    data = decompress(hour_file.path, hour_file.size)
    spans = _line_spans(data, max_line_bytes)
    _check_text(data)
    view = memoryview(data)  # what the rows are checked against later, taken now: the text goes first
    brackets = [data.count(b"{", first, last) + data.count(b"[", first, last) for first, last in spans]
    digests = [archive.trimmed_digest(view[first:last]) for first, last in spans]
    longest = max(last - first for first, last in spans)
    text = pc.replace_substring(_as_arrow(data), EMPTY_OBJECT, EMPTY_REWRITTEN)
    start, end = pa.Array.from_buffers(pa.int64(), 2, [None, text.buffers()[1]], offset=text.offset).to_pylist()
    longest += end - start - len(data)
    view.release()
    del data
    table = _arrow_read(text.buffers()[2].slice(start, end - start), block_size=max(BLOCK_BYTES, 2 * longest + 2))
    del text
    if table.num_rows != len(spans):
        raise Fallback("a line that holds more than one value")
    batch = table.combine_chunks().to_batches()[0]
    del table
    _check_depth(batch, brackets)
    _check_required(batch)
    doubles = []
    tier3 = pa.RecordBatch.from_arrays(
        [_resolve(batch.column(field.name), field.type, field.name, doubles) for field in TIER3_SCHEMA],
        schema=TIER3_SCHEMA,
    )
    _check_exact(doubles)
    _remember(seen, tier3, digests)
    return archive.HourRead(hour_file.hour, batch=tier3)


def _line_spans(data, max_line_bytes):
    """``(start, end)`` of each line without its JSON blanks, in the text (the strict reader's
    lines: split at newlines, across gzip members, a final newline ending the last). Falls back on
    a line that is too long or that does not start ``{"`` and end ``}`` (blank, not an object, not
    JSON, or more than one value: Arrow would read those otherwise, and crashes on a ``null`` first)."""
    spans = []
    find = data.find
    position, size = 0, len(data)
    while position < size:
        end = find(b"\n", position)
        if end < 0:
            end = size
        if end - position > max_line_bytes:
            raise Fallback("a line longer than MAX_LINE_BYTES")
        first, last = position, end
        if data[first : first + 2] != b'{"' or data[last - 1 : last] != b"}":
            while first < last and data[first] in JSON_BLANKS:
                first += 1
            while last > first and data[last - 1] in JSON_BLANKS:
                last -= 1
            if data[first : first + 2] != b'{"' or data[last - 1 : last] != b"}":
                raise Fallback("a line that is not one object")
        spans.append((first, last))
        position = end + 1
    if not spans:
        raise Fallback("no lines")
    return spans


def decompress(path, size=None):
    """The hour's text, whole: every gzip member complete (trailing NUL padding allowed, as the
    strict reader allows it). A cut or corrupt member falls back (the strict reader counts it)."""
    if size is not None and size > MAX_HOUR_BYTES:
        raise Fallback("the hour file is too large to hold")
    with open(path, "rb") as fh:
        compressed = fh.read()
    pieces, total = [], 0
    while compressed:
        decompressor = zlib.decompressobj(wbits=31)
        try:
            piece = decompressor.decompress(compressed, MAX_HOUR_BYTES - total + 1)
        except zlib.error:
            raise Fallback("corrupt gzip data") from None
        total += len(piece)
        if total > MAX_HOUR_BYTES:
            raise Fallback("the hour is too large to hold")
        if not decompressor.eof:
            raise Fallback("a cut gzip member (an hour still being written)")
        pieces.append(piece)
        compressed = decompressor.unused_data
        if not compressed.strip(b"\x00"):
            break
    return b"".join(pieces)


def _as_arrow(data):
    """The bytes as a one-value Arrow binary array, without copying them."""
    offsets = pa.py_buffer(struct.pack("=2q", 0, len(data)))  # native order, as Arrow holds them
    return pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])


def _check_text(data):
    """What only the text shows: values Arrow reads but Python does not (or not the same way), the
    escape the rewritten ``{}`` uses, an empty object with blanks in it, and text that is not UTF-8
    (Arrow's JSON reader does not check it). Each looked for by a byte that is rare in JSON."""
    for byte, needle, why in TEXT_FALLBACKS:
        position = data.find(byte)
        while position >= 0:
            if data.startswith(needle, position):
                raise Fallback(why)
            position = data.find(byte, position + 1)
    if SPACED_EMPTY.search(data):
        raise Fallback("an empty object written with blanks, { }")
    try:
        _as_arrow(data).cast(pa.large_string())  # Arrow's UTF-8 check
    except pa.ArrowInvalid:
        raise Fallback("text that is not UTF-8") from None


def _check_depth(batch, brackets):
    """Fall back if a line may nest deeper than ``MAX_DEPTH``. Without parsing: a line nests no
    deeper than its opening brackets (``brackets``, per line), less all but one of its price
    samples (siblings, never open together). Brackets in strings only raise the bound."""
    samples = batch.column("spot_prices")
    counts = [n or 0 for n in pc.list_value_length(samples).to_pylist()]  # a null list: no samples
    flat = pc.list_flatten(samples)
    if flat.null_count:  # a null sample is no bracket: count only the samples that are objects
        parents = pc.list_parent_indices(samples)
        for position in pc.indices_nonzero(flat.is_null()).to_pylist():
            counts[parents[position].as_py()] -= 1
    for opening, samples_in_line in zip(brackets, counts, strict=True):
        if opening - max(samples_in_line - 1, 0) > MAX_DEPTH:
            raise Fallback("a line that may nest too deep")


def _arrow_read(text, *, block_size):
    try:
        return pj.read_json(
            pa.BufferReader(text),
            read_options=pj.ReadOptions(block_size=block_size),
            parse_options=pj.ParseOptions(explicit_schema=read_schema(), unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowException, ValueError) as exc:  # ValueError: Arrow's message was not UTF-8
        raise Fallback(f"Arrow: {str(exc)[:200]}") from None


def _check_required(batch):
    """The strict reader skips an entry missing a required field, or with a blank key: fall back."""
    for name in REQUIRED_KEYS:
        if batch.column(name).null_count:
            raise Fallback(f"an entry without {name}")
    if batch.column("meta").field("schema_version").null_count:
        raise Fallback("an entry without meta.schema_version")
    for name in ("symbol", "snapshot_ts"):
        if not pc.all(pc.match_substring_regex(batch.column(name), "[0-9A-Za-z]")).as_py():
            raise Fallback(f"an entry whose {name} may be blank")


def _resolve(array, type_, path, doubles):
    """The read array as tier 3's type: rewritten ``{}`` null, source names coalesced, doubles
    read for int64 cast back (a fraction falls back). Every double is added to ``doubles``, for
    ``_check_exact``."""
    if pa.types.is_struct(type_):
        children = []
        for child in type_:
            child_path = f"{path}.{child.name}"
            names = SOURCE_NAMES.get(child_path, (child.name,))
            value = _resolve(array.field(names[0]), child.type, child_path, doubles)
            for name in names[1:]:
                value = pc.coalesce(value, _resolve(array.field(name), child.type, child_path, doubles))
            children.append(value)
        empty = array.field(SENTINEL)
        null = array.is_null()
        if empty.true_count:
            null = pc.or_(null, pc.and_kleene(empty, empty.is_valid()))  # null sentinel: false
        return pa.StructArray.from_arrays(children, fields=list(type_), mask=null if null.true_count else None)
    if pa.types.is_list(type_):
        values = _resolve(array.values, type_.value_type, f"{path}[]", doubles)
        mask = array.is_null() if array.null_count else None
        return pa.ListArray.from_arrays(array.offsets, values, type=type_, mask=mask)
    if array.type == type_:
        if type_ == pa.float64():
            doubles.append(array)
        return array
    doubles.append(array)  # an int64 field, read as double
    try:
        return pc.cast(array, pa.int64(), safe=True)
    except pa.ArrowInvalid:
        raise Fallback(f"{path}: a fraction in an int64 field") from None


def _check_exact(doubles):
    """Every number is what the strict reader makes of it: a double of magnitude 2^53 or more may
    have been read from an integer it cannot hold (the contract nulls those), so it falls back."""
    values = pa.concat_arrays(doubles)
    if values.null_count == len(values):
        return
    low, high = pc.min_max(values).values()
    if low.as_py() <= -EXACT or high.as_py() >= EXACT:
        raise Fallback("a number of magnitude 2^53 or more")


def _remember(seen, batch, digests):
    """Record the hour's entries in the day's SeenEntries, or fall back if any repeats one."""
    keys = zip(batch.column("symbol").to_pylist(), batch.column("snapshot_ts").to_pylist(), strict=True)
    hour = {}
    for key, digest in zip(keys, digests, strict=True):
        if key in hour or seen.verdict(key, digest) != seen.NEW:
            raise Fallback("an entry with the symbol and snapshot_ts of an earlier one")
        hour[key] = digest
    for key, digest in hour.items():
        seen.add(key, digest)


def recursion_headroom():
    """How many more frames this thread may nest (``MAX_DEPTH`` must stay well under it)."""
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return sys.getrecursionlimit() - depth
