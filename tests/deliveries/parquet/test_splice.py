"""Parquet files assembled from other files' column chunks: what readers get is exactly the rows."""

import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from deliveries.parquet import encoding, profile, splice
from deliveries.tiers import schema_for
from tests.support.factories import dense_table, undercount_merged_chunks, written_by


def write_hours(path, table, tier, rows_per_group, **options):
    """As the daily builder writes tier 3: a row group per write."""
    options = options or encoding.writer_options(tier)
    with pq.ParquetWriter(path, table.schema, **options) as writer:
        for start in range(0, table.num_rows, rows_per_group):
            writer.write_table(table.slice(start, rows_per_group))
    return path


def chunk(path, group, column):
    return pq.ParquetFile(path).metadata.row_group(group).column(column)


def column_index(tier, dotted):
    return [path for path, _ in encoding.leaf_columns(tier)].index(dotted)


@pytest.fixture
def hours(tmp_path):
    table = dense_table("tier3", 60, seed=1)
    return table, write_hours(tmp_path / "hours.parquet", table, "tier3", 10)


def test_compact_merges_row_groups_into_one_with_the_same_rows(tmp_path, hours):
    table, source = hours
    assert pq.ParquetFile(source).num_row_groups == 6
    digest, size, rows = splice.compact(source, tmp_path / "day.parquet", encoding.layout("tier3"))
    out = pq.ParquetFile(tmp_path / "day.parquet")
    assert out.num_row_groups == 1
    assert (rows, out.metadata.num_rows) == (60, 60)
    assert out.read().equals(table)
    data = (tmp_path / "day.parquet").read_bytes()
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_the_result_has_exactly_the_schema_pyarrow_writes_for_the_tier(tmp_path, hours):
    _, source = hours
    splice.compact(source, tmp_path / "day.parquet", encoding.layout("tier3"))
    out = pq.ParquetFile(tmp_path / "day.parquet")
    assert out.schema_arrow.equals(schema_for("tier3"))
    assert out.schema.equals(encoding.layout("tier3").parquet_schema)


def test_price_samples_are_concatenated_pages_not_encoded_again(tmp_path, hours):
    _, source = hours
    splice.compact(source, tmp_path / "day.parquet", encoding.layout("tier3"))
    column = column_index("tier3", "spot_prices.list.element.mid")
    merged = chunk(tmp_path / "day.parquet", 0, column)
    parts = [chunk(source, group, column) for group in range(6)]
    assert merged.total_compressed_size == sum(part.total_compressed_size for part in parts)
    assert merged.num_values == sum(part.num_values for part in parts)
    assert not merged.has_dictionary_page and not merged.is_stats_set


def test_columns_with_dictionaries_and_statistics_are_encoded_again_with_them(tmp_path, hours):
    table, source = hours
    splice.compact(source, tmp_path / "day.parquet", encoding.layout("tier3"))
    symbol = chunk(tmp_path / "day.parquet", 0, column_index("tier3", "symbol"))
    assert symbol.has_dictionary_page
    assert symbol.statistics.null_count == table.column("symbol").null_count
    assert symbol.statistics.min == min(v for v in table.column("symbol").to_pylist() if v is not None)


def test_several_files_make_one_file_of_their_rows_in_order(tmp_path):
    layout = encoding.layout("tier2")
    tables = [dense_table("tier2", rows, seed=rows) for rows in (5, 0, 9)]
    paths = [write_hours(tmp_path / f"{i}.parquet", t, "tier2", 4) for i, t in enumerate(tables)]
    with splice.Writer(tmp_path / "out.parquet", layout) as writer:
        for path in paths:
            with pa.OSFile(str(path), "r") as fh:
                writer.add(splice.Source(fh))
        _, _, rows = writer.close()
    assert rows == 14
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert [out.metadata.row_group(i).num_rows for i in range(out.num_row_groups)] == [5, 9]
    assert out.read().equals(pa.concat_tables(tables))
    # Every Arrow read path agrees: by row group, by column, by batches, memory-mapped.
    assert pa.concat_tables([out.read_row_group(i) for i in range(2)]).equals(pa.concat_tables(tables))
    assert out.read(columns=["symbol"]).column(0).equals(pa.concat_tables(tables).column("symbol"))
    batches = pa.Table.from_batches(list(out.iter_batches(batch_size=3)))
    assert batches.equals(pa.concat_tables(tables))
    assert pq.read_table(tmp_path / "out.parquet", memory_map=True).equals(pa.concat_tables(tables))


