"""Thrift's compact protocol, just enough to read and write a Parquet footer.

A Parquet footer is one Thrift struct (``FileMetaData``). The month-to-date bundle is assembled
from the daily files' column chunks, byte for byte, under a footer of its own (``splice``); pyarrow
can write a footer only for data it encoded itself, hence this module.

Structs are decoded generically: every field keeps its wire type, so a footer read and written back
is byte-identical, and fields this module has never heard of (a newer Parquet writer's) survive.
"""

import gc
import struct as _struct

BOOL_TRUE, BOOL_FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(1, 13)
_BOOL_TYPES = (BOOL_TRUE, BOOL_FALSE)


class ThriftError(ValueError):
    """Bytes that are not a well-formed compact-protocol struct."""


class Raw(bytes):
    """A value kept encoded (its wire bytes, without a field header) and written as it is.

    A writer encodes its row groups as it makes them and keeps kilobytes, not thousands of Python
    objects, until the footer; a reader leaves the statistics and such of a column chunk it only
    copies encoded (``loads(raw_depth=...)``), which saves most of the parsing and writing."""


_CONTAINERS = frozenset((9, 10, 11, 12))  # LIST, SET, MAP, STRUCT
_INTEGERS = frozenset((4, 5, 6))  # I16, I32, I64


class Struct(dict):
    """Field id -> (wire type, value). Lists are (element type, [values]); structs are Structs;
    a ``Raw`` value is decoded the first time ``value`` asks for it."""

    def value(self, field_id, default=None):
        entry = self.get(field_id)
        if entry is None:
            return default
        wire_type, value = entry
        if type(value) is Raw:
            value = _decode_raw(wire_type, value)
            self[field_id] = (wire_type, value)
        return value

    def set(self, field_id, wire_type, value):
        self[field_id] = (wire_type, value)

    def copy(self):
        return Struct(self)


# --- Reading -------------------------------------------------------------------------------------
# One function with its hot paths inlined: a daily file's footer holds a quarter of a million
# values, and a method call per byte would cost a second per file.


def _varint_at(data, pos):
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ThriftError("varint too long")


def _list_header_at(data, pos):
    """(size, element type, position after) of a list or set header."""
    header = data[pos]
    size, element_type = header >> 4, header & 0x0F
    if size == 15:
        size, pos = _varint_at(data, pos + 1)
        return size, element_type, pos
    return size, element_type, pos + 1


def _value_at(data, pos, wire_type, depth, raw_depth=None):
    if wire_type in (I32, I64, I16):
        byte = data[pos]
        if byte < 0x80:
            return (byte >> 1) ^ -(byte & 1), pos + 1
        raw, pos = _varint_at(data, pos)
        return (raw >> 1) ^ -(raw & 1), pos
    if wire_type == BINARY:
        length = data[pos]
        if length < 0x80:
            pos += 1
        else:
            length, pos = _varint_at(data, pos)
        end = pos + length
        if end > len(data):
            raise ThriftError("unexpected end of data")
        return data[pos:end], end
    if wire_type == STRUCT:
        return _struct_at(data, pos, depth + 1, (), raw_depth)
    if wire_type in (LIST, SET):
        size, element_type, pos = _list_header_at(data, pos)
        items = []
        append = items.append
        for _ in range(size):
            item, pos = _value_at(data, pos, element_type, depth + 1, raw_depth)
            append(item)
        return (element_type, items), pos
    if wire_type in _BOOL_TYPES:  # inside a container: one byte
        return data[pos] == BOOL_TRUE, pos + 1
    if wire_type == BYTE:
        return _struct.unpack_from("b", data, pos)[0], pos + 1
    if wire_type == DOUBLE:
        if pos + 8 > len(data):
            raise ThriftError("unexpected end of data")
        return _struct.unpack_from("<d", data, pos)[0], pos + 8
    if wire_type == MAP:
        size, pos = _varint_at(data, pos)
        if size == 0:
            return (0, 0, []), pos
        types = data[pos]
        pos += 1
        key_type, value_type = types >> 4, types & 0x0F
        pairs = []
        for _ in range(size):
            key, pos = _value_at(data, pos, key_type, depth + 1, raw_depth)
            item, pos = _value_at(data, pos, value_type, depth + 1, raw_depth)
            pairs.append((key, item))
        return (key_type, value_type, pairs), pos
    raise ThriftError(f"unknown wire type {wire_type}")


