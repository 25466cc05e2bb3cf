"""The fast reader (Arrow's JSON reader) and the strict one (Python's json) build the same files.

Every day here is built twice, once with ``reader="strict"`` and once with ``reader="fast"``, and
the two results must be equal: the Parquet files byte for byte (so their rows), the manifests
except build time and ``hours_fast``/``hours_strict``, and so ``coerced_values`` and
``skipped_lines``. Each hand-made hour also says which reader must have read it, so that a fast
reader that quietly gave up on everything could not pass, nor one that kept an hour it cannot prove.
"""

import gzip
import json
import random
import sys
from datetime import UTC, date, datetime

import pyarrow.parquet as pq
import pytest
from django.conf import settings
from django.core.management import call_command

from deliveries import build, daily_file, sample
from deliveries.models import DailyFile
from deliveries.outcomes import Outcome
from deliveries.parquet import archive, fastjson
from deliveries.tiers import TIER3_SCHEMA, Tier

DAY = date(2026, 11, 20)
TIERS = list(Tier)
FAST, STRICT = "fast", "strict"


def build_both(tmp_path, day=DAY):
    """Build ``day`` from settings.ARCHIVE_ROOT with each reader; assert the results are the same.

    Returns ``{reader: (WrittenDay, {hour: reader that read it})}``.
    """
    day_files = archive.find_day(settings.ARCHIVE_ROOT, day)
    built_at = datetime(2026, 11, 21, 0, 30, tzinfo=UTC)
    results, files, manifests = {}, {}, {}
    for reader in (STRICT, FAST):
        out = tmp_path / f"out-{reader}"
        out.mkdir()
        written = build.write_day_files(day_files, TIERS, out, reader=reader)
        hours = {
            hour.hour: FAST if hour.batch is not None else STRICT
            for hour in daily_file.read_hours(day_files, reader=reader)
        }
        results[reader] = written, hours
        files[reader] = {tier: written.paths[tier].read_bytes() for tier in TIERS}
        manifests[reader] = {tier: written.manifest(tier, day_files, built_at) for tier in TIERS}
    for tier in TIERS:
        assert files[FAST][tier] == files[STRICT][tier], f"{tier}: the files differ"
        fast, strict = manifests[FAST][tier], manifests[STRICT][tier]
        assert fast["hours_fast"] + fast["hours_strict"] == strict["hours_strict"] == day_files.hours_found
        assert strict["hours_fast"] == 0
        for manifest in (fast, strict):
            del manifest["hours_fast"], manifest["hours_strict"]
        assert fast == strict
    written, _ = results[FAST]
    assert written.hours_fast + written.hours_strict == day_files.hours_found
    return results


# --- Whole sample days -------------------------------------------------------------------------


def test_a_clean_sample_day_is_read_fast_every_hour_and_builds_the_same_files(tmp_path):
    sample.write_day(settings.ARCHIVE_ROOT, DAY, entries_per_hour=6, samples_per_entry=20)
    written, hours = build_both(tmp_path)[FAST]
    assert written.hours_fast == 24 and written.hours_strict == 0
    assert set(hours.values()) == {FAST}


@pytest.mark.parametrize(
    "flaws", [{"flaws": True}, {"archive_flaws": True}, {"flaws": True, "archive_flaws": True}], ids=str
)
def test_a_flawed_sample_day_builds_the_same_files_and_counts_with_only_its_flawed_hours_read_strictly(tmp_path, flaws):
    stats = sample.write_day(settings.ARCHIVE_ROOT, DAY, entries_per_hour=5, samples_per_entry=8, **flaws)
    results = build_both(tmp_path)
    written, hours = results[FAST]
    assert written.row_count == stats.rows
    flawed = {hh for hh, _ in stats.bad_lines} | ({stats.coerced_hour} if stats.coerced_hour else set())
    for hh in flawed:
        assert hours[hh] == STRICT
    assert FAST in hours.values() and written.hours_strict <= len(flawed) + 2  # + the hours repeated later
    strict_written, _ = results[STRICT]
    assert written.coercions == strict_written.coercions
    assert written.skipped_by_reason == strict_written.skipped_by_reason


