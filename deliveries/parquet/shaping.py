"""From JSON entries to tier 3 Arrow batches, and from tier 3 to tiers 2 and 1.

Entries are shredded column by column against the tier's fixed schema, never inferred, so every
day has the same schema. The rules of the contract:

- ``{}`` becomes null; a missing field becomes null; a field the schema does not know is dropped;
- ints in a double field become doubles;
- a value the field's type cannot hold exactly (a fraction in an int64 field, text in a double
  field, a list where an object belongs) becomes null and is counted by field path.

pyarrow alone would not do: it truncates 1.5 into an int64 and turns True into 1.0 silently.
Columns whose Python types are all already right (the common case) go to pyarrow in one call;
only columns holding a stray type are cleaned value by value.
"""

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from ..tiers import SOURCE_NAMES, TIER3_SCHEMA, TIER_COLUMNS, Tier

NoneType = type(None)
MAX_EXACT_INT_IN_DOUBLE = 2**53


class Coercions(Counter):
    """Field path -> number of values that became null because the type could not hold them."""


def _clean_double(value):
    kind = type(value)
    if kind is float:
        return value, True
    if kind is int and -MAX_EXACT_INT_IN_DOUBLE <= value <= MAX_EXACT_INT_IN_DOUBLE:
        return float(value), True
    return None, value is None


def _clean_int(value):
    kind = type(value)
    if kind is int and -(2**63) <= value < 2**63:
        return value, True
    if kind is float and value.is_integer() and -(2**63) <= value < 2**63:
        return int(value), True
    return None, value is None


def is_text(value):
    """A str that UTF-8 can encode: not one with a lone surrogate (which the JSON escape ``\\ud800``
    and Python's reading of such bytes make), which no Arrow string can hold."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _clean_str(value):
    if type(value) is str:
        return (value, True) if is_text(value) else (None, False)
    return None, value is None


def _clean_exact(expected):
    def clean(value):
        if type(value) is expected:
            return value, True
        return None, value is None

    return clean


_PRIMITIVES = {
    pa.float64(): (frozenset({float, NoneType}), _clean_double),
    pa.int64(): (frozenset({int, NoneType}), _clean_int),
    pa.string(): (frozenset({str, NoneType}), _clean_str),
    pa.bool_(): (frozenset({bool, NoneType}), _clean_exact(bool)),
}


def _primitive(values, type_, path, coercions):
    fast_types, clean = _PRIMITIVES[type_]
    if fast_types.issuperset(map(type, values)):
        try:
            return pa.array(values, type=type_)
        except (OverflowError, UnicodeEncodeError):  # an int beyond int64, a lone surrogate: cleaned below
            pass
    cleaned = []
    bad = 0
    for value in values:
        value, ok = clean(value)
        if not ok:
            bad += 1
        cleaned.append(value)
    if bad:
        coercions[path] += bad
    return pa.array(cleaned, type=type_)


def _struct(values, type_, path, coercions):
    """values: one Python object per row. Non-empty dicts are rows; ``{}`` and None are null."""
    null_mask = []
    rows = []
    bad = 0
    for value in values:
        if type(value) is dict and value:
            rows.append(value)
            null_mask.append(False)
        else:
            if value is not None and type(value) is not dict:
                bad += 1
            rows.append(None)
            null_mask.append(True)
    if bad:
        coercions[path] += bad
    children = []
    for child in type_:
        child_path = f"{path}.{child.name}"
        sources = SOURCE_NAMES.get(child_path)
        if sources is None:
            name = child.name
            child_values = [row.get(name) if row is not None else None for row in rows]
        else:
            child_values = [_first_present(row, sources) if row is not None else None for row in rows]
        children.append(shape_array(child_values, child.type, child_path, coercions))
    mask = pa.array(null_mask, type=pa.bool_()) if any(null_mask) else None
    return pa.StructArray.from_arrays(children, fields=list(type_), mask=mask)


def _first_present(row, names):
    for name in names:
        value = row.get(name)
        if value is not None:
            return value
    return None


def _list(values, type_, path, coercions):
    offsets = [0]
    flat = []
    null_mask = []
    bad = 0
    for value in values:
        if type(value) is list:
            flat.extend(value)
            null_mask.append(False)
        else:
            if value is not None:
                bad += 1
            null_mask.append(True)
        offsets.append(len(flat))
    if bad:
        coercions[path] += bad
    child = shape_array(flat, type_.value_type, f"{path}[]", coercions)
    mask = pa.array(null_mask, type=pa.bool_()) if any(null_mask) else None
    return pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), child, type=type_, mask=mask)


def shape_array(values, type_, path, coercions):
    if pa.types.is_struct(type_):
        return _struct(values, type_, path, coercions)
    if pa.types.is_list(type_):
        return _list(values, type_, path, coercions)
    return _primitive(values, type_, path, coercions)


def shape_tier3(entries, coercions):
    """A tier 3 RecordBatch from parsed JSON entries (dicts), in their order."""
    columns = []
    for field in TIER3_SCHEMA:
        name = field.name
        columns.append(shape_array([entry.get(name) for entry in entries], field.type, name, coercions))
    return pa.RecordBatch.from_arrays(columns, schema=TIER3_SCHEMA)


# --- Projections ------------------------------------------------------------------------------


def _path(batch, dotted):
    first, *rest = dotted.split(".")
    array = batch.column(first)
    for name in rest:
        array = pc.struct_field(array, name)
    return array


def _conform(array, type_):
    """Keep only the children of ``type_`` (recursively), by name. Parent nulls stay null."""
    if array.type == type_:
        return array
    if pa.types.is_struct(type_):
        children = [_conform(pc.struct_field(array, child.name), child.type) for child in type_]
        mask = array.is_null() if array.null_count else None
        return pa.StructArray.from_arrays(children, fields=list(type_), mask=mask)
    raise TypeError(f"cannot project {array.type} to {type_}")


def project(tier3_batch, tier):
    """Tier 2 or tier 1 (or tier 3 itself) from a tier 3 batch, per the tier's column definitions."""
    tier = Tier(tier)
    arrays = []
    for col in TIER_COLUMNS[tier]:
        candidates = [_conform(_path(tier3_batch, source), col.type) for source in col.sources]
        array = candidates[0]
        for fallback in candidates[1:]:
            array = pc.coalesce(array, fallback)
        arrays.append(array)
    schema = pa.schema([(col.name, col.type) for col in TIER_COLUMNS[tier]])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
