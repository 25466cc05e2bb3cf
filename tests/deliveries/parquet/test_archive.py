"""The archive reader tolerates every flaw the spec says real hour files have."""

import gzip
import hashlib
import json
import tracemalloc
from datetime import date

import pytest

from deliveries.parquet import archive, gzip_lines

DAY = date(2026, 11, 20)


def entry(symbol="AAVE"):
    return {
        "symbol": symbol,
        "snapshot_ts": "2026-11-20T05:00:00.000Z",
        "meta": {"schema_version": 7},
        "spot_raw": {},
        "derived": {},
        "scores": {},
        "flags": {},
    }


def line(obj):
    return json.dumps(obj).encode() + b"\n"


def write_hour(root, hour, payload, day=DAY):
    folder = root / day.strftime("%Y%m%d")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hour}.jsonl.gz"
    path.write_bytes(payload)
    return archive.HourFile(hour, path, len(payload))


def test_blank_non_json_and_non_object_lines_are_skipped_and_counted_by_reason(tmp_path):
    body = line(entry()) + b"\n" + b"{not json\n" + b"[1, 2]\n" + b"\xff\xfe\n" + line(entry("BTC"))
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["AAVE", "BTC"]
    assert result.skipped == {"blank_line": 1, "not_json": 2, "not_an_object": 1}
    assert result.truncated is False


def test_entry_missing_a_required_key_is_skipped(tmp_path):
    pass_through = entry()
    no_meta_version = {**entry(), "meta": {}}
    no_scores = {k: v for k, v in entry().items() if k != "scores"}
    body = line(pass_through) + line(no_meta_version) + line(no_scores)
    result = archive.read_hour(write_hour(tmp_path, "01", gzip.compress(body)))
    assert len(result.entries) == 1
    assert result.skipped == {"missing_required": 2}


def test_several_gzip_members_are_read_in_order(tmp_path):
    payload = gzip.compress(line(entry("A"))) + gzip.compress(line(entry("B")) + line(entry("C")))
    result = archive.read_hour(write_hour(tmp_path, "02", payload))
    assert [e["symbol"] for e in result.entries] == ["A", "B", "C"]
    assert not result.truncated