def _skip_at(data, pos, wire_type):
    """The position after a value, without building it (integers and strings, nearly all of a
    footer, are stepped over inline)."""
    if wire_type == STRUCT:
        while True:
            header = data[pos]
            pos += 1
            if header == 0:
                return pos
            if not header >> 4:
                _, pos = _varint_at(data, pos)
            field_type = header & 0x0F
            if field_type in _INTEGERS:
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            elif field_type == BINARY:
                length = data[pos]
                pos = pos + 1 + length if length < 0x80 else sum(_varint_at(data, pos))
            elif field_type not in _BOOL_TYPES:
                pos = _skip_at(data, pos, field_type)
    if wire_type in _INTEGERS:
        while data[pos] & 0x80:
            pos += 1
        return pos + 1
    if wire_type == BINARY:
        return sum(_varint_at(data, pos))
    if wire_type in (LIST, SET):
        size, element_type, pos = _list_header_at(data, pos)
        if element_type in _INTEGERS:
            for _ in range(size):
                while data[pos] & 0x80:
                    pos += 1
                pos += 1
            return pos
        for _ in range(size):
            pos = _skip_at(data, pos, element_type)
        return pos
    if wire_type in _BOOL_TYPES or wire_type == BYTE:
        return pos + 1
    if wire_type == DOUBLE:
        return pos + 8
    return _value_at(data, pos, wire_type, 0)[1]


class LazyStructs:
    """A list of structs left encoded until an element is asked for (then parsed, and the last
    few kept): a 31-day bundle's footer holds 8,000 column chunks, of which a day needs 264, and
    parsed they take 20 times their encoded size."""

    def __init__(self, data, spans, keep=2, raw_depth=None):
        self.data = data
        self.spans = spans
        self.keep = keep
        self.raw_depth = raw_depth
        self.parsed = {}

    def __len__(self):
        return len(self.spans)

    def __getitem__(self, index):
        if index < 0:
            index += len(self.spans)
        found = self.parsed.pop(index, None)
        if found is None:
            start, end = self.spans[index]
            found, used = loads(self.data[start:end], raw_depth=self.raw_depth)
            if used != end - start:
                raise ThriftError("struct length mismatch")
        self.parsed[index] = found  # most recently used last
        while len(self.parsed) > self.keep:
            del self.parsed[next(iter(self.parsed))]
        return found

    def __iter__(self):
        return (self[i] for i in range(len(self)))


def _lazy_list_at(data, pos, raw_depth):
    size, element_type, pos = _list_header_at(data, pos)
    if element_type != STRUCT:
        raise ThriftError("only lists of structs can be left encoded")
    spans = []
    for _ in range(size):
        end = _skip_at(data, pos, STRUCT)
        spans.append((pos, end))
        pos = end
    if pos > len(data):
        raise ThriftError("unexpected end of data")
    return (STRUCT, LazyStructs(data, spans, raw_depth=raw_depth)), pos


