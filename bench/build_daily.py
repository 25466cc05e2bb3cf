"""Benchmark: one real-sized archive day, the daily builder against what it is measured by.

Each mode runs in its own process (so its peak RSS is its own), one after the other, and the
figures are printed side by side:

- ``read_json``: ``pyarrow.json.read_json`` alone on the same 24 hour files (gzip stream, default
  read options, ``explicit_schema=`` the fast reader's read schema, unknown fields ignored): the
  floor of reading with Arrow, nothing checked, nothing written;
- ``floor``: gunzip and ``json.loads`` of every line, nothing else;
- ``original``: the original system's tier 3 builder, as it is described: ``json.loads`` of each
  line, the entries cleaned up as dicts (``{}`` to None, the never-delivered fields dropped, the
  ``_1h`` futures names renamed), Arrow's inference over the day (``pa.Table.from_pylist``), one
  table, written once; tier 3 only;
- ``strict``: the daily builder, three tiers, every hour read by Python's json (``ARCHIVE_READER=strict``);
- ``fast``: the daily builder, three tiers, as it runs by default (Arrow's JSON reader, each hour it
  cannot prove right read strictly).

``--precision full`` first rewrites the generated day with every fractional double at full
precision (17 significant digits, as computed values come out of a program; the sample generator
rounds them to 4-6 digits). Python's ``json`` parses such numbers about half as fast, Arrow's
reader does not slow down: which of the two the real archive looks like moves the ratios a lot.

Targets (issue 14): ``fast`` within 1.5x of ``read_json``, at least 4x faster than ``original``,
peak RSS no higher than the builder's before the fast reader (about 280 MB). Figures are wall
seconds and the process's CPU seconds (all threads); on a shared machine compare runs made together.

    .venv/bin/python bench/build_daily.py [--entries-per-hour 115] [--samples 740] [--archive DIR] [--repeat 1]
                                          [--precision sample|full] [--modes read_json,floor,original,strict,fast]
"""

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 23)
MODES = ("read_json", "floor", "original", "strict", "fast")
LABELS = {
    "read_json": "pyarrow.json.read_json alone",
    "floor": "gunzip + json.loads",
    "original": "original tier 3 builder",
    "strict": "builder, strict reader",
    "fast": "builder, fast reader",
}
NEVER_DELIVERED = ("norm", "labels")
RENAMED = {
    "open_interest_1h_delta_pct": "open_interest_5m_delta_pct",
    "top_long_short_accounts_1h": "top_long_short_accounts_5m",
    "top_long_short_positions_1h": "top_long_short_positions_5m",
}


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instrumetriq_site.settings")
    import django

    django.setup()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def lines_of(path):
    """Every complete line of an hour file (the reader's flaws are not what is measured here)."""
    with gzip.open(path, "rb") as fh:
        try:
            yield from fh
        except EOFError:
            return


def cleaned(value):
    """The original builder's clean-up of a parsed entry: ``{}`` is None, all the way down."""
    if type(value) is dict:
        return {key: cleaned(item) for key, item in value.items()} if value else None
    if type(value) is list:
        return [cleaned(item) for item in value]
    return value


def original_builder(day_files, out):
    """The original system's tier 3 builder: dicts, Arrow's inference, one table, written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = []
    for hour in day_files.hours:
        for raw in lines_of(hour.path):
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if type(entry) is not dict or not entry.get("symbol"):
                continue
            for name in NEVER_DELIVERED:
                entry.pop(name, None)
            futures = entry.get("futures_raw")
            if futures:
                for old, new in RENAMED.items():
                    if old in futures:
                        futures[new] = futures.pop(old)
            entries.append(cleaned(entry))
    table = pa.Table.from_pylist(entries)
    pq.write_table(table, out / "tier3.parquet", compression="zstd")
    return table.num_rows, {"tier3": (out / "tier3.parquet").stat().st_size}


def full_precision(source, target):
    """The day's hour files again, every fractional double given 17 significant digits."""
    import random

    rng = random.Random(14)

    def noisy(value):
        if type(value) is float and not value.is_integer():
            return value * (1 + rng.uniform(-1e-9, 1e-9))
        if type(value) is dict:
            return {key: noisy(item) for key, item in value.items()}
        if type(value) is list:
            return [noisy(item) for item in value]
        return value

    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.jsonl.gz")):
        lines = [json.dumps(noisy(json.loads(raw))).encode() + b"\n" for raw in lines_of(path)]
        (target / path.name).write_bytes(gzip.compress(b"".join(lines), compresslevel=6, mtime=0))


def measure(mode, archive_root):
    """Runs inside the child process: one mode, one JSON line of figures."""
    setup_django()
    import pyarrow as pa
    import pyarrow.json as pj

    from deliveries import build
    from deliveries.parquet import archive, fastjson, profile
    from deliveries.tiers import Tier

    day_files = archive.find_day(Path(archive_root), DAY)
    sizes = {}
    wall, cpu = time.perf_counter(), time.process_time()
    if mode == "read_json":
        options = pj.ParseOptions(explicit_schema=fastjson.read_schema(), unexpected_field_behavior="ignore")
        entries = sum(
            pj.read_json(pa.input_stream(hour.path, compression="gzip"), parse_options=options).num_rows
            for hour in day_files.hours
        )
    elif mode == "floor":
        entries = 0
        for hour in day_files.hours:
            for raw in lines_of(hour.path):
                try:
                    json.loads(raw)
                    entries += 1
                except ValueError:
                    pass
    elif mode == "original":
        with tempfile.TemporaryDirectory() as out:
            entries, sizes = original_builder(day_files, Path(out))
    else:
        profiling = []  # what each manifest adds (issue 13): profile and preview, wherever the build asks
        manifest_parts = profile.manifest_parts

        def timed_manifest_parts(*args, **kwargs):
            started = time.perf_counter()
            try:
                return manifest_parts(*args, **kwargs)
            finally:
                profiling.append(time.perf_counter() - started)

        profile.manifest_parts = timed_manifest_parts
        with tempfile.TemporaryDirectory() as out:
            # as a day is built: tier 3's profile is taken after its merge (the merge's read-back),
            # the other tiers' by ``profile_files``
            written = build.write_day_files(day_files, list(Tier), Path(out), reader=mode).profile_files()
            entries = written.row_count
            sizes = {str(t): path.stat().st_size for t, path in written.paths.items()}
            sizes["hours_fast"], sizes["hours_strict"] = written.hours_fast, written.hours_strict
            sizes["profile_seconds"] = sum(profiling)
    figures = {
        "mode": mode,
        "entries": entries,
        "seconds": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak_rss_mb": peak_rss_mb(),
        "sizes": sizes,
    }
    print(json.dumps(figures))


