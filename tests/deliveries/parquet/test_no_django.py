"""deliveries/parquet/ is the Parquet engine: no database, no settings (like healthchecks' hc/lib).
The jobs decide and pass in; the engine only knows the contract (deliveries.tiers)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import deliveries.parquet

ENGINE = Path(deliveries.parquet.__file__).resolve().parent
MODULES = sorted(path for path in ENGINE.glob("*.py"))


def imported_modules(path):
    """(module, level) of every import in a file, at any depth (function-level imports included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def test_the_engine_imports_nothing_of_django_or_the_jobs_but_the_contract():
    assert {path.stem for path in MODULES} >= {"archive", "shaping", "encoding", "splice", "thrift"}
    for path in MODULES:
        for module, level in imported_modules(path):
            where = f"{path.name} imports {'.' * level}{module}"
            assert not module.startswith(("django", "deliveries", "tokens", "instrumetriq_site")), where
            assert level <= 1 or (level == 2 and module == "tiers"), where


def test_the_engine_writes_and_reads_back_a_tier_file_without_django_settings(tmp_path):
    script = f"""
import pyarrow as pa
from django.conf import settings
from deliveries.parquet import archive, encoding, gzip_lines, readback, shaping, splice, thrift
from deliveries.tiers import schema_for

table = pa.Table.from_pylist([{{"symbol": "BTC", "snapshot_ts": "2026-11-23T00:00:00.000Z"}}], schema=schema_for("tier1"))
with encoding.writer({str(tmp_path / "day.parquet")!r}, "tier1") as writer:
    writer.encode([table])
    sha256, size, rows = writer.close()
assert rows == 1 and size > 0 and len(sha256) == 64
assert not settings.configured
print("ok")
"""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ENGINE.parent.parent, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
