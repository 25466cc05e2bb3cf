"""Which consecutive row groups of a source ``splice.Writer`` merges into one, and which of their
fields it encodes again (``plan_runs``, by the rules in ``splice``'s docstring): decided from the
footer alone, before a byte is copied."""

from dataclasses import dataclass

from .footer import (
    META_BLOOM_OFFSET,
    META_CODEC,
    META_DICTIONARY_PAGE,
    META_ENCODINGS,
    META_STATISTICS,
    META_TYPE,
    META_UNCOMPRESSED,
    RG_COLUMNS,
    RG_TOTAL_BYTE_SIZE,
    SpliceError,
    chunk_meta,
)

DICTIONARY_ENCODINGS = {2, 8}  # PLAIN_DICTIONARY, RLE_DICTIONARY


def _has_dictionary(meta):
    return meta.value(META_DICTIONARY_PAGE, 0) > 0 or bool(DICTIONARY_ENCODINGS & set(meta.value(META_ENCODINGS)[1]))


def _concatenable(meta):
    return not _has_dictionary(meta) and META_STATISTICS not in meta and META_BLOOM_OFFSET not in meta


@dataclass
class _GroupFacts:
    """Per field of one source row group: may its chunks be copied (they use the layout's codec),
    may they be concatenated, with what signature (codec and type of each leaf), and how many
    bytes it decodes to."""

    copyable: list
    concatenable: list
    signature: list
    size: list
    total: int


def _facts(row_group, layout):
    metas = [chunk_meta(chunk) for chunk in row_group.value(RG_COLUMNS)[1]]
    if len(metas) != len(layout.leaf_paths):
        raise SpliceError("row group has a different number of columns than the schema")
    copyable, concatenable, signature, size = [], [], [], []
    for _, leaves in layout.fields:
        field = [metas[i] for i in leaves]
        copyable.append(all(meta.value(META_CODEC) == layout.codec for meta in field))
        concatenable.append(copyable[-1] and all(_concatenable(meta) for meta in field))
        signature.append(tuple((meta.value(META_CODEC), meta.value(META_TYPE)) for meta in field))
        size.append(sum(meta.value(META_UNCOMPRESSED) for meta in field))
    return _GroupFacts(copyable, concatenable, signature, size, row_group.value(RG_TOTAL_BYTE_SIZE, 0))


def plan_runs(source, groups, layout, *, run_bytes, side_bytes):
    """Consecutive source row groups, a run per output row group: yields (groups, fields to encode
    again by index, the groups' parsed metadata). A run stays within ``run_bytes`` decoded and its
    fields encoded again within ``side_bytes``; a single row group is copied whole, but for chunks
    compressed with another codec than the layout's (the contract names one). Only the current
    run's metadata is held, whatever the size of the footer."""
    run, parsed, first, side, side_size, total = [], [], None, set(), [], 0
    for group in groups:
        row_group = source.row_groups[group]
        fact = _facts(row_group, layout)
        if run:
            new_side = side | {
                f
                for f in range(len(layout.fields))
                if not (fact.concatenable[f] and first.concatenable[f] and fact.signature[f] == first.signature[f])
            }
            sizes = [a + b for a, b in zip(side_size, fact.size, strict=True)]
            if total + fact.total <= run_bytes and sum(sizes[f] for f in new_side) <= side_bytes:
                run.append(group)
                parsed.append(row_group)
                side, side_size, total = new_side, sizes, total + fact.total
                continue
            yield run, side, parsed
        side = {f for f, copyable in enumerate(fact.copyable) if not copyable}
        run, parsed, first, side_size, total = [group], [row_group], fact, list(fact.size), fact.total
    if run:
        yield run, side, parsed