def _struct_at(data, pos, depth, lazy=(), raw_depth=None):
    if depth > 64:
        raise ThriftError("structs nested too deeply")
    result = Struct()
    last_id = 0
    while True:
        header = data[pos]
        pos += 1
        if header == 0:
            return result, pos
        delta, wire_type = header >> 4, header & 0x0F
        if delta:
            field_id = last_id + delta
        else:
            raw, pos = _varint_at(data, pos)
            field_id = (raw >> 1) ^ -(raw & 1)
        if wire_type in _BOOL_TYPES:
            result[field_id] = (BOOL_TRUE, wire_type == BOOL_TRUE)
        elif field_id in lazy and wire_type == LIST:
            value, pos = _lazy_list_at(data, pos, raw_depth)
            result[field_id] = (wire_type, value)
        elif raw_depth is not None and depth >= raw_depth and wire_type in _CONTAINERS:
            end = _skip_at(data, pos, wire_type)
            if end > len(data):
                raise ThriftError("unexpected end of data")
            result[field_id] = (wire_type, Raw(data[pos:end]))
            pos = end
        else:
            value, pos = _value_at(data, pos, wire_type, depth, raw_depth)
            result[field_id] = (wire_type, value)
        last_id = field_id


def loads(data, *, lazy=(), raw_depth=None):
    """(Struct, bytes consumed) of the struct at the start of ``data``. Fields listed in ``lazy``
    (lists of structs) come back as ``LazyStructs``; lists and structs inside structs nested
    ``raw_depth`` deep or more stay ``Raw`` until asked for (0 is the outer struct)."""
    data = bytes(data)
    collecting = gc.isenabled()
    gc.disable()  # the parse allocates only acyclic containers; the collector would rescan them all
    try:
        return _struct_at(data, 0, 0, lazy, raw_depth)
    except IndexError as exc:
        raise ThriftError("unexpected end of data") from exc
    except RecursionError as exc:
        raise ThriftError("structs nested too deeply") from exc
    finally:
        if collecting:
            gc.enable()


# --- Writing -------------------------------------------------------------------------------------


def _varint(value, out):
    while True:
        if value < 0x80:
            out.append(value)
            return
        out.append((value & 0x7F) | 0x80)
        value >>= 7


def _zigzag(value, out):
    _varint((value << 1) ^ (value >> 63), out)


def _decode_raw(wire_type, raw):
    try:
        return _value_at(raw, 0, wire_type, 0)[0]
    except IndexError as exc:
        raise ThriftError("unexpected end of data") from exc


def _write_value(wire_type, value, out):
    if type(value) is Raw:
        out += value
        return
    if wire_type in _BOOL_TYPES:
        out.append(BOOL_TRUE if value else BOOL_FALSE)
    elif wire_type == BYTE:
        out += _struct.pack("b", value)
    elif wire_type in (I16, I32, I64):
        _zigzag(value, out)
    elif wire_type == DOUBLE:
        out += _struct.pack("<d", value)
    elif wire_type == BINARY:
        _varint(len(value), out)
        out += value
    elif wire_type in (LIST, SET):
        element_type, items = value
        if len(items) < 15:
            out.append((len(items) << 4) | element_type)
        else:
            out.append(0xF0 | element_type)
            _varint(len(items), out)
        for item in items:
            _write_value(element_type, item, out)
    elif wire_type == MAP:
        key_type, value_type, pairs = value
        _varint(len(pairs), out)
        if pairs:
            out.append((key_type << 4) | value_type)
            for key, item in pairs:
                _write_value(key_type, key, out)
                _write_value(value_type, item, out)
    elif wire_type == STRUCT:
        _write_struct(value, out)
    else:
        raise ThriftError(f"unknown wire type {wire_type}")


def _write_struct(fields, out):
    last_id = 0
    for field_id in sorted(fields):
        wire_type, value = fields[field_id]
        header_type = (BOOL_TRUE if value else BOOL_FALSE) if wire_type in _BOOL_TYPES else wire_type
        delta = field_id - last_id
        if 0 < delta <= 15:
            out.append((delta << 4) | header_type)
        else:
            out.append(header_type)
            _zigzag(field_id, out)
        if wire_type not in _BOOL_TYPES:
            _write_value(wire_type, value, out)
        last_id = field_id
    out.append(0)


def dumps(fields):
    """The compact-protocol bytes of a Struct."""
    out = bytearray()
    _write_struct(fields, out)
    return bytes(out)
