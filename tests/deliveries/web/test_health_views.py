"""/healthz: the health checks as JSON, 200 or 503, never cached, nothing secret in it."""

from datetime import UTC, date, datetime
from unittest import mock

import pytest
import time_machine
from django.core.cache import cache

from deliveries import mtd, storage
from deliveries.models import BuildRun
from deliveries.outcomes import Outcome
from deliveries.tiers import Tier
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache_and_clock():
    cache.clear()
    with time_machine.travel(datetime(2026, 11, 20, 6, 0, tzinfo=UTC), tick=False):
        yield
    cache.clear()


def make_healthy():
    for tier in Tier.values:
        publish_day(tier, date(2026, 11, 19))
        mtd.build_month(tier, date(2026, 11, 1))


def test_healthy_is_200_ok_with_no_store(client):
    make_healthy()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "status": "ok",
        "checked_at": "2026-11-20T06:00:00Z",
        "problems": [],
        "warnings": [],
    }


def test_a_problem_is_503_with_codes_and_messages_only(client):
    make_healthy()
    BuildRun.objects.create(
        command="build_daily",
        started_at=datetime(2026, 11, 20, 0, 30, tzinfo=UTC),
        finished_at=datetime(2026, 11, 20, 0, 31, tzinfo=UTC),
        outcome=Outcome.FAILED,
        error="ClientError: SignatureDoesNotMatch for key AKIAIOSFODNN7EXAMPLE",
    )
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Cache-Control"] == "no-store"
    assert response.json() == {
        "status": "fail",
        "checked_at": "2026-11-20T06:00:00Z",
        "problems": [{"code": "build_failed", "message": "last build_daily run (started 2026-11-20 00:30 UTC) failed"}],
        "warnings": [],
    }
    assert b"AKIA" not in response.content


def test_storage_errors_do_not_leak_into_the_response(client):
    make_healthy()
    leak = storage.StorageError("storage ping of s3 failed: endpoint https://key:secret@r2.example")
    with mock.patch.object(storage, "ping", side_effect=leak):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == [{"code": "storage_unreachable", "message": "storage (local) is unreachable"}]
    assert b"secret" not in response.content


def test_results_are_reused_for_a_few_seconds_so_the_public_url_cannot_hammer_storage(client):
    make_healthy()
    with mock.patch.object(storage, "size", wraps=storage.size) as size:
        client.get("/healthz")
        calls = size.call_count
        client.get("/healthz")
        assert size.call_count == calls > 0


def test_only_get_and_head(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code in (200, 503)
