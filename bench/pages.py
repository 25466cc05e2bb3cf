"""Benchmark: the subscriber pages under gunicorn, against a bare Django view.

Prepares a throwaway site (temp VAR_DIR, SQLite, local storage, DEBUG=0): a month of published
tier 1 and tier 3 days with the month bundle (through the real publish and MTD code) and tokens
issued by the real rotation. Starts gunicorn (2 sync workers on 127.0.0.1), then loads, one after
the other in the same run, ``/ping`` (a bare view returning "ok"), the tier 1 and tier 3 pages and
the tier 1 JSON API, each for 10 s at 32 keep-alive connections with a bounded, loopback-only load
generator (threads + http.client). Prints requests per second and p50/p99 latency.

Targets (issues 5 and 12): a tier page and the API at least half the bare view's throughput, p99
under 50 ms, and at most 3 SQL queries per request (counted in-process here, asserted in
tests/deliveries/web/test_page.py): a page served from the cache costs one (the tier's listing
version); the first request of a worker after the listing changed renders it, with three more (live
tokens, month bundle, days).

    .venv/bin/python bench/pages.py [--seconds 10] [--connections 32] [--workers 2]
"""

import argparse
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MAX_SECONDS = 10  # the load generator is bounded, whatever the arguments say
MAX_CONNECTIONS = 32


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_env(var_dir, port):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="instrumetriq_site.settings",
        VAR_DIR=str(var_dir),
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(60),
        TOKEN_SECRET=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SITE_URL=f"http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="0",
        STORAGE_BACKEND="local",
        LOG_LEVEL="WARNING",
    )
    if os.environ.get("BENCH_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    else:
        env.pop("DATABASE_URL", None)
    return env


# --- Preparation (runs in a child process with the bench environment) ---------------------------


def prepare():
    """Publish a month of files for tiers 1 and 3, issue tokens, count the page's queries."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import timedelta

    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from deliveries import mtd
    from deliveries.outcomes import Outcome
    from tests.support.factories import publish_day
    from tests.support.scenarios import rows_for
    from tests.support.tokens import live_tokens
    from tokens import rotation

    today = timezone.now().date()
    first = (today - timedelta(days=1)).replace(day=1)
    days = [today - timedelta(days=back) for back in range(max(9, (today - first).days), 0, -1)]
    for tier in ("tier1", "tier3"):
        for day in days:
            publish_day(tier, day, rows=rows_for(day), hours_found=21 if day == today - timedelta(days=3) else 24)
        result = mtd.build_month(tier, first, today=today)
        assert result.outcome == Outcome.BUILT, result.message
    rotation.init(["tier1", "tier3"])
    tokens = {tier: live_tokens(tier)[0] for tier in ("tier1", "tier3")}

    client = Client()
    queries = {}
    for name, path in (
        ("page tier1", f"/downloads/tier1?t={tokens['tier1']}"),
        ("page tier3", f"/downloads/tier3?t={tokens['tier3']}"),
        ("api tier1", f"/api/downloads/tier1?t={tokens['tier1']}"),
    ):
        cache.clear()  # a worker's first request renders what the next ones reuse
        for label in (f"{name} rendered", name):
            with CaptureQueriesContext(connection) as captured:
                response = client.get(path, HTTP_HOST="127.0.0.1")
            assert response.status_code == 200, (path, response.status_code)
            queries[label] = len(captured.captured_queries)
    print(json.dumps({"tokens": tokens, "queries": queries, "days": len(days)}))


# --- Load generation -----------------------------------------------------------------------------


def load(port, path, seconds, connections):
    """Hammer one path from ``connections`` threads for ``seconds``; latencies in seconds."""
    seconds, connections = min(seconds, MAX_SECONDS), min(connections, MAX_CONNECTIONS)
    deadline = time.perf_counter() + seconds
    latencies, errors = [], []
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine, failed = [], 0
        while True:
            started = time.perf_counter()
            if started >= deadline:
                break
            try:
                conn.request("GET", path, headers={"Host": "127.0.0.1"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed += 1
                if response.will_close:
                    conn.close()  # sync workers close after each response; the next request reconnects
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.append(failed)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies),
        "errors": sum(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def wait_until_up(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping", headers={"Host": "127.0.0.1"})
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        return prepare()

    port = free_port()
    var_dir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    env = site_env(var_dir, port)
    manage = [PYTHON, str(ROOT / "manage.py")]
    try:
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        prepared = subprocess.run(
            [PYTHON, __file__, "--prepare"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
        )
        info = json.loads(prepared.stdout.strip().splitlines()[-1])
        tokens = info["tokens"]
        gunicorn = [
            str(Path(PYTHON).parent / "gunicorn"),
            "instrumetriq_site.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--access-logfile",
            "-" if os.environ.get("BENCH_ACCESS_LOG") else "/dev/null",
            "--access-logformat",
            '%(h)s %(t)s "%(m)s %(U)s" %(s)s %(B)s',
        ]
        server = subprocess.Popen(gunicorn, env=env, cwd=ROOT)
        try:
            wait_until_up(port)
            targets = [
                ("bare view /ping", "/ping"),
                ("tier1 page", f"/downloads/tier1?t={tokens['tier1']}"),
                ("tier3 page", f"/downloads/tier3?t={tokens['tier3']}"),
                ("tier1 API", f"/api/downloads/tier1?t={tokens['tier1']}"),
            ]
            for _, path in targets:  # warm up every worker's imports, templates and connections
                load(port, path, 1, 4)
            results = {name: load(port, path, args.seconds, args.connections) for name, path in targets}
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)

    print(
        f"gunicorn {args.workers} sync workers on 127.0.0.1, {min(args.connections, MAX_CONNECTIONS)} connections, "
        f"{min(args.seconds, MAX_SECONDS):g} s each; {info['days']} days published for tiers 1 and 3"
    )
    print(f"{'':18} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, figures in results.items():
        print(
            f"{name:18} {figures['rps']:8.0f} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {figures['errors']:7d}"
        )
    print("SQL queries per request:", ", ".join(f"{name} {count}" for name, count in info["queries"].items()))

    bare = results["bare view /ping"]["rps"]
    ok = True
    for name, queries in (("tier1 page", "page tier1"), ("tier3 page", "page tier3"), ("tier1 API", "api tier1")):
        figures = results[name]
        ratio = figures["rps"] / bare if bare else 0
        meets = ratio >= 0.5 and figures["p99_ms"] < 50 and info["queries"][queries] <= 3
        ok &= meets
        print(
            f"{name}: {ratio:.0%} of the bare view, p99 {figures['p99_ms']:.1f} ms: {'meets' if meets else 'MISSES'} the target"
        )
    print(json.dumps({"results": results, "queries": info["queries"]}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
