"""Publishing writes data, then manifest, then the row; a storage failure leaves no row."""

import json
from datetime import date
from unittest import mock

import pyarrow.parquet as pq
import pytest

from deliveries import storage
from deliveries.models import DailyFile
from deliveries.tiers import schema_for
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


def test_published_day_has_data_manifest_and_row_that_agree(local_storage):
    daily = publish_day("tier1", date(2026, 11, 20), rows=12)
    assert daily.key == f"tier1/daily/2026-11-20/{daily.sha256[:16]}/data.parquet"
    assert daily.manifest_key == f"tier1/daily/2026-11-20/{daily.sha256[:16]}/manifest.json"
    data_path = local_storage / daily.key
    assert pq.read_schema(data_path).equals(schema_for("tier1"))
    assert storage.sha256_of(data_path) == daily.sha256
    manifest = json.loads((local_storage / daily.manifest_key).read_text())
    assert manifest["row_count"] == 12 == daily.row_count
    assert (local_storage / daily.manifest_key).read_text().startswith('{\n  "tier": "tier1"')


def test_manifest_upload_failure_leaves_no_row():
    real_put_bytes = storage.put_bytes
    outage = mock.patch.object(storage, "put_bytes", side_effect=storage.StorageError("outage"))
    with outage, pytest.raises(storage.StorageError):
        publish_day("tier2", date(2026, 11, 21))
    assert not DailyFile.objects.exists()
    assert storage.put_bytes is real_put_bytes