def run_child(mode, archive_root):
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--archive", str(archive_root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine():
    load = os.getloadavg()[0]
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        model = "?"
    return f"{os.cpu_count()} CPUs ({model}), load average {load:.1f} when the runs began"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries-per-hour", type=int, default=115)
    parser.add_argument("--samples", type=int, default=740)
    parser.add_argument("--archive", help="reuse (or keep) the generated archive in this folder")
    parser.add_argument("--repeat", type=int, default=1, help="run the modes this many times, interleaved")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--precision", choices=("sample", "full"), default="sample", help="see the docstring")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child, args.archive)
        return

    holder = None
    if args.archive:
        archive_root = Path(args.archive)
    else:
        holder = tempfile.TemporaryDirectory(prefix="bench-archive-")
        archive_root = Path(holder.name)
    folder = archive_root / DAY.strftime("%Y%m%d")
    if not folder.exists():
        setup_django()
        from deliveries import sample

        print(f"generating a real-sized day: {args.entries_per_hour} entries/hour, {args.samples} samples/entry ...")
        started = time.perf_counter()
        sample.write_day(
            archive_root, DAY, entries_per_hour=args.entries_per_hour, samples_per_entry=args.samples, seed=7
        )
        print(f"  generated in {time.perf_counter() - started:.1f} s")
    if args.precision == "full":
        archive_root = archive_root / "full-precision"
        if not (archive_root / folder.name).exists():
            print("rewriting the day with full-precision doubles ...")
            full_precision(folder, archive_root / folder.name)
        folder = archive_root / folder.name
    gz_bytes = sum(p.stat().st_size for p in folder.glob("*.jsonl.gz"))
    json_bytes = sum(len(raw) for path in folder.glob("*.jsonl.gz") for raw in lines_of(path))
    print(
        f"archive day: {len(list(folder.glob('*.jsonl.gz')))} hour files, {json_bytes / 1e6:.0f} MB of JSON, "
        f"{gz_bytes / 1e6:.1f} MB gzipped, doubles as {'the sample generator writes them' if args.precision == 'sample' else 'full precision'}"
    )
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")

    modes = [m for m in args.modes.split(",") if m]
    runs = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(run_child(mode, archive_root))
    print()
    print(f"{'mode':<32}{'entries':>9}{'wall s':>15}{'CPU s':>15}{'peak RSS MB':>15}")
    for mode, figures in runs.items():
        print(
            f"{LABELS[mode]:<32}{figures[0]['entries']:>9}{spread(figures, 'seconds'):>15}"
            f"{spread(figures, 'cpu'):>15}{spread(figures, 'peak_rss_mb', 0):>15}"
        )
    if "fast" in runs:
        fast = runs["fast"]
        sizes = fast[0]["sizes"]
        print()
        print(f"fast reader: {sizes['hours_fast']} hours fast, {sizes['hours_strict']} strict")
        print("parquet sizes (MB):", {t: round(b / 1e6, 2) for t, b in sizes.items() if t.startswith("tier")})
        for other, label, target in (
            ("read_json", "fast / read_json alone", "target <= 1.5x"),
            ("original", "original / fast", "target >= 4x"),
            ("strict", "strict / fast", "the reader alone"),
        ):
            if other not in runs:
                continue
            ratios = ratio(runs[other], fast, invert=other == "read_json")
            print(f"{label:<26} wall {ratios['seconds']}, CPU {ratios['cpu']}  ({target})")
        rss = max(f["peak_rss_mb"] for f in fast)
        print(f"peak RSS of the fast build: {rss:.0f} MB (target: no higher than about 280 MB)")
        for figures in fast:
            added = figures["sizes"]["profile_seconds"]
            print(
                f"profile + preview: {added:.2f} s added to {figures['seconds'] - added:.2f} s of building, "
                f"{added / (figures['seconds'] - added):.1%} (target: at most 10%)"
            )
    if holder:
        holder.cleanup()


def spread(figures, key, digits=2):
    values = sorted(f[key] for f in figures)
    low, high = values[0], values[-1]
    return (
        f"{low:.{digits}f}"
        if len(values) == 1 or f"{low:.{digits}f}" == f"{high:.{digits}f}"
        else (f"{low:.{digits}f}-{high:.{digits}f}")
    )


def ratio(others, fast, *, invert):
    """Pairwise ratios of runs made one after the other (the same moment's load): low-high."""
    out = {}
    for key in ("seconds", "cpu"):
        pairs = [(f[key] / o[key]) if invert else (o[key] / f[key]) for o, f in zip(others, fast, strict=True)]
        low, high = min(pairs), max(pairs)
        out[key] = f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"
    return out


if __name__ == "__main__":
    main()
