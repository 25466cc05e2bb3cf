"""The download index file: a copy of what the database offers, for static consumers."""

import json
from datetime import UTC, date, datetime

import pytest

from deliveries import index, mtd, retention, storage
from deliveries.models import MonthBundle
from tests.support.clock import frozen_clock_at
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 12, 1, 5, tzinfo=UTC)


frozen_clock = frozen_clock_at(NOW)


def publish_month_of_days(tier, first_day, last_day):
    dailies = [
        publish_day(tier, date(2026, 11, d), rows=d, hours_found=21 if d == 9 else 24)
        for d in range(first_day, last_day + 1)
    ]
    mtd.build_month(tier, date(2026, 11, 1))
    return dailies


def test_index_lists_the_mtd_entry_and_the_retained_days_newest_first():
    dailies = publish_month_of_days("tier2", 1, 11)
    retention.apply_retention()
    data = index.build_index("tier2")
    assert data["tier"] == "tier2"
    assert data["generated_at"] == "2026-11-12T01:05:00Z"
    assert data["schema_version"] == "v7"
    assert [entry["date"] for entry in data["daily"]] == [f"2026-11-{d:02d}" for d in range(11, 4, -1)]
    newest = data["daily"][0]
    assert newest == {
        "date": "2026-11-11",
        "key": f"tier2/daily/2026-11-11/{dailies[-1].sha256[:16]}/data.parquet",
        "manifest_key": f"tier2/daily/2026-11-11/{dailies[-1].sha256[:16]}/manifest.json",
        "filename": "instrumetriq_tier2_daily_2026-11-11.parquet",
        "size_bytes": dailies[-1].size_bytes,
        "rows": 11,
        "sha256": dailies[-1].sha256,
        "is_partial": False,
        "published_at": "2026-11-12T01:05:00Z",
    }
    assert [e["is_partial"] for e in data["daily"] if e["date"] == "2026-11-09"] == [True]
    bundle = MonthBundle.objects.get()
    assert data["mtd"]["month"] == "2026-11"
    assert data["mtd"]["key"] == f"tier2/mtd/2026-11/{bundle.sha256[:16]}/data.parquet"
    assert data["mtd"]["filename"] == "instrumetriq_tier2_mtd_2026-11.parquet"
    assert (data["mtd"]["size_bytes"], data["mtd"]["rows"], data["mtd"]["sha256"]) == (
        bundle.size_bytes,
        sum(range(1, 12)),
        bundle.sha256,
    )
    assert data["mtd"]["days_included"] == [f"2026-11-{d:02d}" for d in range(1, 12)]
    assert data["mtd"]["partial_days"] == ["2026-11-09"]
    assert (data["mtd"]["coverage_start_date"], data["mtd"]["coverage_end_date"]) == ("2026-11-01", "2026-11-11")


def test_the_mtd_entry_is_the_newest_month_and_empty_tiers_have_none():
    publish_day("tier1", date(2026, 10, 31))
    mtd.build_month("tier1", date(2026, 10, 1))
    publish_month_of_days("tier1", 1, 2)
    assert index.build_index("tier1")["mtd"]["month"] == "2026-11"
    assert index.build_index("tier3") == {
        "tier": "tier3",
        "schema_version": "v7",
        "generated_at": "2026-11-12T01:05:00Z",
        "mtd": None,
        "daily": [],
    }


def test_publish_index_writes_one_utf8_json_file_per_tier_with_2_space_indent():
    publish_month_of_days("tier1", 1, 3)
    keys = index.publish_index()
    assert keys == ["index/tier1.json", "index/tier2.json", "index/tier3.json"]
    raw = storage.read_bytes("index/tier1.json")
    assert raw.startswith(b'{\n  "tier": "tier1",\n')
    assert json.loads(raw.decode("utf-8")) == index.build_index("tier1")
    assert index.publish_index(["tier3"]) == ["index/tier3.json"]


@pytest.mark.s3
def test_publish_index_on_s3(s3_storage):
    publish_month_of_days("tier3", 1, 2)
    assert index.publish_index(["tier3"]) == ["index/tier3.json"]
    obj = s3_storage.get_object(Bucket=s3_storage.bucket, Key="index/tier3.json")
    assert obj["ContentType"] == "application/json"
    data = json.loads(obj["Body"].read())
    assert [e["date"] for e in data["daily"]] == ["2026-11-02", "2026-11-01"]
    assert data["mtd"]["days_included"] == ["2026-11-01", "2026-11-02"]
