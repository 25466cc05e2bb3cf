"""The sample archive must look like the real one (data contract section 1), or the builder's tests prove nothing."""

import gzip
import json
import random
import re
import zlib
from collections import Counter
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from deliveries import sample
from deliveries.tiers import SCHEMAS, SOURCE_NAMES, Tier

DAY = date(2026, 11, 23)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def read_hour(path):
    """A streaming reader, as the builder's: gzip members one after another, tolerant of a cut tail.

    Returns (complete lines, the unterminated tail or None, whether the last member was cut).
    """
    data = path.read_bytes()
    out = bytearray()
    truncated = False
    while data:
        inflater = zlib.decompressobj(wbits=31)
        out += inflater.decompress(data)
        if not inflater.eof:
            truncated = True
            break
        data = inflater.unused_data
    *lines, tail = bytes(out).split(b"\n")
    return lines, (tail or None), truncated


def parse(line):
    """The entry on a line, or None for a bad line."""
    try:
        value = json.loads(line.decode("utf-8"))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def entries(folder):
    """Every entry of a day folder, in archive order, with its hour; bad lines left out."""
    rows = []
    for path in sorted(folder.glob("*.jsonl.gz")):
        lines, _, _ = read_hour(path)
        rows.extend((path.name[:2], entry) for entry in map(parse, lines) if entry is not None)
    return rows


@pytest.fixture(scope="module")
def day_rows(tmp_path_factory):
    """A clean day with enough entries for shares to be meaningful."""
    root = tmp_path_factory.mktemp("archive")
    stats = sample.write_day(root, DAY, seed=3, entries_per_hour=30, samples_per_entry=12)
    return stats, [entry for _, entry in entries(stats.path)]


@pytest.fixture(scope="module")
def flawed(tmp_path_factory):
    root = tmp_path_factory.mktemp("flawed")
    return sample.write_day(root, DAY, seed=5, entries_per_hour=6, samples_per_entry=10, flaws=True)


def silent(entry):
    meta = entry.get("twitter_sentiment_meta")
    return bool(meta and meta["bucket_meta"]["is_silent"])


def windows(rows, want_silent):
    return [
        e["twitter_sentiment_windows"] for e in rows if e.get("twitter_sentiment_windows") and silent(e) == want_silent
    ]


# --- Determinism and layout ------------------------------------------------------------------------


