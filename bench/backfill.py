"""Benchmark: a backfill of real-sized days with ``build_daily --jobs 1`` and with ``--jobs 2``.

Generates N real-sized days ending yesterday with the sample generator (or reuses ``--archive``),
then runs ``manage.py build_daily --from FIRST --to LAST --jobs J`` for each J, each against a
fresh SQLite database and local storage, as the operator would. Prints wall seconds of the whole
command and of its daily step (from the BuildRun), and the peak memory of the command's process
tree, sampled every 0.2 s: the sum of RSS (shared library pages counted in every process) and the
sum of PSS (each shared page divided among the processes sharing it, which is what the tree really
uses). Target (issue 14): ``--jobs 2`` at least 1.7x faster than ``--jobs 1``, under 600 MB.

    .venv/bin/python bench/backfill.py [--days 31] [--jobs 1,2] [--archive DIR] [--entries-per-hour 115] [--samples 740]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "instrumetriq_site.settings")
    import django

    django.setup()


def write_one(root, day, entries, samples):
    setup_django()
    from deliveries import sample

    if not (Path(root) / day.strftime("%Y%m%d") / "23.jsonl.gz").exists():
        sample.write_day(root, day, entries_per_hour=entries, samples_per_entry=samples, seed=7)
    return day


def generate(root, days, entries, samples):
    """Missing days written by two processes (a real-sized day takes the generator ~15 s)."""
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(write_one, [root] * len(days), days, [entries] * len(days), [samples] * len(days)))
    return time.perf_counter() - started


def tree(pid):
    """The process and its descendants."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def memory_kb(pid):
    """(RSS, PSS) of one process, in kB."""
    values = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss"):
                    values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values.get("Rss", 0), values.get("Pss", 0)


class TreeMemory(threading.Thread):
    """Samples the memory of a process tree until stopped: the peak sums of RSS and of PSS."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop = pid, threading.Event()
        self.peak_rss = self.peak_pss = self.most_processes = 0
        self.peak_by_pid = {}  # PSS kB: the command's own peak, and each worker's
        self.at_peak = {}  # PSS kB of each process when their sum peaked

    def run(self):
        while not self.stop.is_set():
            pids = tree(self.pid)
            sizes = [memory_kb(pid) for pid in pids]
            self.peak_rss = max(self.peak_rss, sum(r for r, _ in sizes))
            pss = {pid: pss for pid, (_, pss) in zip(pids, sizes, strict=True)}
            for pid, kb in pss.items():
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), kb)
            total = sum(pss.values())
            if total > self.peak_pss:
                self.peak_pss, self.at_peak = total, pss
            self.most_processes = max(self.most_processes, len(pids))
            self.stop.wait(0.2)


def run_backfill(archive, first, last, jobs):
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as work:
        work = Path(work)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "instrumetriq_site.settings",
            "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
            "ARCHIVE_ROOT": str(archive),
            "LOCAL_STORAGE_ROOT": str(work / "storage"),
            "BUILD_SCRATCH_DIR": str(work / "scratch"),
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([*MANAGE, "migrate", "--verbosity", "0"], env=env, check=True)
        command = [*MANAGE, "build_daily", "--from", first.isoformat(), "--to", last.isoformat(), "--jobs", str(jobs)]
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sampler = TreeMemory(process.pid)
        sampler.start()
        output, _ = process.communicate()
        seconds = time.perf_counter() - started
        sampler.stop.set()
        sampler.join()
        if process.returncode != 0:
            raise SystemExit(f"build_daily --jobs {jobs} failed:\n{output}")
        steps = subprocess.run(
            [
                *MANAGE,
                "shell",
                "-c",
                "import json; from deliveries.models import BuildRun; print(json.dumps(BuildRun.objects.latest('pk').steps))",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        daily = next(step["seconds"] for step in json.loads(steps.strip().splitlines()[-1]) if step["name"] == "daily")
    return {
        "jobs": jobs,
        "seconds": seconds,
        "daily_seconds": daily,
        "peak_rss_mb": sampler.peak_rss / 1024,
        "peak_pss_mb": sampler.peak_pss / 1024,
        "processes": sampler.most_processes,
        "at_peak_mb": {
            ("command" if pid == process.pid else pid): round(kb / 1024) for pid, kb in sampler.at_peak.items()
        },
        "command_pss_mb": sampler.peak_by_pid.get(process.pid, 0) / 1024,
        "worker_pss_mb": max((kb for pid, kb in sampler.peak_by_pid.items() if pid != process.pid), default=0) / 1024,
        "summary": output.strip().splitlines()[-1],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--jobs", default="1,2", help="comma-separated --jobs values to compare")
    parser.add_argument("--archive", help="reuse (or keep) the generated archive in this folder")
    parser.add_argument("--entries-per-hour", type=int, default=115)
    parser.add_argument("--samples", type=int, default=740)
    args = parser.parse_args()

    holder = None
    if args.archive:
        archive = Path(args.archive)
        archive.mkdir(parents=True, exist_ok=True)
    else:
        holder = tempfile.TemporaryDirectory(prefix="bench-archive-")
        archive = Path(holder.name)
    last = datetime.now(UTC).date() - timedelta(days=1)
    days = [last - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    seconds = generate(archive, days, args.entries_per_hour, args.samples)
    print(f"archive: {len(days)} real-sized days {days[0]}..{days[-1]} ready in {seconds:.0f} s")
    print(
        f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC')}"
    )
    results = [run_backfill(archive, days[0], days[-1], int(jobs)) for jobs in args.jobs.split(",")]
    print()
    print(f"{'--jobs':>7}{'wall s':>9}{'daily step s':>14}{'s/day':>7}{'peak RSS sum MB':>17}{'peak PSS sum MB':>17}")
    for r in results:
        print(
            f"{r['jobs']:>7}{r['seconds']:>9.1f}{r['daily_seconds']:>14.1f}{r['daily_seconds'] / len(days):>7.2f}"
            f"{r['peak_rss_mb']:>17.0f}{r['peak_pss_mb']:>17.0f}"
        )
    base = results[0]
    for r in results[1:]:
        print(
            f"--jobs {r['jobs']} vs --jobs {base['jobs']}: {base['seconds'] / r['seconds']:.2f}x the whole command, "
            f"{base['daily_seconds'] / r['daily_seconds']:.2f}x the daily step (target >= 1.7x); "
            f"peak PSS {r['peak_pss_mb']:.0f} MB (target < 600 MB)"
        )
    for r in results:
        print(
            f"  --jobs {r['jobs']}: peak PSS of the command {r['command_pss_mb']:.0f} MB, of its largest worker "
            f"{r['worker_pss_mb']:.0f} MB; at the sum's peak {r['at_peak_mb']}; {r['summary']}"
        )
    if holder:
        holder.cleanup()


if __name__ == "__main__":
    main()
