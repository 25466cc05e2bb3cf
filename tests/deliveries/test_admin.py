"""The operator's admin lists delivery state with filters, and never lets rows be edited by hand."""

from datetime import date

import pytest
from django.urls import reverse

from deliveries.models import BuildRun, DailyFile
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", password="pw-for-tests-only")
    client.force_login(user)
    return client


def test_daily_files_list_filters_by_tier_and_partial(staff_client):
    publish_day("tier1", date(2026, 11, 20))
    publish_day("tier2", date(2026, 11, 20), hours_found=21)
    url = reverse("admin:deliveries_dailyfile_changelist")
    page = staff_client.get(url, {"tier": "tier2"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert staff_client.get(url, {"is_partial__exact": "1"}).context["cl"].result_count == 1
    assert staff_client.get(url, {"date__year": "2026"}).context["cl"].result_count == 2


def test_build_runs_list_filters_by_outcome(staff_client):
    BuildRun.objects.create(command="build_daily", outcome="failed", error="2026-11-20: no archive folder")
    BuildRun.objects.create(command="build_daily", outcome="success")
    url = reverse("admin:deliveries_buildrun_changelist")
    page = staff_client.get(url, {"outcome": "failed"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert b"no archive folder" in page.content


def test_delivery_rows_cannot_be_added_or_changed_by_hand(staff_client):
    daily = publish_day("tier1", date(2026, 11, 20))
    assert staff_client.get(reverse("admin:deliveries_dailyfile_add")).status_code == 403
    detail = staff_client.get(reverse("admin:deliveries_dailyfile_change", args=[daily.pk]))
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert DailyFile.objects.get(pk=daily.pk).sha256 == daily.sha256
