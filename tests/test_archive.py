"""The archive reader tolerates every flaw the spec says real hour files have."""

import gzip
import json
from datetime import date

import pytest

from deliveries import archive

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