@pytest.mark.django_db
def test_the_nightly_build_publishes_the_same_files_with_either_setting(tmp_path, local_storage, settings):
    """Through build_day, as cron runs it: ARCHIVE_READER=strict and the default publish the same
    bytes and manifests; the manifest says which reader read how many hours."""
    settings.MIN_HOURS = 20
    stats = sample.write_day(settings.ARCHIVE_ROOT, DAY, entries_per_hour=4, samples_per_entry=6, flaws=True)
    now = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
    published = {}
    for reader in (STRICT, FAST):
        settings.ARCHIVE_READER = reader
        result = build.build_day(DAY, force=True, now=now)
        assert result.outcome == Outcome.PUBLISHED, result.message
        published[reader] = {}
        for row in DailyFile.objects.filter(date=DAY):
            manifest = dict(row.manifest)
            paths = manifest.pop("hours_fast"), manifest.pop("hours_strict")
            manifest.pop("build_ts_utc")
            table = pq.read_table(local_storage / row.key)
            published[reader][row.tier] = (manifest, table, paths)
    for tier in TIERS:
        strict_manifest, strict_table, (strict_fast, strict_strict) = published[STRICT][tier]
        fast_manifest, fast_table, (fast_fast, fast_strict) = published[FAST][tier]
        assert fast_manifest == strict_manifest
        assert fast_table.equals(strict_table) and fast_table.num_rows == stats.rows
        assert (strict_fast, strict_strict) == (0, stats.hours_found)
        assert fast_fast > 0 and fast_fast + fast_strict == stats.hours_found


# --- Hand-made hours, one rule each --------------------------------------------------------------


def make(n, **changes):
    """A realistic entry (the sample generator's), unique by its time, with dotted-path changes."""
    rng = random.Random(n)
    symbol = ("AAVE", "BTC", "ETH", "SOL", "DOGE")[n % 5]
    moment = int(datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp() * 1000) + n * 1000
    entry = sample.make_entry(rng, symbol, DAY, 1, samples_per_entry=4, snapshot_ms=moment)
    for path, value in changes.items():
        put(entry, path, value)
    return entry


def put(entry, dotted, value):
    *parents, last = dotted.split(".")
    for name in parents:
        if not isinstance(entry.get(name), dict) or not entry[name]:
            entry[name] = {}
        entry = entry[name]
    entry[last] = value


def text(entry):
    return json.dumps(entry).encode()


def lines(*items):
    return b"".join((item if isinstance(item, bytes) else text(item)) + b"\n" for item in items)


def clean(first=100):
    return [make(first + i) for i in range(3)]


SILENT_WINDOW = {
    "posts_total": 0,
    "category_counts": {},
    "top_terms": {},
    "author_stats": {},
    "content_stats": {},
    "hybrid_decision_stats": {},
    "sentiment_activity": {"recent_posts_1h": 0, "latest_tweet_at": None},
}
DEEP = 300  # deeper than the fast reader's bound, shallow enough for Python
TOO_DEEP = 3000  # deeper than Python reads


def gz(payload):
    return gzip.compress(payload, mtime=0)