def test_truncated_last_member_keeps_complete_lines_and_counts_the_cut_one(tmp_path):
    complete = gzip.compress(b"".join(line(entry(f"S{i}")) for i in range(50)))
    in_progress = gzip.compress(b"".join(line(entry(f"T{i}")) for i in range(200)))
    result = archive.read_hour(write_hour(tmp_path, "03", complete + in_progress[: len(in_progress) // 2]))
    assert result.truncated is True
    symbols = [e["symbol"] for e in result.entries]
    assert symbols[:50] == [f"S{i}" for i in range(50)]
    assert all(s.startswith("T") for s in symbols[50:])
    assert result.skipped.get("not_json", 0) <= 1  # at most the one line cut in half


def test_corrupt_bytes_mid_file_stop_that_hour_without_raising(tmp_path):
    payload = gzip.compress(line(entry("A"))) + b"\x1f\x8b\x08\x00garbage-not-deflate" * 3
    result = archive.read_hour(write_hour(tmp_path, "04", payload))
    assert [e["symbol"] for e in result.entries] == ["A"]
    assert result.truncated is True


def test_crlf_line_endings_and_missing_final_newline_are_fine(tmp_path):
    body = json.dumps(entry("A")).encode() + b"\r\n" + json.dumps(entry("B")).encode()
    result = archive.read_hour(write_hour(tmp_path, "05", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["A", "B"]
    assert result.skipped_total == 0


def test_find_day_lists_present_hours_and_missing_ones(tmp_path):
    for hour in ("00", "01", "05"):
        write_hour(tmp_path, hour, gzip.compress(line(entry())))
    (tmp_path / "20261120" / "notes.txt").write_text("ignored")
    day = archive.find_day(tmp_path, DAY)
    assert [h.hour for h in day.hours] == ["00", "01", "05"]
    assert day.hours_found == 3
    assert "02" in day.missing_hours and "05" not in day.missing_hours
    assert len(day.missing_hours) == 21


def test_fingerprint_changes_when_an_hour_file_grows(tmp_path):
    write_hour(tmp_path, "00", gzip.compress(line(entry())))
    before = archive.find_day(tmp_path, DAY).fingerprint
    assert archive.find_day(tmp_path, DAY).fingerprint == before
    write_hour(tmp_path, "00", gzip.compress(line(entry()) + line(entry("B"))))
    assert archive.find_day(tmp_path, DAY).fingerprint != before


def test_missing_day_folder_is_a_clear_error(tmp_path):
    with pytest.raises(archive.ArchiveError, match="no archive folder for 2026-11-20"):
        archive.find_day(tmp_path, DAY)


def test_missing_archive_root_is_a_clear_error(tmp_path):
    with pytest.raises(archive.ArchiveError, match="does not exist"):
        archive.find_day(tmp_path / "nope", DAY)


def test_unreadable_archive_root_is_a_clear_error(tmp_path, monkeypatch):
    # CI runs as root, which reads everything: take the permission answer from os.access instead.
    monkeypatch.setattr(archive.os, "access", lambda path, mode: False)
    with pytest.raises(archive.ArchiveError, match="not readable"):
        archive.find_day(tmp_path, DAY)


def test_available_days_ignores_stray_names(tmp_path):
    for name in ("20261118", "20261119", "2026-11-20", "20261399", "latest"):
        (tmp_path / name).mkdir()
    assert archive.available_days(tmp_path) == [date(2026, 11, 18), date(2026, 11, 19)]


# --- Bad hours: files that are not read at all -----------------------------------------------------


def hour_problems(tmp_path):
    day = archive.find_day(tmp_path, DAY)
    return day, day.bad_hours


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),  # the collector died right after creating it
        (gzip.compress(b"", mtime=0), "empty"),  # gzip, nothing in it
        (gzip.compress(line(entry()), mtime=0)[:10], "empty"),  # cut inside the gzip header: nothing yet
        (line(entry()), "not_gzip"),  # plain JSON lines under the .gz name
        (b"<html>502 Bad Gateway</html>", "not_gzip"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 64, "corrupt_gzip"),
    ],
    ids=["zero_bytes", "empty_gzip", "cut_header", "plain_json", "html", "corrupt_gzip"],  # the same in every process
)
def test_an_empty_or_non_gzip_hour_file_is_a_bad_hour_counted_as_missing(tmp_path, payload, reason):
    write_hour(tmp_path, "00", gzip.compress(line(entry())))
    write_hour(tmp_path, "05", payload)
    day, bad = hour_problems(tmp_path)
    assert bad == {"05": reason}
    assert [h.hour for h in day.hours] == ["00"]  # the bad one is never read
    assert day.hours_found == 1
    assert "05" in day.missing_hours and "00" not in day.missing_hours
    assert [read.hour for read in archive.read_day(day)] == ["00"]


def test_a_readable_start_makes_a_good_hour_whatever_follows(tmp_path):
    """The check stops at the first decompressed byte: a corrupt tail is the reader's to count."""
    write_hour(tmp_path, "00", gzip.compress(line(entry())) + b"\x1f\x8b\x08\x00garbage" * 3)
    write_hour(tmp_path, "01", gzip.compress(b"") + gzip.compress(line(entry("B"))))  # empty first member
    day, bad = hour_problems(tmp_path)
    assert bad == {} and day.hours_found == 2


def test_the_fingerprint_of_a_day_without_bad_hours_is_what_it_always_was(tmp_path):
    """Days published before bad hours existed are not rebuilt for nothing after an upgrade."""
    sizes = {
        hour: len(write_hour(tmp_path, hour, gzip.compress(line(entry(hour)))).path.read_bytes())
        for hour in ("00", "07")
    }
    legacy = hashlib.sha256("".join(f"{hour}:{size}\n" for hour, size in sizes.items()).encode()).hexdigest()
    assert archive.find_day(tmp_path, DAY).fingerprint == legacy


def test_a_bad_hour_replaced_by_a_good_file_of_the_same_size_changes_the_fingerprint(tmp_path):
    good = gzip.compress(line(entry()))
    write_hour(tmp_path, "00", b"x" * len(good))
    before = archive.find_day(tmp_path, DAY).fingerprint
    write_hour(tmp_path, "00", good)
    assert archive.find_day(tmp_path, DAY).fingerprint != before


# --- Duplicates ------------------------------------------------------------------------------------


def test_exact_duplicates_are_skipped_across_hours_and_a_conflicting_one_is_kept(tmp_path):
    a, b, c = entry("A"), entry("B"), entry("C")
    a_rescored = {**a, "scores": {"final": 55.0}}  # same symbol and time, other content
    write_hour(tmp_path, "00", gzip.compress(line(a) + line(b) + line(b)))  # a line repeated
    write_hour(tmp_path, "01", gzip.compress(line(b) + line(a_rescored) + line(c) + line(a_rescored)))
    hours = list(archive.read_day(archive.find_day(tmp_path, DAY)))
    assert [[e["symbol"] for e in h.entries] for h in hours] == [["A", "B"], ["A", "C"]]
    assert [dict(h.skipped) for h in hours] == [{"duplicate": 1}, {"duplicate": 2}]
    assert [h.conflicting_duplicates for h in hours] == [0, 1]
    assert hours[1].entries[0]["scores"] == {"final": 55.0}  # both versions are published


def test_an_hour_file_copied_twice_is_published_once(tmp_path):
    member = gzip.compress(b"".join(line(entry(f"S{i}")) for i in range(5)))
    write_hour(tmp_path, "00", member + member)
    (hour,) = archive.read_day(archive.find_day(tmp_path, DAY))
    assert [e["symbol"] for e in hour.entries] == [f"S{i}" for i in range(5)]
    assert hour.skipped == {"duplicate": 5} and hour.conflicting_duplicates == 0


def test_a_repeat_differing_only_in_its_line_ending_is_an_exact_duplicate(tmp_path):
    text = json.dumps(entry()).encode()
    write_hour(tmp_path, "00", gzip.compress(text + b"\n" + text + b"\r\n" + text + b"  \n"))
    (hour,) = archive.read_day(archive.find_day(tmp_path, DAY))
    assert len(hour.entries) == 1 and hour.skipped == {"duplicate": 2}


def test_seen_entries_tell_new_duplicate_and_conflict_apart():
    seen = archive.SeenEntries()
    a, a2 = json.dumps(entry("A")).encode(), json.dumps({**entry("A"), "flags": {"x": True}}).encode()
    assert seen.check(json.loads(a), a) == archive.SeenEntries.NEW
    assert seen.check(json.loads(a), a) == archive.SeenEntries.DUPLICATE
    assert seen.check(json.loads(a2), a2) == archive.SeenEntries.CONFLICT
    assert seen.check(json.loads(a2), a2) == archive.SeenEntries.DUPLICATE


# --- Required fields of the wrong type ------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"symbol": 42},
        {"symbol": ["AAVE"]},
        {"symbol": ""},
        {"snapshot_ts": 1763596800000},
        {"snapshot_ts": "  "},
        {"meta": [7]},
        {"meta": {"schema_version": "7"}},
        {"meta": {"schema_version": True}},
        {"spot_raw": []},
        {"derived": "n/a"},
        {"scores": 3.5},
        {"flags": [True]},
    ],
)
def test_a_required_field_of_the_wrong_type_skips_the_line_instead_of_publishing_a_null(tmp_path, change):
    write_hour(tmp_path, "00", gzip.compress(line(entry("OK")) + line({**entry("BAD"), **change})))
    result = archive.read_hour(archive.find_day(tmp_path, DAY).hours[0])
    assert [e["symbol"] for e in result.entries] == ["OK"]
    assert result.skipped == {"wrong_type": 1}