def test_an_empty_file_is_a_valid_parquet_file_of_the_schema(tmp_path):
    with splice.Writer(tmp_path / "empty.parquet", encoding.layout("tier1")) as writer:
        assert writer.close()[2] == 0
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0 and table.schema.equals(schema_for("tier1"))


def test_files_of_other_writers_options_are_merged_within_the_memory_bound(tmp_path, monkeypatch):
    """Dictionaries and statistics everywhere (pyarrow's defaults, or an earlier daily writer):
    every field is encoded again, a bounded number of row groups at a time."""
    table = dense_table("tier3", 60, seed=2)
    source = write_hours(tmp_path / "old.parquet", table, "tier3", 10, compression="zstd")
    sizes = [pq.ParquetFile(source).metadata.row_group(i).total_byte_size for i in range(6)]
    monkeypatch.setattr(splice, "SIDE_BYTES", sum(sizes[:2]) + 1)
    splice.compact(source, tmp_path / "out.parquet", encoding.layout("tier3"))
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert [out.metadata.row_group(i).num_rows for i in range(out.num_row_groups)] == [20, 20, 20]
    assert out.read().equals(table)


def test_run_bytes_bound_the_size_of_a_merged_row_group(tmp_path, hours, monkeypatch):
    table, source = hours
    one_group = pq.ParquetFile(source).metadata.row_group(0).total_byte_size
    monkeypatch.setattr(splice, "RUN_BYTES", one_group * 3)
    splice.compact(source, tmp_path / "out.parquet", encoding.layout("tier3"))
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert out.num_row_groups > 1
    assert out.read().equals(table)


def test_a_file_of_another_schema_is_refused(tmp_path):
    table = dense_table("tier1", 5).append_column("extra", pa.array(range(5)))
    path = tmp_path / "other.parquet"
    pq.write_table(table, path)
    with pa.OSFile(str(path), "r") as fh:
        source = splice.Source(fh)
        assert not encoding.layout("tier1").accepts(source)
        with (
            splice.Writer(tmp_path / "out.parquet", encoding.layout("tier1")) as writer,
            pytest.raises(splice.SpliceError, match="schema"),
        ):
            writer.add(source)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],  # cut short
        lambda data: data[:-4] + b"PARE",  # an encrypted footer
        lambda data: data[:-8] + (10**9).to_bytes(4, "little") + b"PAR1",  # a footer longer than the file
        lambda data: b"PAR1",
        lambda data: data[:-200] + bytes(192) + data[-8:],  # zeros inside the footer
    ],
)
def test_damaged_files_are_a_splice_error(tmp_path, damage):
    path = tmp_path / "bad.parquet"
    pq.write_table(dense_table("tier1", 20), path)
    path.write_bytes(damage(path.read_bytes()))
    with pa.OSFile(str(path), "r") as fh, pytest.raises(splice.SpliceError):
        source = splice.Source(fh)
        with splice.Writer(tmp_path / "out.parquet", encoding.layout("tier1")) as writer:
            writer.add(source)


def test_a_footer_arrow_reads_differently_is_refused_before_anyone_publishes(tmp_path, hours, monkeypatch):
    _, source = hours
    real_dumps = splice.thrift.dumps

    def claims_one_row_more(fields):
        if splice.FILE_NUM_ROWS in fields and splice.FILE_ROW_GROUPS in fields:
            fields = fields.copy()
            fields.set(splice.FILE_NUM_ROWS, splice.I64, fields.value(splice.FILE_NUM_ROWS) + 1)
        return real_dumps(fields)

    monkeypatch.setattr(splice.thrift, "dumps", claims_one_row_more)
    with pytest.raises(splice.SpliceError, match="read back"):
        splice.compact(source, tmp_path / "out.parquet", encoding.layout("tier3"))