# (id, hour 01's file bytes, the reader that must read hour 01)
CASES = [
    # {} and objects of nulls
    (
        "empty objects at struct positions become null",
        gz(
            lines(
                make(1, **{"twitter_sentiment_windows.last_cycle": SILENT_WINDOW, "futures_raw": {}, "flags": {}}),
                *clean(),
            )
        ),
        FAST,
    ),
    (
        "objects of nulls or of unknown keys stay objects",
        gz(
            lines(
                make(
                    2,
                    diag={"backfill_normalized": True},
                    **{
                        "spot_raw": {"mid": None, "zz": 1},
                        "twitter_sentiment_windows.last_cycle.lexicon_sentiment": {"score": None},
                    },
                ),
                *clean(),
            )
        ),
        FAST,
    ),
    (
        "an empty price sample is a null sample",
        gz(lines(make(3, spot_prices=[{}, None, {"mid": 1, "ts": "t"}]), *clean())),
        FAST,
    ),
    (
        "nested empty objects",
        gz(
            lines(
                make(
                    4,
                    **{
                        "spot_raw": {"zz": {}},
                        "twitter_sentiment_windows.last_cycle.hybrid_decision_stats": {
                            "decision_sources": {},
                            "mean_score": 0.5,
                        },
                    },
                ),
                *clean(),
            )
        ),
        FAST,
    ),
    (
        "an empty object in a list field is coerced",
        gz(lines(make(5, **{"twitter_sentiment_windows.last_cycle.top_terms.fud_fear": {}}), *clean())),
        STRICT,
    ),
    ("an empty object in a number field is coerced", gz(lines(make(6, **{"spot_raw.mid": {}}), *clean())), STRICT),
    ("{} inside a string is text", gz(lines(make(7, **{"twitter_sentiment_meta.key_used": "a{}b"}), *clean())), STRICT),
    (
        "an empty object written with a blank",
        gz(
            lines(
                *clean(),
                text(make(8))
                .replace(b'"norm": {}', b'"norm": { }')
                .replace(b'"futures_raw": {', b'"futures_raw": { }, "x": {'),
            )
        ),
        STRICT,
    ),
    # numbers
    (
        "ints in double fields become doubles",
        gz(lines(make(9, **{"spot_raw.mid": 250, "scores.final": -3}), *clean())),
        FAST,
    ),
    (
        "integral floats in int64 fields become ints",
        gz(lines(make(10, **{"meta.sample_count": 5.0, "futures_raw.age_sec": -0.0}), *clean())),
        FAST,
    ),
    ("a fraction in an int64 field is coerced", gz(lines(make(11, **{"meta.sample_count": 5.5}), *clean())), STRICT),
    (
        "an int a double cannot hold exactly is coerced",
        gz(lines(make(12, **{"spot_raw.mid": 2**53 + 1}), *clean())),
        STRICT,
    ),
    (
        "an int of 2^60 in an int64 field is kept exactly",
        gz(lines(make(13, **{"meta.total_samples": 2**60 + 1}), *clean())),
        STRICT,
    ),
    ("an int beyond int64 is coerced", gz(lines(make(14, **{"meta.total_samples": 2**64}), *clean())), STRICT),
    (
        "an int too long for Python in an unknown field is dropped",
        gz(lines(*clean(), text(make(15)).replace(b'"norm": {}', b'"norm": 1' + b"0" * 5000))),
        FAST,
    ),
    (
        "an int too long for Python in a double field is coerced",
        gz(lines(*clean(), text(make(16)).replace(b'"mid": ', b'"mid": 1' + b"0" * 5000 + b', "x": ', 1))),
        STRICT,
    ),
    (
        "a boolean in a double field is coerced",
        gz(lines(make(17, **{"flags.pair_bonus_applied": True}), *clean())),
        STRICT,
    ),
    ("text in a double field is coerced", gz(lines(make(18, **{"spot_raw.liq_qv_usd": "n/a"}), *clean())), STRICT),
    ("a number in a string field is coerced", gz(lines(make(19, **{"meta.session_id": 12}), *clean())), STRICT),
    ("text in a bool field is coerced", gz(lines(make(20, **{"flags.spot_data_ok": "yes"}), *clean())), STRICT),
    (
        "NaN and Infinity are kept",
        gz(
            lines(
                *clean(),
                text(make(21))
                .replace(b'"mid": ', b'"mid": NaN, "x": ', 1)
                .replace(b'"final": ', b'"final": -Infinity, "y": '),
            )
        ),
        STRICT,
    ),
    (
        "-NaN and Inf are not JSON",
        gz(
            lines(
                *clean(),
                text(make(22)).replace(b'"norm": {}', b'"norm": -NaN'),
                text(make(23)).replace(b'"labels": {}', b'"labels": Inf'),
            )
        ),
        STRICT,
    ),
    # lines
    ("a blank line", gz(lines(*clean(), b"", b"  \r", make(24))), STRICT),
    ("a line that is not JSON", gz(lines(*clean(), text(make(25))[:500])), STRICT),
    (
        "a null first line (it crashes Arrow) and other non-objects",
        gz(lines(b"null", *clean(), b"[1, 2]", b'"text"', b"7")),
        STRICT,
    ),
    ("two objects on one line", gz(lines(clean()[0], text(make(26)) + b" " + text(make(27)), clean()[1])), STRICT),
    ("a line ending in a form feed is not JSON", gz(lines(*clean(), text(make(28)) + b"\x0c")), STRICT),
    (
        "CRLF line endings and leading blanks are JSON blanks",
        gz(b"".join(b" \t" + text(e) + b"\r\n" for e in clean())),
        FAST,
    ),
    ("a byte order mark", gz(b"\xef\xbb\xbf" + lines(*clean())), STRICT),
    (
        "escapes in strings read as Python reads them",
        gz(lines(*clean(), make(50, **{"twitter_sentiment_meta.key_used": 'a"b\\c/\b\f\n\r\t\u00e9\U0001f680\u2028'}))),
        FAST,
    ),
    (
        "escaped key names are the same names",
        gz(lines(*clean(), text(make(29)).replace(b'"symbol"', b'"sym\\u0062ol"'))),
        FAST,
    ),
    (
        "a key given twice",
        gz(lines(*clean(), text(make(30)).replace(b'"symbol": "', b'"symbol": "X", "symbol": "'))),
        STRICT,
    ),
    (
        "unknown fields are dropped",
        gz(
            lines(
                make(31, zz={"a": [1, {"b": None}]}, **{"meta.zz": [[]], "spot_prices": [{"mid": 1, "zz": {}}]}),
                *clean(),
            )
        ),
        FAST,
    ),
    (
        "both futures names, the archive's first",
        gz(
            lines(
                make(32, **{"futures_raw.open_interest_5m_delta_pct": 9.0}),
                make(
                    33,
                    **{"futures_raw.open_interest_1h_delta_pct": None, "futures_raw.open_interest_5m_delta_pct": 7.0},
                ),
                *clean(),
            )
        ),
        FAST,
    ),
    (
        "a line nested deeper than the fast reader's bound",
        gz(lines(*clean(), text(make(34)).replace(b'"norm": {}', b'"norm": ' + b"[" * DEEP + b"]" * DEEP))),
        STRICT,
    ),
    (
        "a line nested deeper than Python reads",
        gz(lines(*clean(), text(make(35)).replace(b'"norm": {}', b'"norm": ' + b"[" * TOO_DEEP + b"]" * TOO_DEEP))),
        STRICT,
    ),
    (
        "bytes that are not UTF-8",
        gz(lines(*clean(), text(make(36)).replace(b'"AAVE', b'"\xff\xfe').replace(b'"BTC', b'"\xff\xfe'))),
        STRICT,
    ),
    (
        "a surrogate as UTF-8 bytes",
        gz(lines(*clean(), text(make(37)).replace(b'"key_used": "', b'"key_used": "\xed\xa0\x80'))),
        STRICT,
    ),
    (
        "a lone surrogate escape in a key and in a value",
        gz(
            lines(
                *clean(),
                text(make(38)).replace(b'"key_used": "', b'"key_used": "\\ud800'),
                text(make(39)).replace(b'"symbol": "', b'"symbol": "\\udc00'),
            )
        ),
        STRICT,
    ),
    ("the escape \\u0000 in a string", gz(lines(*clean(), text(make(40, **{"meta.source": "a\x00b"})))), STRICT),
    # the archive's rules
    ("a cut gzip member at the end", gz(lines(*clean())) + gz(lines(make(41)))[:-30], STRICT),
    ("several gzip members and NUL padding", gz(lines(make(42))) + gz(lines(*clean())) + b"\x00" * 64, FAST),
    ("garbage after the last member", gz(lines(*clean())) + b"garbage", STRICT),
    ("an exact duplicate in the hour", gz(lines(*clean(), clean()[0])), STRICT),
    ("an exact duplicate of hour 00", gz(lines(*clean(), make(0))), STRICT),
    ("a conflicting duplicate", gz(lines(*clean(), make(100, **{"scores.final": 1.5}))), STRICT),
    ("symbol not a string", gz(lines(*clean(), make(43, symbol=7))), STRICT),
    ("a blank symbol", gz(lines(*clean(), make(44, symbol=" \u00a0"))), STRICT),
    ("a section not an object", gz(lines(*clean(), make(45, meta="v7"))), STRICT),
    ("schema_version not an int", gz(lines(*clean(), make(46, **{"meta.schema_version": 7.0}))), STRICT),
    ("a required field missing", gz(lines(*clean(), {k: v for k, v in make(47).items() if k != "flags"})), STRICT),
    ("meta without schema_version", gz(lines(*clean(), make(48, meta={}))), STRICT),
    ("a line over MAX_LINE_BYTES", gz(lines(*clean(), make(49, spot_prices=[{"ts": "x" * 2_000_000}]))), STRICT),
]


