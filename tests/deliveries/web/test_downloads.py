"""Token-checked downloads: the local stream (Range, ETag, resume), the S3 redirect, 404s, counts."""

import hashlib
import json
import urllib.request
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from deliveries import storage
from deliveries.models import DownloadCount
from deliveries.web import downloads
from tests.support.scenarios import NOW, publish_scenario
from tests.support.tokens import issue_current, live_tokens
from tokens import rotation

pytestmark = pytest.mark.django_db


@pytest.fixture
def newest(scenario):
    return scenario.dailies[scenario.retained[0]]


def url(name, label, token=None, tier="tier1", **query):
    path = reverse(f"deliveries:{name}", args=[tier, label])
    params = {"t": token, **query} if token is not None else query
    return path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def counts():
    return {(c.tier, c.kind, c.file_label): c.count for c in DownloadCount.objects.all()}


# --- Local storage: a stream with Range and ETag ------------------------------------------------


def test_full_download_streams_the_exact_bytes_with_headers(client, newest, token, local_storage):
    data = (local_storage / newest.key).read_bytes()
    response = client.get(url("daily_file", newest.date.isoformat(), token))
    assert response.status_code == 200
    assert body(response) == data
    assert hashlib.sha256(data).hexdigest() == newest.sha256
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == f'attachment; filename="{newest.download_filename}"'
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"].startswith('"') and response["ETag"].endswith('"')
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]


def test_a_broken_download_resumes_with_range_and_if_range(client, newest, token, local_storage):
    data = (local_storage / newest.key).read_bytes()
    link = url("daily_file", newest.date.isoformat(), token)
    first = client.get(link)
    etag = first["ETag"]
    part = body(first)[:1000]  # the connection broke here

    rest = client.get(link, HTTP_RANGE=f"bytes={len(part)}-", HTTP_IF_RANGE=etag)
    assert rest.status_code == 206
    assert rest["Content-Range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
    assert rest["Content-Length"] == str(len(data) - 1000)
    assert rest["ETag"] == etag
    resumed = part + body(rest)
    assert resumed == data
    assert hashlib.sha256(resumed).hexdigest() == newest.sha256


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=0-99", 0, 99), ("bytes=100-199", 100, 199), ("bytes=-50", None, None), ("bytes=10-999999999", 10, None)],
)
def test_single_ranges(client, newest, token, local_storage, header, start, end):
    data = (local_storage / newest.key).read_bytes()
    size = len(data)
    start = size - 50 if start is None else start
    end = size - 1 if end is None else end
    response = client.get(url("daily_file", newest.date.isoformat(), token), HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert body(response) == data[start : end + 1]


def test_a_changed_file_is_sent_whole_when_if_range_is_stale(client, newest, token, local_storage):
    data = (local_storage / newest.key).read_bytes()
    response = client.get(
        url("daily_file", newest.date.isoformat(), token), HTTP_RANGE="bytes=5-", HTTP_IF_RANGE='"old"'
    )
    assert response.status_code == 200
    assert body(response) == data


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "bytes=9-3", "lines=1-2", "bytes=abc"])
def test_multi_and_malformed_ranges_get_the_whole_file(client, newest, token, local_storage, header):
    response = client.get(url("daily_file", newest.date.isoformat(), token), HTTP_RANGE=header)
    assert response.status_code == 200
    assert body(response) == (local_storage / newest.key).read_bytes()