def test_chunks_of_another_codec_are_encoded_again_with_the_layouts(tmp_path):
    """The manifest promises zstd: a snappy file's chunks are not copied as they are."""
    table = dense_table("tier3", 12, seed=4)
    source = write_hours(tmp_path / "snappy.parquet", table, "tier3", 12, compression="snappy")
    splice.compact(source, tmp_path / "out.parquet", encoding.layout("tier3"))
    out = pq.ParquetFile(tmp_path / "out.parquet")
    group = out.metadata.row_group(0)
    assert {group.column(i).compression for i in range(group.num_columns)} == {"ZSTD"}
    assert out.read().equals(table)


@pytest.mark.parametrize(
    "options",
    [
        {"data_page_size": 512, "data_page_version": "1.0"},  # many pages a chunk, v1 pages
        {"data_page_size": 512, "data_page_version": "2.0"},
        {"write_page_index": True, "write_batch_size": 7},  # a page index is not copied, reads fine
        {"use_dictionary": False, "write_statistics": False},  # every field concatenated
        {"store_schema": False},  # no Arrow schema in the source: still the same Parquet schema
    ],
)
@pytest.mark.parametrize("seed", [11, 12])
def test_files_of_many_pages_and_writer_settings_merge_to_the_same_rows(tmp_path, options, seed):
    table = dense_table("tier3", 45, seed=seed)
    writer_options = {**encoding.writer_options("tier3"), **options}
    source = write_hours(tmp_path / "in.parquet", table, "tier3", 8, **writer_options)
    layout = encoding.layout("tier3")
    with pa.OSFile(str(source), "r") as fh:
        assert layout.accepts(splice.Source(fh))
    splice.compact(source, tmp_path / "out.parquet", layout)
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert out.num_row_groups == 1
    assert out.read().equals(table)
    assert pq.read_table(tmp_path / "out.parquet", columns=["spot_prices", "symbol"]).equals(
        table.select(["spot_prices", "symbol"])
    )


# --- Fences: the read-back decodes, the writer version, splicing switched off ---------------------


def test_a_value_count_arrows_footer_parser_accepts_is_caught_by_decoding_before_anyone_publishes(
    tmp_path, hours, monkeypatch
):
    """A merged chunk that claims fewer values than its pages hold: the footer reads back as
    written (rows, row groups, schema, offsets); only decoding the row group shows the loss."""
    _, source = hours
    undercount_merged_chunks(monkeypatch)
    with pytest.raises(splice.SpliceError, match="does not read back"):
        splice.compact(source, tmp_path / "out.parquet", encoding.layout("tier3"))
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == 60  # the footer alone looks right


def test_decoded_later_leaves_the_merged_row_group_to_the_caller_whose_profile_decodes_it(tmp_path, hours, monkeypatch):
    """With ``decoded_later`` the read-back stops at the first row; the caller's full decode (the
    daily build's profile) then finds what the read-back would have."""
    _, source = hours
    undercount_merged_chunks(monkeypatch)
    out = tmp_path / "out.parquet"
    assert splice.compact(source, out, encoding.layout("tier3"), decoded_later=True)[2] == 60
    with pytest.raises((pa.ArrowException, profile.DecodeError)):
        profile.profile_file(out)


def test_a_file_of_another_writer_version_is_refused_for_copying(tmp_path, hours):
    _, source = hours
    layout = encoding.layout("tier3")
    assert layout.created_by.startswith(b"parquet-cpp-arrow version ")
    written_by(source, b"parquet-cpp-arrow version 19.0.1")
    with pa.OSFile(str(source), "r") as fh:
        refusal = layout.refusal(splice.Source(fh))
        assert not layout.accepts(splice.Source(fh))
    assert refusal == f"written by parquet-cpp-arrow version 19.0.1, not by {layout.created_by.decode()}"
    with pytest.raises(splice.SpliceError, match="written by parquet-cpp-arrow version 19.0.1"):
        splice.compact(source, tmp_path / "out.parquet", layout)


