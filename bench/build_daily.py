"""Benchmark: one real-sized archive day through the daily builder.

Prints entries per second and peak RSS for (a) the floor: decompress and ``json.loads`` every
line, nothing else, (b) tier 3 alone, (c) all three tiers, each measured in its own process so
peak RSS is its own. Targets (issue 2): all three tiers in under 8 s, within 2.5x of the floor,
peak RSS under 300 MB. Modes (b) and (c) also time what the build adds to each manifest, the
column profile and row preview read back from the written files (issue 13: at most 10% of the
build); their seconds are part of the build's, as in the real build.

    .venv/bin/python bench/build_daily.py [--entries-per-hour 115] [--samples 740] [--archive DIR]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 23)


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instrumetriq_site.settings")
    import django

    django.setup()


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(mode, archive_root):
    """Runs inside the child process: one mode, one JSON line of figures."""
    setup_django()
    from deliveries import build
    from deliveries.parquet import archive, profile
    from deliveries.tiers import Tier

    day_files = archive.find_day(Path(archive_root), DAY)
    started = time.perf_counter()
    if mode == "floor":
        import gzip

        entries = 0
        for hour in day_files.hours:
            with gzip.open(hour.path, "rb") as fh:
                try:
                    for line in fh:
                        try:
                            json.loads(line)
                            entries += 1
                        except ValueError:
                            pass
                except EOFError:
                    pass
    else:
        tiers = [Tier.TIER3] if mode == "tier3" else list(Tier)
        with tempfile.TemporaryDirectory() as out:
            written = build.write_day_files(day_files, tiers, Path(out))
            entries = written.row_count
            sizes = {str(t): (Path(out) / f"{t}.parquet").stat().st_size for t in tiers}
            profiled = time.perf_counter()
            for tier in tiers:
                profile.manifest_parts(written.paths[tier], preview=True)
            profile_seconds = time.perf_counter() - profiled
    seconds = time.perf_counter() - started
    figures = {"mode": mode, "entries": entries, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}
    if mode != "floor":
        figures["parquet_bytes"] = sizes
        figures["profile_seconds"] = profile_seconds
    print(json.dumps(figures))


def run_child(mode, archive_root):
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--archive", str(archive_root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries-per-hour", type=int, default=115)
    parser.add_argument("--samples", type=int, default=740)
    parser.add_argument("--archive", help="reuse (or keep) the generated archive in this folder")
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
    gz_bytes = sum(p.stat().st_size for p in folder.glob("*.jsonl.gz"))
    print(f"archive day: {len(list(folder.glob('*.jsonl.gz')))} hour files, {gz_bytes / 1e6:.1f} MB gzipped")

    results = {mode: run_child(mode, archive_root) for mode in ("floor", "tier3", "all")}
    floor = results["floor"]["seconds"]
    print()
    print(f"{'mode':<22}{'entries':>9}{'seconds':>10}{'entries/s':>12}{'x floor':>9}{'peak RSS MB':>13}")
    labels = {"floor": "floor (gunzip+loads)", "tier3": "tier 3 alone", "all": "all three tiers"}
    for mode, figures in results.items():
        rate = figures["entries"] / figures["seconds"]
        ratio = figures["seconds"] / floor
        print(
            f"{labels[mode]:<22}{figures['entries']:>9}{figures['seconds']:>10.2f}{rate:>12.0f}"
            f"{ratio:>9.2f}{figures['peak_rss_mb']:>13.0f}"
        )
    all_ = results["all"]
    print()
    print("parquet sizes (MB):", {t: round(b / 1e6, 2) for t, b in all_["parquet_bytes"].items()})
    # what the profile adds to the build without it
    share = {
        mode: results[mode]["profile_seconds"] / (results[mode]["seconds"] - results[mode]["profile_seconds"])
        for mode in ("tier3", "all")
    }
    for mode in ("tier3", "all"):
        figures = results[mode]
        print(
            f"profile + preview ({labels[mode]}): {figures['profile_seconds']:.2f} s added to "
            f"{figures['seconds'] - figures['profile_seconds']:.2f} s of building, {share[mode]:.1%}"
        )
    checks = [
        ("all three tiers under 8 s", all_["seconds"] < 8),
        ("within 2.5x of the floor", all_["seconds"] <= 2.5 * floor),
        ("peak RSS under 300 MB", all_["peak_rss_mb"] < 300),
        ("profile + preview at most 10% of the build", share["all"] <= 0.10),
    ]
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")
    if holder:
        holder.cleanup()


if __name__ == "__main__":
    main()
