"""Every Parquet file subscribers download reads the same in DuckDB as in pyarrow, whether it was
spliced (``splice``, the default) or encoded by pyarrow alone (``PARQUET_SPLICE=0``), and both ways
publish the same rows.

The files are the real ones: days built from a sample archive (tier 3's hour row groups merged)
and their month-to-date bundle, rebuilt after retention deleted a day's file, so that day is
carried from the old bundle. DuckDB runs in process on the local files with extension autoload
and autoinstall off: its Parquet reader is built in, nothing is downloaded.
"""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from unittest import mock

import duckdb
import pyarrow.parquet as pq
import pytest
import time_machine
from django.conf import settings

from deliveries import build, mtd, retention, sample
from deliveries.models import DailyFile, MonthBundle
from deliveries.parquet import splice
from deliveries.tiers import Tier, schema_for

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
NOV = date(2026, 11, 1)
DAYS = [date(2026, 11, 1), date(2026, 11, 2)]
TODAY = datetime(2026, 11, 3, 0, 30, tzinfo=UTC)


def publish_month(settings, root, spliced):
    """Days 1 and 2 built and bundled; retention keeps one day; the bundle rebuilt (day 1 carried
    from the old bundle). Returns {label: path} of every file a subscriber can get."""
    settings.PARQUET_SPLICE = spliced
    settings.STORAGES = {
        **settings.STORAGES,
        "deliveries": {"BACKEND": "deliveries.storage.LocalDeliveryStorage", "OPTIONS": {"location": root}},
    }
    for day in DAYS:
        sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=3, samples_per_entry=4, flaws=day == DAYS[1])
    with time_machine.travel(TODAY, tick=False):
        assert all(build.build_day(day).outcome == "published" for day in DAYS)
        assert all(r.outcome == "built" for r in mtd.build_months(months=[NOV]))
        retention.apply_retention(keep_days=1)
        results = mtd.build_months(months=[NOV], force=True)
        assert [(r.outcome, r.days_included) for r in results] == [("built", [d.isoformat() for d in DAYS])] * 3
    files = {f"{d.tier} {d.date}": root / d.key for d in DailyFile.objects.published()}
    files.update({f"{b.tier} mtd": root / b.key for b in MonthBundle.objects.all()})
    # Day 2 and the bundle of each tier; day 1 is only in the bundle, carried from the old one.
    assert sorted(files) == sorted(f"{tier} {label}" for tier in Tier.values for label in (DAYS[1], "mtd"))
    return files


def duckdb_table(path):
    connection = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        return connection.read_parquet(str(path)).to_arrow_table()
    finally:
        connection.close()


def assert_duckdb_reads_as_pyarrow(files):
    for label, path in files.items():
        expected = pq.read_table(path)
        assert expected.schema.equals(schema_for(label.split()[0])), label
        read = duckdb_table(path)
        assert read.schema.equals(expected.schema), label
        assert read.equals(expected), label


def test_duckdb_reads_every_tiers_spliced_daily_file_and_bundle_as_pyarrow_does(settings, tmp_path):
    files = publish_month(settings, tmp_path / "published", True)
    assert_duckdb_reads_as_pyarrow(files)
    assert pq.read_table(files["tier3 mtd"]).num_rows > pq.read_table(files[f"tier3 {DAYS[1]}"]).num_rows


def test_duckdbs_parquet_reader_is_built_in_not_downloaded():
    connection = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    rows = connection.execute(
        "SELECT loaded, install_mode FROM duckdb_extensions() WHERE extension_name = 'parquet'"
    ).fetchall()
    assert rows == [(True, "STATICALLY_LINKED")]


def test_splicing_off_publishes_identical_rows_in_the_same_row_groups(settings, tmp_path, monkeypatch):
    spliced = publish_month(settings, tmp_path / "spliced", True)
    DailyFile.objects.all().delete()
    MonthBundle.objects.all().delete()
    # With splicing off, no file is assembled from column chunks: pyarrow writes every one.
    monkeypatch.setattr(splice, "Writer", mock.Mock(side_effect=AssertionError("spliced")))
    encoded = publish_month(settings, tmp_path / "encoded", False)
    assert spliced.keys() == encoded.keys()
    for label in spliced:
        one, other = pq.ParquetFile(spliced[label]), pq.ParquetFile(encoded[label])
        assert one.read().equals(other.read()), label
        assert [one.metadata.row_group(i).num_rows for i in range(one.num_row_groups)] == [
            other.metadata.row_group(i).num_rows for i in range(other.num_row_groups)
        ], label
    for tier in Tier.values:  # a bundle's row group i is its i-th day, both ways
        assert pq.ParquetFile(encoded[f"{tier} mtd"]).num_row_groups == len(DAYS)
    assert_duckdb_reads_as_pyarrow(encoded)


@pytest.mark.parametrize(("value", "expected"), [(None, "True"), ("0", "False")])
def test_parquet_splice_in_the_environment_switches_splicing(tmp_path, value, expected):
    """The way back is one line in the environment file: PARQUET_SPLICE=0 (default on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "PARQUET"))}
    env.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="instrumetriq_site.settings")
    if value is not None:
        env["PARQUET_SPLICE"] = value
    code = "import django; django.setup(); from django.conf import settings; print(settings.PARQUET_SPLICE)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr
