"""make_sample_archive only parses, calls deliveries.sample and prints: arguments, errors, output."""

import gzip
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from deliveries import sample


def run(*args):
    out = StringIO()
    call_command("make_sample_archive", *args, stdout=out)
    return out.getvalue().splitlines()


def hour_files(folder):
    return sorted(p.name for p in folder.glob("*.jsonl.gz"))


def test_writes_days_to_the_archive_root_with_progress_and_a_summary(settings):
    lines = run("--days", "3", "--end", "2026-11-23")
    assert sorted(p.name for p in settings.ARCHIVE_ROOT.iterdir()) == ["20261121", "20261122", "20261123"]
    for folder in settings.ARCHIVE_ROOT.iterdir():
        assert len(hour_files(folder)) == 24
    assert len(lines) == 4
    assert [line.split()[0] for line in lines[:3]] == ["2026-11-21", "2026-11-22", "2026-11-23"]
    assert "24 hours" in lines[0] and f"{24 * sample.DEFAULT_ENTRIES_PER_HOUR} entries" in lines[0]
    assert lines[-1].startswith("Wrote 3 days (0 partial) to ")
    assert f"{3 * 24 * sample.DEFAULT_ENTRIES_PER_HOUR} entries" in lines[-1]


def test_the_default_end_is_yesterday_utc(settings):
    run("--days", "1")
    yesterday = sample.today_utc() - timedelta(days=1)
    assert [p.name for p in settings.ARCHIVE_ROOT.iterdir()] == [yesterday.strftime("%Y%m%d")]


def test_same_seed_same_bytes_through_the_command(tmp_path):
    run("--days", "1", "--end", "2026-11-23", "--seed", "9", "--root", str(tmp_path / "a"))
    run("--days", "1", "--end", "2026-11-23", "--seed", "9", "--root", str(tmp_path / "b"))
    run("--days", "1", "--end", "2026-11-23", "--seed", "8", "--root", str(tmp_path / "c"))
    a, b, c = (tmp_path / name / "20261123" / "00.jsonl.gz" for name in "abc")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_sizes_are_passed_through(settings):
    lines = run("--days", "1", "--end", "2026-11-23", "--entries-per-hour", "2", "--samples-per-entry", "5")
    assert "48 entries" in lines[0]
    with gzip.open(settings.ARCHIVE_ROOT / "20261123" / "00.jsonl.gz", "rt") as lines:
        entries = [json.loads(line) for line in lines]
    assert len(entries) == 2 and all(len(e["spot_prices"]) == 5 for e in entries)


def test_flaws_go_on_the_last_day_and_are_reported(settings):
    lines = run("--days", "2", "--end", "2026-11-23", "--flaws")
    assert len(hour_files(settings.ARCHIVE_ROOT / "20261122")) == 24
    assert len(hour_files(settings.ARCHIVE_ROOT / "20261123")) == 23
    assert "flaws" not in lines[0]
    assert "missing 13" in lines[1]
    assert "blank" in lines[1] and "not_json" in lines[1] and "not_object" in lines[1] and "truncated" in lines[1]
    assert "flaws on 2026-11-23" in lines[-1]


def test_archive_flaws_go_on_the_last_day_and_are_reported(settings):
    lines = run("--days", "2", "--end", "2026-11-23", "--archive-flaws")
    assert len(hour_files(settings.ARCHIVE_ROOT / "20261123")) == 24  # written, two of them bad
    assert "flaws" not in lines[0]
    assert "06:empty" in lines[1] and "16:not_gzip" in lines[1] and "03:duplicate" in lines[1]
    assert "wrong_type" in lines[1]
    assert "flaws on 2026-11-23" in lines[-1] and "48 hour files" in lines[-1]


def test_archive_flaws_with_flaws_on_a_partial_last_day_are_refused(settings):
    with pytest.raises(CommandError, match="21 hour files"):
        run("--days", "1", "--end", "2026-11-23", "--archive-flaws", "--flaws", "--partial-day", "2026-11-23")
    assert not any(settings.ARCHIVE_ROOT.iterdir())


def test_partial_day_is_repeatable_and_has_21_hour_files(settings):
    run("--days", "3", "--end", "2026-11-23", "--partial-day", "2026-11-21", "--partial-day", "20261123")
    counts = {p.name: len(hour_files(p)) for p in settings.ARCHIVE_ROOT.iterdir()}
    assert counts == {"20261121": 21, "20261122": 24, "20261123": 21}


def test_root_overrides_the_setting(settings, tmp_path):
    root = tmp_path / "elsewhere"
    lines = run("--days", "1", "--end", "2026-11-23", "--root", str(root))
    assert len(hour_files(root / "20261123")) == 24
    assert not any(settings.ARCHIVE_ROOT.iterdir())
    assert str(root) in lines[-1]


def test_dry_run_writes_nothing_and_says_what_it_would_do(settings):
    lines = run("--days", "2", "--end", "2026-11-23", "--dry-run", "--flaws", "--partial-day", "2026-11-22")
    assert not any(settings.ARCHIVE_ROOT.iterdir())
    assert lines[0].startswith("2026-11-22  21 hours")
    assert lines[1].startswith("2026-11-23  23 hours") and "missing 13" in lines[1]
    assert "Dry run" in lines[-1] and "nothing written" in lines[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "--days must be at least 1"),
        (["--days", "-3"], "--days must be at least 1"),
        (["--days", "1", "--end", "23/11/2026"], "not a date"),
        (["--days", "1", "--entries-per-hour", "0"], "at least 1"),
        (["--days", "1", "--samples-per-entry", "0"], "at least 1"),
        (["--days", "2", "--end", "2026-11-23", "--partial-day", "2026-11-01"], "outside"),
    ],
)
def test_bad_arguments_are_command_errors(settings, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not any(settings.ARCHIVE_ROOT.iterdir())


@pytest.mark.parametrize("offset", [0, 1, 30])
def test_today_and_future_ends_are_refused(settings, offset):
    end = sample.today_utc() + timedelta(days=offset)
    with pytest.raises(CommandError, match="not before today"):
        run("--days", "1", "--end", end.isoformat())
    assert not any(settings.ARCHIVE_ROOT.iterdir())


def test_days_is_required():
    with pytest.raises(CommandError):
        run()