def test_every_case_has_its_own_id():
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize(("payload", "reader"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_hand_made_hour_builds_the_same_files_and_is_read_by_the_reader_that_can_prove_it(
    tmp_path, settings, payload, reader
):
    settings.MAX_LINE_BYTES = 1024 * 1024
    folder = settings.ARCHIVE_ROOT / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    (folder / "00.jsonl.gz").write_bytes(gz(lines(make(0), make(1000))))
    (folder / "01.jsonl.gz").write_bytes(payload)
    (folder / "02.jsonl.gz").write_bytes(gz(lines(make(2000))))
    written, hours = build_both(tmp_path)[FAST]
    assert hours == {"00": FAST, "01": reader, "02": FAST}


def test_values_the_contract_nulls_are_counted_the_same_by_both_readers(tmp_path):
    folder = settings.ARCHIVE_ROOT / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    bad = make(
        1,
        **{
            "meta.sample_count": 5.5,
            "spot_raw.mid": True,
            "twitter_sentiment_windows.last_cycle.top_terms.fud_fear": {},
        },
    )
    (folder / "00.jsonl.gz").write_bytes(gz(lines(bad, *clean())))
    strict_written, _ = build_both(tmp_path)[STRICT]
    assert dict(strict_written.coercions) == {
        "meta.sample_count": 1,
        "spot_raw.mid": 1,
        "twitter_sentiment_windows.last_cycle.top_terms.fud_fear": 1,
    }


# --- The fast reader on its own ----------------------------------------------------------------------


def hour_file(tmp_path, hour, payload):
    path = tmp_path / f"{hour}.jsonl.gz"
    path.write_bytes(payload)
    return archive.HourFile(hour, path, len(payload))


def test_a_fallback_leaves_the_days_seen_entries_as_they_were(tmp_path):
    """The hour's lines are remembered only once the fast reader keeps the hour: the strict
    reader, reading it next, must not take the hour's own entries for repeats."""
    seen = archive.SeenEntries()
    first = make(1)
    kept = fastjson.read_hour(hour_file(tmp_path, "00", gz(lines(first))), seen=seen)
    assert kept.rows == 1
    refused = hour_file(tmp_path, "01", gz(lines(make(2), make(3), make(2))))
    with pytest.raises(fastjson.Fallback, match="symbol and snapshot_ts"):
        fastjson.read_hour(refused, seen=seen)
    strict = archive.read_hour(refused, seen=seen)
    assert len(strict.entries) == 2 and strict.skipped == {"duplicate": 1}
    assert seen.verdict(archive.entry_key(first), archive.line_digest(text(first))) == seen.DUPLICATE


def test_the_read_schema_is_tier_3s_with_int64_read_as_double_and_the_archive_names():
    schema = fastjson.read_schema()
    assert schema.names == TIER3_SCHEMA.names
    futures = schema.field("futures_raw").type
    names = [futures.field(i).name for i in range(futures.num_fields)]
    assert "open_interest_1h_delta_pct" in names and "open_interest_5m_delta_pct" in names
    assert names[-1] == fastjson.SENTINEL
    meta = schema.field("meta").type
    assert str(meta.field("sample_count").type) == "double"
    assert str(meta.field("schema_version").type) == "int64"  # must be a JSON integer: 7.0 is refused


def test_a_fast_hour_equals_the_strict_shaping_of_the_same_entries(tmp_path):
    from deliveries.parquet.shaping import Coercions, shape_tier3

    stats = sample.write_day(tmp_path, DAY, entries_per_hour=30, samples_per_entry=12)
    for hour in archive.find_day(tmp_path, DAY).hours[:3]:
        fast = fastjson.read_hour(hour, seen=archive.SeenEntries())
        strict = archive.read_hour(hour, seen=archive.SeenEntries())
        assert fast.batch.equals(shape_tier3(strict.entries, Coercions()))
    assert stats.silent_rows  # silent coins: {} in five places of each window


def test_headroom_is_checked_so_python_could_read_what_the_bound_allows():
    assert fastjson.recursion_headroom() > 2 * fastjson.MAX_DEPTH
    assert sys.getrecursionlimit() > fastjson.MAX_DEPTH


def test_an_unknown_reader_setting_is_refused_by_a_system_check(settings):
    from django.core.management.base import SystemCheckError

    settings.ARCHIVE_READER = "quick"
    with pytest.raises(SystemCheckError, match="instrumetriq.E010"):
        call_command("check")


def test_a_fault_of_the_fast_reader_itself_costs_nothing_but_speed(tmp_path, monkeypatch, caplog):
    sample.write_day(settings.ARCHIVE_ROOT, DAY, entries_per_hour=2, samples_per_entry=3, missing_hours=range(2, 24))
    day_files = archive.find_day(settings.ARCHIVE_ROOT, DAY)
    for reader in (STRICT, FAST):
        (tmp_path / reader).mkdir()
    expected = build.write_day_files(day_files, TIERS, tmp_path / STRICT, reader=STRICT)

    def broken(*args, **kwargs):
        raise TypeError("a bug in the fast reader")

    monkeypatch.setattr(fastjson, "_resolve", broken)
    written = build.write_day_files(day_files, TIERS, tmp_path / FAST, reader=FAST)
    assert (written.hours_fast, written.hours_strict) == (0, 2)
    assert written.paths[Tier.TIER3].read_bytes() == expected.paths[Tier.TIER3].read_bytes()
    assert "the fast reader failed; read strictly" in caplog.text
