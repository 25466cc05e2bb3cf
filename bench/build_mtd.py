"""Benchmark: the tier 3 month-to-date bundle of 3 and of 31 real-sized days.

Each size is built in its own process, so its peak RSS (``ru_maxrss``) is its own. Targets
(issue 3): peak RSS for 31 days within 1.5x of that for 3 days (streaming: memory must not grow
with the number of days), and at least 100 MB of Parquet per second. The manifest's column profile
(issue 13) reads the written bundle back; its seconds are printed apart, and the rate is that of
the bundle without them.

The daily files are synthetic but real-sized, written as the daily builder writes them: the tier 3
schema, ~2,700 rows a day, ~740 spot price samples a row (random-walk prices on a tick, ISO
timestamps every 10 s), written an hour (110 rows) per row group and then merged into one row
group, with the daily builder's writer options. Storage is local, in a temp dir, with its
own SQLite database (VAR_DIR, LOCAL_STORAGE_ROOT).

    .venv/bin/python bench/build_mtd.py [--rows 2700] [--samples 740] [--days-dir DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OCTOBER, NOVEMBER = date(2026, 10, 1), date(2026, 11, 1)
ROW_GROUP_ROWS = 110
SYMBOLS = 275
DAY_FORMAT = "day-group"  # in cached file names: files of an earlier writer are not reused


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instrumetriq_site.settings")
    import django

    django.setup()


def cpu_seconds():
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Synthetic tier 3 days -----------------------------------------------------------------------


def fake_array(type_, n, rng):
    """Plausible values for any Arrow type of the tier 3 schema (dense, a few nulls)."""
    import numpy as np
    import pyarrow as pa

    if pa.types.is_struct(type_):
        children = [fake_array(child.type, n, rng) for child in type_]
        return pa.StructArray.from_arrays(children, fields=list(type_))
    if pa.types.is_list(type_):
        lengths = rng.integers(0, 4, n)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), fake_array(type_.value_type, int(offsets[-1]), rng))
    mask = rng.random(n) < 0.03
    if pa.types.is_floating(type_):
        return pa.array(np.round(rng.normal(50, 20, n), 4), type_, mask=mask)
    if pa.types.is_integer(type_):
        return pa.array(rng.integers(0, 5000, n), type_, mask=mask)
    if pa.types.is_boolean(type_):
        return pa.array(rng.random(n) < 0.5, type_, mask=mask)
    words = np.array(["ok", "insufficient_data", "silent", "v7.2.1", "binance", "lexicon-3", "2026-11-23"])
    return pa.array(words[rng.integers(0, len(words), n)], type_, mask=mask)


def spot_prices(day, rows, samples, rng):
    """list<struct{ask, bid, mid, spread_bps, ts}>: one random walk per row, a sample every 10 s."""
    import numpy as np
    import pyarrow as pa

    count = rows * samples
    base = 10.0 ** rng.uniform(-3, 4.5, rows)  # from sub-cent coins to BTC
    tick = 10.0 ** (np.floor(np.log10(base)) - 4)
    steps = rng.normal(0, 2e-4, (rows, samples)).cumsum(axis=1)
    mid = np.round(base[:, None] * np.exp(steps) / tick[:, None]) * tick[:, None]
    half = np.maximum(np.round(rng.exponential(1.5, (rows, samples))), 1) * tick[:, None] / 2
    bid, ask = mid - half, mid + half
    spread_bps = np.round((ask - bid) / mid * 1e4, 4)
    midnight = np.datetime64(f"{day.isoformat()}T00:00:00", "ms")
    starts = midnight + (np.arange(rows) * (86_400_000 // rows)).astype("timedelta64[ms]")
    stamps = starts[:, None] + (np.arange(samples) * 10_000 + rng.integers(0, 900, samples)).astype("timedelta64[ms]")
    ts = np.char.add(np.datetime_as_string(stamps.ravel(), unit="ms"), "Z")
    ts_array = pa.array(ts, pa.string())
    if isinstance(ts_array, pa.ChunkedArray):  # numpy's fixed-width strings can come back chunked
        ts_array = ts_array.combine_chunks()
    structs = pa.StructArray.from_arrays(
        [pa.array(a.ravel()) for a in (ask, bid, mid, spread_bps)] + [ts_array],
        names=["ask", "bid", "mid", "spread_bps", "ts"],
    )
    offsets = pa.array(np.arange(0, count + 1, samples, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, structs)


def write_day(day, rows, samples, path, seed):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deliveries.tiers import schema_for

    rng = np.random.default_rng(seed)
    schema = schema_for("tier3")
    columns = []
    for field in schema:
        if field.name == "symbol":
            columns.append(pa.array([f"SYM{i % SYMBOLS}" for i in range(rows)], pa.string()))
        elif field.name == "snapshot_ts":
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            step = 86_400 / rows
            columns.append(
                pa.array(
                    [(start + timedelta(seconds=i * step)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for i in range(rows)]
                )
            )
        elif field.name == "spot_prices":
            columns.append(spot_prices(day, rows, samples, rng))
        else:
            columns.append(fake_array(field.type, rows, rng))
    table = pa.Table.from_arrays(columns, schema=schema)
    # As the daily builder writes a day: an hour per row group, then merged into one for the day.
    from deliveries.parquet import encoding, splice

    hours = path.with_suffix(".hours")
    with pq.ParquetWriter(hours, schema, **encoding.writer_options("tier3")) as writer:
        for start in range(0, rows, ROW_GROUP_ROWS):
            writer.write_table(table.slice(start, ROW_GROUP_ROWS))
    splice.compact(hours, path, encoding.layout("tier3"))
    hours.unlink()


def publish(day, path, rows):
    from deliveries import publish as publishing
    from deliveries import storage
    from deliveries.tiers import SCHEMA_VERSION, schema_for

    manifest = {
        "tier": "tier3",
        "kind": "daily",
        "schema_version": SCHEMA_VERSION,
        "date_utc": day.isoformat(),
        "row_count": rows,
        "parquet_sha256": storage.sha256_of(path),
        "parquet_size_bytes": path.stat().st_size,
        "filename": f"instrumetriq_tier3_daily_{day.isoformat()}.parquet",
        "compression": "zstd",
        "columns": schema_for("tier3").names,
        "hours_found": 24,
        "coverage_ratio": 1.0,
        "is_partial": False,
        "skipped_lines": {"total": 0, "by_hour": {}},
        "profile": day_profile(path),
    }
    publishing.upload_daily("tier3", day, path, manifest)  # what the daily build does: upload, then list
    publishing.record_daily("tier3", day, manifest, input_fingerprint=f"bench-{day}")


def day_profile(path):
    """The day's profile, as the daily builder puts it in the manifest (kept beside the file: it
    takes as long to compute as the file to read)."""
    from deliveries.parquet import profile

    cached = path.with_suffix(".profile.json")
    if not cached.exists():
        cached.write_text(json.dumps(profile.profile_file(path)))
    return json.loads(cached.read_text())


# --- Measuring -----------------------------------------------------------------------------------


def measure(days, carried=0):
    """Runs inside the child process: one bundle, one JSON line of figures.

    ``carried``: that many of the days have been deleted by retention, so they come from the
    current bundle (built first, not timed), as on every night from the 8th of a month on.
    """
    setup_django()
    from django.utils import timezone

    from deliveries import mtd
    from deliveries.models import DailyFile, MonthBundle
    from deliveries.outcomes import Outcome
    from deliveries.parquet import profile

    profiling = {"seconds": 0.0}
    profile_file = profile.profile_file

    def timed_profile(source, **kwargs):
        started = time.perf_counter()
        try:
            return profile_file(source, **kwargs)
        finally:
            profiling["seconds"] += time.perf_counter() - started

    profile.profile_file = timed_profile

    month, today = (OCTOBER, NOVEMBER) if days == 31 else (NOVEMBER, NOVEMBER + timedelta(days=days))
    dailies = DailyFile.objects.filter(tier="tier3", date__gte=month, date__lt=today)
    input_bytes = sum(daily.size_bytes for daily in dailies)
    if carried:
        first = mtd.build_month("tier3", month, today=today, force=True)
        if first.outcome != Outcome.BUILT:
            raise SystemExit(f"bundle to carry days from: {first.outcome}: {first.message}")
        old = dailies.order_by("date")[:carried]
        DailyFile.objects.filter(pk__in=[d.pk for d in old]).update(deleted_at=timezone.now())
    baseline = peak_rss_mb()
    cpu_before = cpu_seconds()
    profiling["seconds"] = 0.0
    started = time.perf_counter()
    result = mtd.build_month("tier3", month, today=today, force=True)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_before
    if result.outcome != Outcome.BUILT or len(result.days_included) != days:
        raise SystemExit(f"bundle of {days} days: {result.outcome}: {result.message}")
    if carried:
        DailyFile.objects.filter(tier="tier3").update(deleted_at=None)
    bundle = MonthBundle.objects.get(tier="tier3", month=month)
    figures = {
        "days": days,
        "carried": carried,
        "rows": result.rows,
        "input_bytes": input_bytes,
        "output_bytes": bundle.size_bytes,
        "seconds": seconds,
        "profile_seconds": profiling["seconds"],
        "cpu_seconds": cpu,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
    }
    print(json.dumps(figures))


def run_child(days, env, carried=0):
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(days), "--carried", str(carried)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(rows, samples, days_dir):
    """Runs inside a child process (so the parent's RSS, inherited by later children, stays
    small): migrate the bench database, generate the days if needed, publish them."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    days_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generated = 0
    for index in range(31):
        day = OCTOBER + timedelta(days=index)
        path = days_dir / f"{day.isoformat()}-{rows}x{samples}-{DAY_FORMAT}.parquet"
        if not path.exists():
            write_day(day, rows, samples, path, seed=index)
            generated += 1
        publish(day, path, rows)
        if index < 3:
            publish(NOVEMBER + timedelta(days=index), path, rows)
    sizes = [p.stat().st_size for p in days_dir.glob(f"*-{rows}x{samples}-{DAY_FORMAT}.parquet")]
    print(
        f"{len(sizes)} tier 3 days of {rows} rows x {samples} samples, {sum(sizes) / len(sizes) / 1e6:.1f} MB each "
        f"({generated} generated, {time.perf_counter() - started:.0f} s)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2700, help="rows a day")
    parser.add_argument("--samples", type=int, default=740, help="spot price samples a row")
    parser.add_argument("--days-dir", help="reuse (or keep) the generated daily files in this folder")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--carried", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.carried)
        return
    if args.prepare:
        prepare(args.rows, args.samples, Path(args.days_dir))
        return

    work = tempfile.TemporaryDirectory(prefix="bench-mtd-")
    env = {**os.environ, "VAR_DIR": work.name, "LOCAL_STORAGE_ROOT": str(Path(work.name) / "storage")}
    env.update(STORAGE_BACKEND="local", DEBUG="1")
    env.pop("DATABASE_URL", None)
    days_dir = Path(args.days_dir) if args.days_dir else Path(work.name) / "days"
    command = [sys.executable, __file__, "--prepare", "--rows", str(args.rows), "--samples", str(args.samples)]
    subprocess.run([*command, "--days-dir", str(days_dir)], check=True, env=env)

    load_before = os.getloadavg()[0]
    # October before November: once November has a bundle, October's is closed and not rebuilt.
    month, carried = run_child(31, env), run_child(31, env, carried=24)
    results = [run_child(3, env), month, carried]
    print()
    print(f"{os.cpu_count()} CPUs; load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}")
    print(
        f"{'bundle':<28}{'rows':>8}{'in MB':>8}{'out MB':>8}{'seconds':>9}{'profile s':>11}{'CPU s':>7}"
        f"{'MB/s':>7}{'base RSS MB':>13}{'peak RSS MB':>13}"
    )

    def rate(figures):  # the slower of reading the days and writing the bundle, without the profile
        seconds = figures["seconds"] - figures["profile_seconds"]
        return min(figures["input_bytes"], figures["output_bytes"]) / 1e6 / seconds

    for figures in results:
        label = f"{figures['days']} days" + (
            f", {figures['carried']} from the current bundle" if figures["carried"] else ", all from daily files"
        )
        print(
            f"{label:<28}{figures['rows']:>8}{figures['input_bytes'] / 1e6:>8.0f}"
            f"{figures['output_bytes'] / 1e6:>8.0f}{figures['seconds']:>9.2f}{figures['profile_seconds']:>11.2f}"
            f"{figures['cpu_seconds']:>7.1f}"
            f"{rate(figures):>7.0f}{figures['baseline_rss_mb']:>13.0f}{figures['peak_rss_mb']:>13.0f}"
        )
    small = results[0]
    ratio = max(r["peak_rss_mb"] for r in results[1:]) / small["peak_rss_mb"]
    slowest = min(rate(r) for r in results)
    print()
    print(f"target peak RSS 31 days within 1.5x of 3 days: {'met' if ratio <= 1.5 else 'MISSED'} ({ratio:.2f}x)")
    print(f"target at least 100 MB of Parquet per second: {'met' if slowest >= 100 else 'MISSED'} ({slowest:.0f} MB/s)")
    month = results[1]
    print(
        f"profile of the 31-day bundle: {month['profile_seconds']:.1f} s, "
        f"{month['output_bytes'] / 1e6 / month['profile_seconds']:.0f} MB of Parquet per second"
    )
    work.cleanup()


if __name__ == "__main__":
    main()