def test_a_file_of_another_writer_version_is_encoded_again_by_the_encoding_writer(tmp_path, hours):
    table, source = hours
    written_by(source, b"parquet-mr version 1.12.3 (build abc)")
    encoding.compact(source, tmp_path / "out.parquet", "tier3", spliced=False)
    out = pq.ParquetFile(tmp_path / "out.parquet")
    assert out.metadata.created_by == encoding.layout("tier3").created_by.decode()
    assert out.read().equals(table)


@pytest.mark.parametrize("tier", ["tier1", "tier3"])
def test_the_encoding_writer_makes_the_splice_writers_rows_and_row_groups(tmp_path, tier):
    """``PARQUET_SPLICE=0``: the same file as splicing makes, rows and row groups, by pyarrow alone."""
    tables = [dense_table(tier, rows, seed=rows) for rows in (13, 0, 9)]
    paths = [write_hours(tmp_path / f"{i}.parquet", t, tier, 4) for i, t in enumerate(tables)]
    extra = dense_table(tier, 5, seed=5)
    for spliced in (True, False):
        with encoding.writer(tmp_path / f"out-{spliced}.parquet", tier, spliced=spliced) as writer:
            for path in paths:
                with pa.OSFile(str(path), "r") as fh:
                    writer.add(splice.Source(fh))
            writer.encode(iter([extra.slice(0, 2), extra.slice(2)]))
            digest, size, rows = writer.close()
        data = (tmp_path / f"out-{spliced}.parquet").read_bytes()
        assert (digest, size, rows) == (hashlib.sha256(data).hexdigest(), len(data), 27)
    spliced, encoded = (pq.ParquetFile(tmp_path / f"out-{spliced}.parquet") for spliced in (True, False))
    assert encoded.read().equals(pa.concat_tables([*tables, extra]))
    assert encoded.read().equals(spliced.read())
    groups = [[f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)] for f in (spliced, encoded)]
    assert groups == [[13, 9, 5]] * 2


def test_the_encoding_writer_refuses_a_file_of_another_schema(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(dense_table("tier1", 5).append_column("extra", pa.array(range(5))), path)
    with (
        pa.OSFile(str(path), "r") as fh,
        encoding.writer(tmp_path / "out.parquet", "tier1", spliced=False) as writer,
        pytest.raises(splice.SpliceError, match="schema"),
    ):
        writer.add(splice.Source(fh))


def test_a_chunk_copied_whole_to_a_wrong_offset_is_caught_by_decoding_its_first_row(tmp_path, monkeypatch):
    """Row groups copied whole are decoded to their first row: enough to show every chunk starts
    where the footer says (the rest of a chunk is its source's bytes, in order)."""
    layout = encoding.layout("tier2")
    path = next(p for p, kind in encoding.leaf_columns("tier2") if kind == "DOUBLE" and ".list." not in p)
    sources = [
        write_hours(tmp_path / f"{day}.parquet", dense_table("tier2", 20, seed=day), "tier2", 20) for day in (1, 2)
    ]
    real_copy_whole = splice.Writer._copy_whole

    def two_bytes_early(self, source, chunk):
        moved = real_copy_whole(self, source, chunk)
        if ".".join(p.decode() for p in moved.value(splice.META_PATH)[1]) == path:
            moved.set(splice.META_DATA_PAGE, splice.I64, moved.value(splice.META_DATA_PAGE) - 2)
        return moved

    monkeypatch.setattr(splice.Writer, "_copy_whole", two_bytes_early)
    with splice.Writer(tmp_path / "out.parquet", layout) as writer:
        for source in sources:
            with pa.OSFile(str(source), "r") as fh:
                writer.add(splice.Source(fh))
        with pytest.raises(splice.SpliceError, match="does not read back"):
            writer.close()
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_rows == 40  # the footer alone looks right