def test_a_range_past_the_end_is_416(client, newest, token):
    response = client.get(url("daily_file", newest.date.isoformat(), token), HTTP_RANGE=f"bytes={newest.size_bytes}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{newest.size_bytes}"


def test_if_none_match_gets_304_and_head_gets_headers_only(client, newest, token):
    link = url("daily_file", newest.date.isoformat(), token)
    etag = client.get(link)["ETag"]
    assert client.get(link, HTTP_IF_NONE_MATCH=etag).status_code == 304
    head = client.head(link)
    assert head.status_code == 200
    assert head["Content-Length"] == str(newest.size_bytes)
    assert head["ETag"] == etag
    assert head.content == b""


def test_manifest_views_inline_and_downloads_as_attachment(client, newest, token, local_storage):
    label = newest.date.isoformat()
    shown = client.get(url("daily_manifest", label, token))
    assert shown.status_code == 200
    assert shown["Content-Type"] == "application/json; charset=utf-8"
    assert shown["Content-Disposition"] == f'inline; filename="{newest.manifest_filename}"'
    manifest = json.loads(body(shown))
    assert manifest["parquet_sha256"] == newest.sha256
    assert manifest["date_utc"] == label
    saved = client.get(url("daily_manifest", label, token, download=1))
    assert saved["Content-Disposition"] == f'attachment; filename="{newest.manifest_filename}"'
    assert body(saved) == (local_storage / newest.manifest_key).read_bytes()


def test_month_bundle_and_its_manifest(client, scenario, token, local_storage):
    bundle = scenario.bundle
    response = client.get(url("mtd_file", "2026-11", token))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="instrumetriq_tier1_mtd_2026-11.parquet"'
    assert hashlib.sha256(body(response)).hexdigest() == bundle.sha256
    manifest = json.loads(body(client.get(url("mtd_manifest", "2026-11", token))))
    assert manifest["days_missing"] == [scenario.gap.isoformat()]
    assert manifest["partial_days"] == [scenario.partial.isoformat()]


# --- The token is checked again on every download -----------------------------------------------


@pytest.mark.parametrize("name,label", [("daily_file", "2026-11-09"), ("mtd_manifest", "2026-11")])
def test_downloads_refuse_missing_bad_and_other_tier_tokens(client, scenario, token, name, label):
    other = issue_current("tier2")
    for bad in (None, "", "A" * 43, other):
        response = client.get(url(name, label, bad))
        assert response.status_code == 403
        assert b"pinned post of the Explorer tier on Patreon" in response.content
        assert "no-store" in response["Cache-Control"]
    assert not DownloadCount.objects.exists()


def test_an_emergency_rotation_stops_download_links_at_once(client, newest, token):
    link = url("daily_file", newest.date.isoformat(), token)
    assert client.get(link).status_code == 200
    rotation.emergency(["tier1"])
    assert client.get(link).status_code == 403
    new, _ = live_tokens("tier1")
    assert client.get(url("daily_file", newest.date.isoformat(), new)).status_code == 200


def test_the_next_token_works_during_the_overlap(client, newest, token):
    rotation.announce(["tier1"])
    _, upcoming = live_tokens("tier1")
    assert client.get(url("daily_file", newest.date.isoformat(), upcoming)).status_code == 200
    assert client.get(url("daily_file", newest.date.isoformat(), token)).status_code == 200


# --- Gone files are a clear 404, never a 500 ----------------------------------------------------


def assert_clear_404(response, token):
    assert response.status_code == 404
    text = response.content.decode()
    assert "This file is not available" in text
    assert f'href="/downloads/tier1?t={token}"' in text  # back to the page, which still renders
    assert "Traceback" not in text


def test_deleted_by_retention_is_404(client, scenario, token):
    oldest = scenario.dailies[min(scenario.days)]
    storage.delete(oldest.key)
    storage.delete(oldest.manifest_key)
    oldest.deleted_at = timezone.now()
    oldest.save(update_fields=["deleted_at"])
    for name in ("daily_file", "daily_manifest"):
        assert_clear_404(client.get(url(name, oldest.date.isoformat(), token)), token)
    assert client.get(f"/downloads/tier1?t={token}").status_code == 200


def test_missing_from_storage_is_404_and_the_page_still_renders(client, newest, scenario, token):
    storage.delete(newest.key)
    storage.delete(scenario.bundle.manifest_key)
    assert_clear_404(client.get(url("daily_file", newest.date.isoformat(), token)), token)
    assert_clear_404(client.get(url("mtd_manifest", "2026-11", token)), token)
    assert client.get(f"/downloads/tier1?t={token}").status_code == 200
    assert not DownloadCount.objects.exists()


@pytest.mark.parametrize(
    ("name", "label"),
    [("daily_file", "2026-11-06"), ("daily_file", "2026-02-30"), ("mtd_file", "2026-10"), ("mtd_file", "2026-13")],
)
def test_never_published_or_impossible_dates_are_404(client, scenario, token, name, label):
    assert_clear_404(client.get(url(name, label, token)), token)


def test_unknown_tier_is_404(client, scenario, token):
    assert client.get(url("daily_file", "2026-11-09", token, tier="tier4")).status_code == 404


# --- Storage outages are a 503 with a plain message ---------------------------------------------


def test_local_storage_failure_is_503_and_logged(client, newest, token, monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(storage, "local_path", lambda key: tmp_path)  # a directory: reading fails
    response = client.get(url("daily_file", newest.date.isoformat(), token))
    assert response.status_code == 503
    assert b"Downloads are briefly unavailable" in response.content
    assert "storage unavailable" in caplog.text
    assert token not in caplog.text


# --- Counts ---------------------------------------------------------------------------------------


def test_downloads_are_counted_per_tier_file_and_utc_day(client, newest, scenario, token):
    label = newest.date.isoformat()
    with time_machine.travel(NOW, tick=False):
        client.get(url("daily_file", label, token))
        client.get(url("daily_file", label, token))
        client.get(url("daily_file", label, token), HTTP_RANGE="bytes=0-99")  # a new download, ranged
        client.get(url("daily_file", label, token), HTTP_RANGE="bytes=100-")  # a resume: not counted again
        client.head(url("daily_file", label, token))  # not a download
        client.get(url("daily_manifest", label, token))
        client.get(url("mtd_file", "2026-11", token))
        client.get(url("mtd_manifest", "2026-11", token, download=1))
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        client.get(url("daily_file", label, token))
    rows = {(c.kind, c.file_label, c.day.isoformat()): c.count for c in DownloadCount.objects.filter(tier="tier1")}
    assert rows == {
        ("daily", label, "2026-11-10"): 3,
        ("daily_manifest", label, "2026-11-10"): 1,
        ("mtd", "2026-11", "2026-11-10"): 1,
        ("mtd_manifest", "2026-11", "2026-11-10"): 1,
        ("daily", label, "2026-11-11"): 1,
    }


def test_counts_hold_nothing_about_who():
    names = {field.name for field in DownloadCount._meta.get_fields()}
    assert names == {"id", "tier", "kind", "file_label", "day", "count"}


def test_counting_an_existing_row_increments_it():
    target = downloads.Target("tier2", "daily", "2026-11-09", "k", "f")
    for _ in range(3):
        downloads.count(target)
    assert counts() == {("tier2", "daily", "2026-11-09"): 3}


# --- S3 (moto's server over HTTP): a 302 to a presigned URL that works --------------------------


def fetch(location):
    with urllib.request.urlopen(location, timeout=10) as response:
        return response.read(), dict(response.headers)


@pytest.mark.s3
def test_s3_download_redirects_to_a_working_presigned_url(client, s3_storage):
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    daily = scenario.dailies[scenario.retained[0]]
    response = client.get(url("daily_file", daily.date.isoformat(), token))
    assert response.status_code == 302
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    location = response["Location"]
    assert location.startswith(s3_storage.meta.endpoint_url)
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    data, headers = fetch(location)
    assert hashlib.sha256(data).hexdigest() == daily.sha256
    assert headers["Content-Disposition"] == f'attachment; filename="{daily.download_filename}"'
    assert counts() == {("tier1", "daily", daily.date.isoformat()): 1}

    bundle = client.get(url("mtd_file", f"{scenario.bundle.month:%Y-%m}", token))
    data, _ = fetch(bundle["Location"])
    assert hashlib.sha256(data).hexdigest() == scenario.bundle.sha256


@pytest.mark.s3
def test_s3_manifest_view_is_proxied_inline_and_download_redirects(client, s3_storage):
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    daily = scenario.dailies[scenario.retained[0]]
    shown = client.get(url("daily_manifest", daily.date.isoformat(), token))
    assert shown.status_code == 200
    assert shown["Content-Disposition"] == f'inline; filename="{daily.manifest_filename}"'
    assert json.loads(shown.content)["parquet_sha256"] == daily.sha256
    saved = client.get(url("daily_manifest", daily.date.isoformat(), token, download=1))
    assert saved.status_code == 302
    data, headers = fetch(saved["Location"])
    assert json.loads(data)["parquet_sha256"] == daily.sha256
    assert headers["Content-Disposition"] == f'attachment; filename="{daily.manifest_filename}"'


@pytest.mark.s3
def test_s3_missing_object_is_404_not_the_buckets_error(client, s3_storage):
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    daily = scenario.dailies[scenario.retained[0]]
    storage.delete(daily.key)
    assert_clear_404(client.get(url("daily_file", daily.date.isoformat(), token)), token)


@pytest.mark.s3
def test_s3_signing_failure_is_503(client, s3_storage, monkeypatch, caplog):
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    daily = scenario.dailies[scenario.retained[0]]

    def broken(*args, **kwargs):
        raise storage.StorageError("storage signing of a key failed: EndpointConnectionError")

    monkeypatch.setattr(storage, "download_url", broken)
    response = client.get(url("daily_file", daily.date.isoformat(), token))
    assert response.status_code == 503
    assert b"Downloads are briefly unavailable" in response.content
    assert "storage signing" in caplog.text
    assert token not in caplog.text


# --- Counts in the admin, next to each file ------------------------------------------------------


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", password="pw-for-tests-only"))
    return client


def test_admin_lists_download_counts_next_to_each_file(staff_client, scenario, newest):
    label = newest.date.isoformat()
    for day, kind, file_label, count in [
        (NOW.date(), "daily", label, 3),
        (NOW.date() - timedelta(days=1), "daily", label, 2),
        (NOW.date(), "daily_manifest", label, 4),
        (NOW.date(), "mtd", "2026-11", 5),
        (NOW.date(), "mtd_manifest", "2026-11", 1),
    ]:
        DownloadCount.objects.create(tier="tier1", kind=kind, file_label=file_label, day=day, count=count)
    DownloadCount.objects.create(tier="tier2", kind="daily", file_label=label, day=NOW.date(), count=50)

    changelist = staff_client.get(reverse("admin:deliveries_dailyfile_changelist"), {"tier": "tier1"})
    rows = {
        row.date.isoformat(): (row.n_downloads, row.n_manifest_downloads)
        for row in changelist.context["cl"].result_list
    }
    assert rows[label] == (5, 4)
    assert rows[scenario.retained[1].isoformat()] == (0, 0)
    assert b'<th scope="col" class="sortable column-downloads">' in changelist.content

    months = staff_client.get(reverse("admin:deliveries_monthbundle_changelist"))
    (bundle,) = months.context["cl"].result_list
    assert (bundle.n_downloads, bundle.n_manifest_downloads) == (5, 1)

    detail = staff_client.get(reverse("admin:deliveries_dailyfile_change", args=[newest.pk]))
    assert (
        b"<tr><td>2026-11-10</td><td>3</td><td>4</td></tr><tr><td>2026-11-09</td><td>2</td><td>0</td></tr>"
        in detail.content
    )