def test_missing_is_counted_before_wrong_type_and_empty_objects_are_fine():
    assert archive.entry_problem({**entry(), "symbol": 7, "flags": None}) == "missing_required"
    assert archive.entry_problem({**entry(), "spot_raw": {}, "scores": {}}) is None
    assert archive.parse_line(b"  ") == (None, "blank_line")
    assert archive.parse_line(json.dumps({**entry(), "snapshot_ts": 5}).encode()) == (None, "wrong_type")


# --- Over-long lines -------------------------------------------------------------------------------


def test_a_line_over_max_line_bytes_is_skipped_and_the_lines_around_it_are_read(tmp_path):
    long_entry = {**entry("LONG"), "spot_prices": [{"ts": "x" * 100}] * 50}
    fits = {**entry("FITS"), "pad": "y" * (1000 - len(json.dumps({**entry("FITS"), "pad": ""})))}
    assert len(json.dumps(fits)) == 1000
    body = line(entry("A")) + line(long_entry) + line(fits) + line(entry("B")) + json.dumps(long_entry).encode()
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)), max_line_bytes=1000)
    assert [e["symbol"] for e in result.entries] == ["A", "FITS", "B"]  # exactly the limit is read
    assert result.skipped == {"line_too_long": 2}  # the last one has no newline: still one line