def folder_bytes(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    a = sample.write_day(tmp_path / "a", DAY, seed=1)
    b = sample.write_day(tmp_path / "b", DAY, seed=1)
    c = sample.write_day(tmp_path / "c", DAY, seed=2)
    assert folder_bytes(a.path) == folder_bytes(b.path)
    assert all(folder_bytes(a.path)[name] != data for name, data in folder_bytes(c.path).items())


def test_a_day_is_the_same_alone_or_within_an_archive(tmp_path):
    alone = sample.write_day(tmp_path / "alone", DAY, seed=4)
    sample.write_archive(tmp_path / "many", 3, end=DAY + timedelta(days=1), seed=4)
    assert folder_bytes(alone.path) == folder_bytes(tmp_path / "many" / "20261123")


def test_flawed_output_is_deterministic_too(tmp_path):
    a = sample.write_day(tmp_path / "a", DAY, flaws=True, missing_hours=(4,))
    b = sample.write_day(tmp_path / "b", DAY, flaws=True, missing_hours=(4,))
    assert folder_bytes(a.path) == folder_bytes(b.path)


def test_layout_is_one_folder_per_day_and_24_gzip_hour_files(settings):
    results = sample.write_archive(settings.ARCHIVE_ROOT, 2, end=DAY)
    assert sorted(p.name for p in settings.ARCHIVE_ROOT.iterdir()) == ["20261122", "20261123"]
    for stats in results:
        assert sorted(p.name for p in stats.path.iterdir()) == [f"{h:02d}.jsonl.gz" for h in range(24)]
        for path in stats.path.iterdir():
            head = path.read_bytes()[:10]
            assert head[:2] == b"\x1f\x8b" and head[4:8] == b"\0\0\0\0"  # gzip, mtime 0
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                assert sum(1 for _ in lines) == sample.DEFAULT_ENTRIES_PER_HOUR
        assert stats.rows == 24 * sample.DEFAULT_ENTRIES_PER_HOUR and not stats.is_partial


def test_archive_days_end_at_yesterday_by_default():
    days = sample.archive_days(3)
    assert days[-1] == sample.today_utc() - timedelta(days=1)
    assert days == sorted(days) and len(set(days)) == 3


def test_bad_sizes_are_refused(tmp_path):
    with pytest.raises(ValueError):
        sample.write_day(tmp_path, DAY, entries_per_hour=0)


# --- The shape of an entry -------------------------------------------------------------------------


def test_top_level_keys_are_in_the_spec_order_and_norm_labels_are_empty(day_rows):
    _, rows = day_rows
    for entry in rows:
        keys = list(entry)
        assert keys == [key for key in sample.TOP_KEYS if key in entry]
        assert set(sample.TOP_KEYS) - set(keys) <= {"diag"}
        assert entry["norm"] == {} and entry["labels"] == {}
    assert sum("diag" not in e for e in rows) >= 1  # an optional section now and then absent
    assert list(rows[0]) in (list(sample.TOP_KEYS), [k for k in sample.TOP_KEYS if k != "diag"])


def test_symbol_snapshot_and_meta(day_rows):
    stats, rows = day_rows
    assert 250 <= len(sample.UNIVERSE) <= 280
    assert 200 <= stats.symbols <= 280
    by_hour = Counter()
    for entry in rows:
        assert re.fullmatch(r"[0-9A-Z]+", entry["symbol"]) and not entry["symbol"].endswith("USDC")
        assert ISO_MS.match(entry["snapshot_ts"])
        moment = datetime.strptime(entry["snapshot_ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        assert moment.date() == DAY
        by_hour[moment.hour] += 1
        meta = entry["meta"]
        assert len(meta) == 20 and meta["schema_version"] == meta["archive_schema_version"] == 7
        assert set(meta) == set(_names("meta"))
        if entry["twitter_sentiment_meta"]:
            assert entry["twitter_sentiment_meta"]["bucket_meta"]["coin"] == entry["symbol"] + "USDC"
    assert by_hour == {hour: 30 for hour in range(24)}  # the day is the folder, and the hour the file
    assert [e["snapshot_ts"] for e in rows] == sorted(e["snapshot_ts"] for e in rows)


def _type(path):
    type_ = SCHEMAS[Tier.TIER3]
    for name in path.split("."):
        type_ = (type_.field(name) if isinstance(type_, pa.Schema) else type_.field(name)).type
    return type_


def _names(path):
    return [field.name for field in _type(path)]


@pytest.mark.parametrize(("section", "count"), [("spot_raw", 19), ("derived", 9), ("scores", 13)])
def test_numeric_sections_have_every_field_as_numbers(day_rows, section, count):
    _, rows = day_rows
    for entry in rows:
        assert set(entry[section]) == set(_names(section)) and len(entry[section]) == count
        for name, value in entry[section].items():
            if f"{section}.{name}" not in sample.ALWAYS_NULL:
                assert type(value) in (int, float), (section, name, value)
    values = [v for e in rows for v in e["scores"].values()]
    assert all(0 <= v <= 100 for v in values)
    assert any(type(v) is int for v in values) and any(type(v) is float for v in values)
    assert 50 in values


def test_futures_null_for_about_a_third_and_archive_names_otherwise(day_rows):
    _, rows = day_rows
    share = sum(e["futures_raw"] is None for e in rows) / len(rows)
    assert 0.2 <= share <= 0.45
    archive_names = {
        SOURCE_NAMES.get(f"futures_raw.{name}", (name,))[0] for name in _names("futures_raw")
    }  # the _1h names
    for entry in (e for e in rows if e["futures_raw"]):
        futures = entry["futures_raw"]
        assert set(futures) == archive_names and "open_interest_1h_delta_pct" in futures
        assert type(futures["age_sec"]) is int and isinstance(futures["contract"], str)
        assert futures["contract"] == entry["symbol"] + "USDT"


def test_flags_have_the_seven_bools_and_the_documented_optional_ones_sometimes(day_rows):
    _, rows = day_rows
    always = {"spot_data_ok", "futures_data_ok", "futures_stale", "compression_enabled", "mom_fallback"}
    always |= {"vol_fallback", "spread_fallback"}
    optional = ("twitter_data_ok", "futures_contract_exists", "futures_contract_check_failed")
    for entry in rows:
        flags = entry["flags"]
        assert always <= set(flags) <= always | set(optional) | {"pair_bonus_applied"}
        assert all(type(flags[name]) is bool for name in set(flags) - {"pair_bonus_applied"})
        assert type(flags["pair_bonus_applied"]) in (int, float)
    for name in optional:
        present = sum(name in e["flags"] for e in rows)
        assert 0 < present < len(rows), name
    assert set(_names("flags")) == always | set(optional) | {"pair_bonus_applied"}


def test_diag_with_optional_admission_and_internal_backfill(day_rows):
    _, rows = day_rows
    diags = [e["diag"] for e in rows if "diag" in e]
    assert all(isinstance(d["builder_version"], str) and type(d["build_duration_ms"]) in (int, float) for d in diags)
    for name in ("admission_validated", "admission_validation_ts", "backfill_normalized"):
        assert 0 < sum(name in d for d in diags) < len(diags), name
    delivered = set(_names("diag"))
    assert {key for d in diags for key in d} == delivered | {"backfill_normalized"}


def test_always_null_fields_are_null_everywhere(day_rows):
    _, rows = day_rows
    for path in sample.ALWAYS_NULL:
        first, *rest = path.split(".")
        for entry in rows:
            value = entry.get(first)
            for name in rest:
                value = value.get(name) if isinstance(value, dict) else None
            assert value is None, path
    lasts = [w["last_cycle"]["platform_engagement"] for w in windows(rows, False)]
    assert all("total_impressions" in pe and pe["total_impressions"] is None for pe in lasts)


def leaf_paths(type_, prefix=""):
    """Every field path of an Arrow struct, the way it is spelled in the archive."""
    for field in type_:
        path = f"{prefix}{field.name}"
        if pa.types.is_struct(field.type):
            yield from leaf_paths(field.type, path + ".")
        else:
            yield path


def lookup(obj, path):
    for name in path.split("."):
        if not isinstance(obj, dict) or name not in obj:
            return KeyError
        obj = obj[name]
    return obj


def test_every_delivered_sentiment_field_is_present_in_non_silent_rows(day_rows):
    _, rows = day_rows
    last_cycle_types = [
        SCHEMAS[Tier.TIER2].field("twitter_sentiment_last_cycle").type,
        _type("twitter_sentiment_windows.last_cycle"),
    ]
    for window in windows(rows, False):
        for type_ in last_cycle_types:
            for path in leaf_paths(type_):
                if path in {"platform_engagement.total_views"} or path.startswith("platform_engagement.avg_"):
                    continue  # a silent coin's engagement keys
                assert lookup(window["last_cycle"], path) is not KeyError, path
        for path in leaf_paths(_type("twitter_sentiment_windows.last_2_cycles")):
            assert lookup(window["last_2_cycles"], path) is not KeyError, path
    meta_type = _type("twitter_sentiment_meta")
    for entry in rows:
        if entry["twitter_sentiment_meta"]:
            bucket = entry["twitter_sentiment_meta"]["bucket_meta"]
            assert len(bucket) == 14
            assert all(lookup(entry["twitter_sentiment_meta"], path) is not KeyError for path in leaf_paths(meta_type))


def test_non_silent_windows_carry_the_never_delivered_fields_and_the_spec_types(day_rows):
    _, rows = day_rows
    for window in windows(rows, False):
        for name in ("last_cycle", "last_2_cycles"):
            w = window[name]
            for key in ("tag_counts", "cashtag_counts", "mention_counts", "url_domain_counts"):
                assert isinstance(w[key], dict)
            assert isinstance(w["bucket_min_posts_for_score"], int)
            activity = w["sentiment_activity"]
            assert {"recent_posts_1h", "recent_posts_4h", "recent_posts_24h", "config"} <= set(activity)
            assert activity["is_silent"] is False and isinstance(activity["has_recent_activity"], bool)
            assert w["bucket_status"] in ("ok", "insufficient_data")
            assert w["bucket_has_valid_sentiment"] is (w["bucket_status"] == "ok")
            assert set(w["category_counts"]) == set(_names("twitter_sentiment_windows.last_cycle.category_counts"))
            assert all(type(v) is int for v in w["category_counts"].values())
            assert set(w["top_terms"]) == set(_names("twitter_sentiment_windows.last_cycle.top_terms"))
            assert all(isinstance(t, str) for terms in w["top_terms"].values() for t in terms)
            assert set(w["lexicon_sentiment"]) == {"scale", "score"}
            assert len(w["content_stats"]) == 7
            assert set(w["hybrid_decision_stats"]["decision_sources"]) == {
                "primary_default", "referee_neutral_band", "referee_override", "single_model"
            }  # fmt: skip
        assert set(window["last_cycle"]["author_stats"]) == {
            "distinct_authors_blue", "distinct_authors_total", "distinct_authors_verified",
            "followers_count_max", "followers_count_mean", "followers_count_median", "followers_count_sum",
        }  # fmt: skip
        two = window["last_2_cycles"]
        assert set(two["author_stats"]) == {f"followers_count_{s}" for s in ("max", "mean", "median", "sum")}
        assert two["to_cycle_id"] == two["from_cycle_id"] + 1 and two["window_cycles"] == 2
        assert "total_impressions" not in two["platform_engagement"]


def test_silent_rows_have_the_silent_shape(day_rows):
    _, rows = day_rows
    silent_windows = windows(rows, True)
    assert silent_windows
    for window in silent_windows:
        last = window["last_cycle"]
        assert last["posts_total"] == 0 and last["bucket_status"] == "silent"
        assert last["bucket_has_valid_sentiment"] is False
        for key in ("category_counts", "top_terms", "author_stats", "content_stats", "hybrid_decision_stats"):
            assert last[key] == {}, key
        engagement = last["platform_engagement"]
        assert {"total_views", "avg_likes", "avg_replies", "avg_retweets", "avg_views"} <= set(engagement)
        assert not {"total_quotes", "total_bookmarks", "total_impressions"} & set(engagement)
        activity = last["sentiment_activity"]
        assert not {"is_silent", "has_recent_activity"} & set(activity)
        assert {"recent_posts_1h", "recent_posts_4h", "recent_posts_24h"} <= set(activity)


def test_about_a_quarter_of_rows_are_silent(day_rows):
    stats, rows = day_rows
    share = sum(map(silent, rows)) / len(rows)
    assert 0.15 <= share <= 0.35
    assert stats.silent_rows == sum(map(silent, rows))
    assert stats.futures_null_rows == sum(e["futures_raw"] is None for e in rows)


def test_some_non_silent_rows_have_no_scored_posts_so_no_mean_score(day_rows):
    _, rows = day_rows
    unscored = [w["last_cycle"] for w in windows(rows, False) if w["last_cycle"]["ai_sentiment"]["posts_scored"] == 0]
    assert unscored
    for last in unscored:
        assert last["posts_total"] > 0 and last["hybrid_decision_stats"]["mean_score"] is None
        assert last["bucket_status"] == "insufficient_data"
    scored = [w["last_cycle"] for w in windows(rows, False) if w["last_cycle"]["ai_sentiment"]["posts_scored"]]
    assert all(isinstance(last["hybrid_decision_stats"]["mean_score"], float) for last in scored)


def test_sections_are_sometimes_null(day_rows):
    _, rows = day_rows
    assert any(e["twitter_sentiment_windows"] is None for e in rows)
    assert any(e["twitter_sentiment_windows"] is None and e["twitter_sentiment_meta"] is None for e in rows)


def test_numbers_are_sometimes_ints_and_sometimes_floats(day_rows):
    _, rows = day_rows
    lasts = [w["last_cycle"] for w in windows(rows, False)]
    labels = Counter(type(last["ai_sentiment"]["label_3class_mean"]) for last in lasts)
    assert labels[int] and labels[float]
    assert 1 in [last["ai_sentiment"]["label_3class_mean"] for last in lasts]
    medians = [w["last_2_cycles"]["author_stats"]["followers_count_median"] for w in windows(rows, False)]
    assert any(m % 1 == 0.5 for m in medians)  # a double field
    last_medians = [last["author_stats"]["followers_count_median"] for last in lasts]
    assert all(m % 1 == 0 for m in last_medians)  # an int64 field: never a fraction in a clean day ...
    assert any(type(m) is float for m in last_medians)  # ... but sometimes written 1234.0
    assert Counter(type(e["meta"]["duration_sec"]) for e in rows).keys() <= {int, float}
    for section in ("spot_raw", "derived"):
        kinds = Counter(type(v) for e in rows for v in e[section].values() if v is not None)
        assert kinds[int] and kinds[float], section


def test_spot_prices_are_a_random_walk_every_ten_seconds(day_rows):
    _, rows = day_rows
    for entry in rows:
        prices = entry["spot_prices"]
        assert len(prices) == 12 == entry["meta"]["sample_count"]
        assert all(list(p) == ["ts", "mid", "bid", "ask", "spread_bps"] for p in prices)
        stamps = [datetime.strptime(p["ts"], "%Y-%m-%dT%H:%M:%S.%fZ") for p in prices]
        gaps = {(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)}
        assert all(9 <= gap <= 11 for gap in gaps)
        assert prices[-1]["ts"] == entry["meta"]["last_sample_ts"] < entry["snapshot_ts"]
        assert all(p["bid"] < p["ask"] and p["bid"] <= p["mid"] <= p["ask"] for p in prices)
        assert entry["spot_raw"]["mid"] == prices[-1]["mid"]
    assert len({p["mid"] for e in rows for p in e["spot_prices"]}) > len(rows)  # they move


def test_make_entry_is_a_parsed_line():
    rng = random.Random(1)
    entry = sample.make_entry(rng, "AAVE", DAY, 5, samples_per_entry=3)
    assert entry["symbol"] == "AAVE" and entry["snapshot_ts"].startswith("2026-11-23T05:")
    assert len(entry["spot_prices"]) == 3 and list(entry)[-1] == "spot_prices"
    assert sample.make_entry(random.Random(1), "AAVE", DAY, 5, samples_per_entry=3) == entry


def test_real_sized_entries_are_about_90_kb_mostly_spot_prices(tmp_path):
    stats = sample.write_day(tmp_path, DAY, entries_per_hour=1, samples_per_entry=740)
    per_entry = stats.json_bytes / stats.rows
    assert 80_000 <= per_entry <= 100_000
    prices = sum(len(json.dumps(e["spot_prices"])) for _, e in entries(stats.path))
    assert 0.88 <= prices / stats.json_bytes <= 0.95
    assert 7 <= stats.json_bytes / stats.gz_bytes <= 13  # real days: 250 MB of JSON, 26 MB gzipped


# --- Flaws and partial days ------------------------------------------------------------------------


def test_flaws_miss_one_hour(flawed):
    names = sorted(p.name for p in flawed.path.iterdir())
    assert len(names) == 23 and f"{sample.FLAW_MISSING_HOUR:02d}.jsonl.gz" not in names
    assert flawed.missing_hours == (sample.FLAW_MISSING_HOUR,) and flawed.is_partial


def test_flaws_bad_lines_are_seen_by_a_streaming_reader(flawed):
    seen = []
    for path in sorted(flawed.path.glob("*.jsonl.gz")):
        hh = path.name[:2]
        lines, tail, truncated = read_hour(path)
        good = 0
        for line in lines:
            if not line.strip():
                seen.append((hh, "blank"))
                continue
            try:
                value = json.loads(line)
            except ValueError:
                seen.append((hh, "not_json"))
                continue
            if isinstance(value, dict):
                good += 1
            else:
                seen.append((hh, "not_object"))
        if truncated:
            assert tail and not tail.endswith(b"}")
            seen.append((hh, "truncated"))
        assert good == flawed.rows_by_hour[hh]
        assert flawed.skipped_by_hour[hh] == sum(1 for h, _ in seen if h == hh)
    assert seen == flawed.bad_lines
    assert [kind for _, kind in seen] == ["blank", "not_json", "not_object", "truncated"]
    assert seen[-1][0] == "23"


def test_the_truncated_tail_is_a_second_gzip_member_after_readable_lines(flawed):
    path = flawed.path / "23.jsonl.gz"
    with pytest.raises(EOFError), gzip.open(path) as whole:  # a plain gzip reader fails at the end ...
        whole.read()
    lines, tail, truncated = read_hour(path)  # ... a streaming one keeps every complete line
    assert truncated and len(lines) == flawed.rows_by_hour["23"]
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert tail.startswith(b'{"symbol": ')
    first = zlib.decompressobj(wbits=31)
    first.decompress(path.read_bytes())
    assert first.eof and first.unused_data[:2] == b"\x1f\x8b"  # the first member is complete


def test_flaws_coerce_one_entry(flawed):
    assert flawed.coerced == {path: 1 for path in sample.COERCED_PATHS}
    coerced = [e for hh, e in entries(flawed.path) if e["spot_raw"]["liq_qv_usd"] == "n/a"]
    assert len(coerced) == 1
    median = coerced[0]["twitter_sentiment_windows"]["last_cycle"]["author_stats"]["followers_count_median"]
    assert median % 1 == 0.5
    assert flawed.coerced_hour is not None


def test_flaws_leave_the_other_rows_as_in_a_clean_day(tmp_path, flawed):
    clean = sample.write_day(tmp_path, DAY, seed=5, entries_per_hour=6, samples_per_entry=10)
    for hour in ("00", "03", "22"):
        assert (clean.path / f"{hour}.jsonl.gz").read_bytes() == (flawed.path / f"{hour}.jsonl.gz").read_bytes()


def test_write_archive_puts_flaws_on_the_last_day_only(tmp_path):
    results = sample.write_archive(tmp_path, 3, end=DAY, flaws=True)
    assert [bool(s.bad_lines) for s in results] == [False, False, True]
    assert [s.hours_found for s in results] == [24, 24, 23]


def test_partial_days_have_21_hour_files_chosen_deterministically(tmp_path):
    missing = sample.partial_day_missing_hours(DAY, seed=0)
    assert missing == sample.partial_day_missing_hours(DAY, seed=0) and len(missing) == 3
    results = sample.write_archive(tmp_path, [DAY - timedelta(days=1), DAY], partial_days=[DAY])
    assert [s.hours_found for s in results] == [24, 21]
    assert results[1].missing_hours == missing
    assert len(list(results[1].path.glob("*.jsonl.gz"))) == 21
    assert sorted(results[1].rows_by_hour) == [f"{h:02d}" for h in range(24) if h not in missing]


def test_partial_day_with_flaws_still_has_every_flaw(tmp_path):
    stats = sample.write_day(tmp_path, DAY, flaws=True, missing_hours=(1, 2, 3, 4, 5, 23))
    assert stats.hours_found == 17
    assert [kind for _, kind in stats.bad_lines] == ["blank", "not_json", "not_object", "truncated"]
    assert stats.bad_lines[-1][0] == "22"


@pytest.fixture(scope="module")
def archive_flawed(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive_flawed")
    return sample.write_day(root, DAY, seed=5, entries_per_hour=6, samples_per_entry=10, flaws=True, archive_flaws=True)


def test_archive_flaws_write_an_empty_and_a_plain_text_hour_file(archive_flawed):
    assert archive_flawed.bad_hours == {"06": "empty", "17": "not_gzip"}  # indices 6 and 16; 13 is missing
    assert (archive_flawed.path / "06.jsonl.gz").read_bytes() == b""
    plain = (archive_flawed.path / "17.jsonl.gz").read_bytes()
    assert plain[:2] != b"\x1f\x8b" and all(parse(line) for line in plain.splitlines())
    assert archive_flawed.hours_found == 21 and archive_flawed.is_partial
    assert archive_flawed.rows_by_hour["06"] == archive_flawed.rows_by_hour["17"] == 0


def test_archive_flaws_are_what_a_plain_reader_sees(archive_flawed):
    """Repeats byte for byte (a replayed buffer across hours, a copied hour file), one key with two
    contents, one snapshot_ts that is a number: the stats say exactly that."""
    seen_lines, keys, seen = set(), Counter(), []
    for path in sorted(archive_flawed.path.glob("*.jsonl.gz")):
        hh = path.name[:2]
        if hh in archive_flawed.bad_hours:
            continue
        lines, _, _ = read_hour(path)
        for raw in lines:
            value = parse(raw)
            if value is None:
                continue
            if not isinstance(value.get("snapshot_ts"), str):
                seen.append((hh, "wrong_type"))
            elif raw.strip() in seen_lines:
                seen.append((hh, "duplicate"))
            else:
                seen_lines.add(raw.strip())
                keys[value["symbol"], value["snapshot_ts"]] += 1
    expected = [(hh, kind) for hh, kind in archive_flawed.bad_lines if kind in ("duplicate", "wrong_type")]
    assert seen == expected
    assert Counter(kind for _, kind in seen) == {"duplicate": 2 + 6, "wrong_type": 1}
    assert {hh for hh, kind in seen if kind == "duplicate"} == {"03", "20"}  # replayed into 03, 20 copied
    assert [key for key, n in keys.items() if n > 1] and sum(n - 1 for n in keys.values()) == 1
    assert sum(keys.values()) == archive_flawed.rows


def test_archive_flaws_need_21_hour_files(tmp_path):
    with pytest.raises(ValueError, match="21 hour files"):
        sample.write_day(tmp_path, DAY, archive_flaws=True, missing_hours=(1, 2, 3, 4))


def test_write_archive_puts_archive_flaws_on_the_last_day_only(tmp_path):
    results = sample.write_archive(tmp_path, 2, end=DAY, archive_flaws=True)
    assert [s.bad_hours for s in results] == [{}, {"06": "empty", "16": "not_gzip"}]
    assert [s.conflicting_duplicates for s in results] == [0, 1]


def test_rewriting_a_day_removes_hour_files_it_should_lack(tmp_path):
    sample.write_day(tmp_path, DAY)
    stats = sample.write_day(tmp_path, DAY, missing_hours=(7, 8))
    assert sorted(p.name for p in stats.path.iterdir()) == [f"{h:02d}.jsonl.gz" for h in range(24) if h not in (7, 8)]
