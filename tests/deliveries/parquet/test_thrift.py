"""The compact-protocol codec behind the bundle's Parquet footer."""

import io
import struct

import pyarrow.parquet as pq
import pytest

from deliveries.parquet import thrift
from deliveries.parquet.thrift import (
    BINARY,
    BOOL_TRUE,
    BYTE,
    DOUBLE,
    I16,
    I32,
    I64,
    LIST,
    MAP,
    SET,
    STRUCT,
    Struct,
    ThriftError,
)
from tests.support.factories import dense_table


def parquet_footer(table, **options):
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    data = sink.getvalue()
    length = struct.unpack("<I", data[-8:-4])[0]
    return data[-8 - length : -8]


def test_a_footer_pyarrow_wrote_reads_and_writes_back_byte_identical():
    raw = parquet_footer(dense_table("tier3", 40), row_group_size=10, compression="zstd")
    footer, used = thrift.loads(raw)
    assert used == len(raw)
    assert len(footer.value(4)[1]) == 4, "four row groups"
    assert thrift.dumps(footer) == raw


def every_kind_of_value():
    inner = Struct({1: (I32, -7), 2: (BINARY, b"x" * 200)})
    return Struct(
        {
            1: (BOOL_TRUE, True),
            2: (BOOL_TRUE, False),
            3: (BYTE, -5),
            4: (I16, -300),
            5: (I32, 2**31 - 1),
            6: (I64, -(2**63)),
            7: (DOUBLE, 3.25),
            8: (BINARY, b""),
            9: (LIST, (I64, list(range(-20, 20)))),  # 15 or more items: the long list header
            10: (SET, (BINARY, [b"a", b"b"])),
            11: (MAP, (BINARY, I32, [(b"k", 1), (b"l", -1)])),
            12: (STRUCT, inner),
            13: (LIST, (BOOL_TRUE, [True, False, True])),
            40: (I32, 1),  # a field id jump of more than 15: the long field header
            41: (MAP, (0, 0, [])),
            300: (LIST, (STRUCT, [inner, Struct()])),
        }
    )


def test_every_wire_type_round_trips():
    value = every_kind_of_value()
    data = thrift.dumps(value)
    back, used = thrift.loads(data)
    assert used == len(data)
    assert back == value
    assert thrift.dumps(back) == data


@pytest.mark.parametrize("cut", [1, 5, 17, 40, 100])
def test_truncated_bytes_are_a_thrift_error_not_a_crash(cut):
    data = thrift.dumps(every_kind_of_value())
    with pytest.raises(ThriftError):
        thrift.loads(data[:-cut])


def test_an_unknown_wire_type_is_a_thrift_error():
    with pytest.raises(ThriftError, match="wire type"):
        thrift.loads(bytes([0x1D, 0x00]))  # field 1 of type 13


def test_absurd_nesting_is_a_thrift_error():
    data = bytes([0x1C]) * 200 + bytes(201)  # struct in struct in struct ...
    with pytest.raises(ThriftError, match="nested"):
        thrift.loads(data)


def test_lazy_row_groups_parse_to_the_same_structs_on_demand():
    raw = parquet_footer(dense_table("tier2", 30), row_group_size=7)
    eager, _ = thrift.loads(raw)
    lazy, used = thrift.loads(raw, lazy={4})
    assert used == len(raw)
    groups = lazy.value(4)[1]
    assert isinstance(groups, thrift.LazyStructs)
    assert len(groups) == 5
    assert [groups[i] for i in (4, 0, -1)] == [eager.value(4)[1][i] for i in (4, 0, -1)]
    assert list(groups) == eager.value(4)[1]


def test_lazy_structs_keep_only_the_last_few_parsed():
    raw = parquet_footer(dense_table("tier1", 30), row_group_size=3)
    groups = thrift.loads(raw, lazy={4})[0].value(4)[1]
    groups.keep = 2
    for group in groups:
        assert group.value(3) == 3
    assert sorted(groups.parsed) == [8, 9]


def test_raw_structs_are_written_as_they_are():
    raw = parquet_footer(dense_table("tier1", 12), row_group_size=4)
    footer, _ = thrift.loads(raw)
    groups = footer.value(4)[1]
    footer.set(4, LIST, (STRUCT, [thrift.Raw(thrift.dumps(group)) for group in groups]))
    assert thrift.dumps(footer) == raw


def test_values_left_raw_deep_down_write_back_identical_and_decode_on_demand():
    raw = parquet_footer(dense_table("tier3", 20), row_group_size=10, compression="zstd")
    eager, _ = thrift.loads(raw)
    lazy, _ = thrift.loads(raw, lazy={4}, raw_depth=3)
    for index, group in enumerate(lazy.value(4)[1]):
        assert thrift.dumps(group) == thrift.dumps(eager.value(4)[1][index])
        meta = group.value(1)[1][0].value(3)  # first column chunk's ColumnMetaData
        assert type(meta[12][1]) is thrift.Raw, "statistics stay encoded"
        assert meta.value(12) == eager.value(4)[1][index].value(1)[1][0].value(3).value(12)
        assert type(meta[12][1]) is thrift.Struct, "decoded once asked for"


def test_a_raw_value_cut_short_is_a_thrift_error():
    data = thrift.dumps(Struct({1: (STRUCT, Struct({1: (LIST, (I32, [1, 2, 3]))}))}))
    with pytest.raises(ThriftError):
        thrift.loads(data[:-3], raw_depth=1)