def test_lines_spanning_many_decompressed_chunks_are_read_whole(tmp_path):
    big = {**entry("BIG"), "pad": "z" * (3 * gzip_lines.READ_CHUNK + 123)}
    body = line(entry("A")) + line(big) + line(entry("B"))
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["A", "BIG", "B"]
    assert result.entries[1]["pad"] == big["pad"]


def test_a_50_mb_line_is_streamed_past_without_being_held_in_memory(tmp_path):
    """Its gzip is small (it repeats), so only the reader could make it big: memory stays near the
    8 MiB limit plus one decompressed chunk, never the line's 50 MB."""
    huge = b'{"symbol": "HUGE", "pad": "' + b"w" * (50 * 1024 * 1024) + b'"}\n'
    hour_file = write_hour(tmp_path, "00", gzip.compress(line(entry("A")) + huge + line(entry("B")), 1))
    del huge
    tracemalloc.start()
    try:
        result = archive.read_hour(hour_file)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [e["symbol"] for e in result.entries] == ["A", "B"]
    assert result.skipped == {"line_too_long": 1}
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_line_nested_deeper_than_python_reads_is_skipped_as_not_json(tmp_path):
    deep = b'{"symbol": "A", "zz": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    body = deep + b"\n" + line(entry("BTC"))
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["BTC"]
    assert result.skipped == {"not_json": 1}


def test_an_integer_too_long_for_python_is_kept_as_a_value_no_column_holds(tmp_path):
    """Python refuses integers of more than 4,300 digits; the line is still JSON, so the entry is
    kept: the number is dropped with an unknown field, and nulled (counted) where the schema has it."""
    huge = "1" + "0" * 5000
    unknown = json.dumps(entry("A"))[:-1] + f', "zz": {huge}}}'
    known = json.dumps({**entry("B"), "spot_raw": {"mid": 1.5}})[:-1] + f', "meta": {{"schema_version": {huge}}}}}'
    body = (unknown + "\n" + known + "\n").encode()
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["A"]
    assert isinstance(result.entries[0]["zz"], archive.OutOfRange)
    assert result.skipped == {"wrong_type": 1}  # the schema version, which must be an int


def test_a_key_with_a_lone_surrogate_is_a_wrong_type(tmp_path):
    body = line(entry("A\ud800")) + line(entry("B"))
    result = archive.read_hour(write_hour(tmp_path, "00", gzip.compress(body)))
    assert [e["symbol"] for e in result.entries] == ["B"]
    assert result.skipped == {"wrong_type": 1}
