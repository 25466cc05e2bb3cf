"""The JSON API for scripts: its schema, its links (token-checked and signed), its errors as JSON."""

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from deliveries import storage
from deliveries.models import DownloadCount
from deliveries.web import downloads, listing
from tests.support.scenarios import NOW, publish_scenario
from tests.support.tokens import issue_current, live_tokens
from tokens import rotation

pytestmark = pytest.mark.django_db

SITE = "https://data.example.test"
ENTRY_KEYS = {
    "rows",
    "size_bytes",
    "sha256",
    "partial",
    "built_at",
    "filename",
    "url",
    "query_url",
    "manifest_url",
    "signed_url",
    "signed_url_expires_at",
}


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def api(client, token=None, tier="tier1", param="t"):
    path = reverse("deliveries:api_tier", args=[tier])
    return client.get(path, {param: token} if token is not None else {})


def parse_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def local_path(signed_url):
    assert signed_url.startswith(SITE)
    return signed_url.removeprefix(SITE)


def content(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- Schema ---------------------------------------------------------------------------------------


def test_schema(client, scenario, token):
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        response = api(client, token)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert set(data) == {
        "tier",
        "plan",
        "generated_at",
        "last_build_at",
        "next_update_at",
        "token_expires_at",
        "mtd",
        "daily",
    }
    assert (data["tier"], data["plan"]) == ("tier1", "Explorer")
    assert data["generated_at"] == "2026-11-10T06:05:00Z"
    assert data["last_build_at"] == "2026-11-10T06:00:00Z"
    assert data["next_update_at"] == "2026-11-11T00:30:00Z"
    assert data["token_expires_at"] is None

    mtd = data["mtd"]
    assert set(mtd) == ENTRY_KEYS | {
        "month",
        "coverage_start",
        "coverage_end",
        "days_included",
        "days_missing",
        "partial_days",
    }
    bundle = scenario.bundle
    assert mtd["month"] == "2026-11"
    assert (mtd["coverage_start"], mtd["coverage_end"]) == ("2026-11-01", "2026-11-09")
    assert mtd["days_missing"] == ["2026-11-06"] and mtd["partial_days"] == ["2026-11-08"]
    assert len(mtd["days_included"]) == 8
    assert (mtd["rows"], mtd["size_bytes"], mtd["sha256"], mtd["partial"]) == (
        bundle.row_count,
        bundle.size_bytes,
        bundle.sha256,
        True,
    )
    version = bundle.sha256[:16]
    assert mtd["url"] == f"{SITE}/downloads/tier1/mtd/2026-11.parquet?t={token}&v={version}"
    assert mtd["manifest_url"] == f"{SITE}/downloads/tier1/mtd/2026-11.manifest.json?t={token}&v={version}"
    assert mtd["query_url"] == mtd["url"]  # the token-checked link answers HEAD and Range
    assert mtd["filename"] == "instrumetriq_tier1_mtd_2026-11.parquet"

    daily = data["daily"]
    assert [entry["date"] for entry in daily] == [day.isoformat() for day in scenario.retained]
    for entry in daily:
        assert set(entry) == ENTRY_KEYS | {"date", "hours_found", "missing_hours"}
        file = scenario.dailies[datetime.strptime(entry["date"], "%Y-%m-%d").date()]
        assert (entry["rows"], entry["size_bytes"], entry["sha256"]) == (file.row_count, file.size_bytes, file.sha256)
        query = f"?t={token}&v={file.sha256[:16]}"  # the version listed: still served after a rebuild
        assert entry["url"] == f"{SITE}/downloads/tier1/daily/{entry['date']}.parquet{query}"
        assert entry["manifest_url"] == f"{SITE}/downloads/tier1/daily/{entry['date']}.manifest.json{query}"
        assert entry["query_url"] == entry["url"]
        expires = parse_time(entry["signed_url_expires_at"])
        assert expires == NOW + timedelta(minutes=5, seconds=590400)
    partial = next(entry for entry in daily if entry["partial"])
    assert partial["date"] == "2026-11-08"
    assert (partial["hours_found"], partial["missing_hours"]) == (21, ["21", "22", "23"])


def test_links_in_the_api_work(client, scenario, token):
    data = api(client, token).json()
    entry = data["daily"][0]
    response = client.get(entry["url"].removeprefix(SITE))
    assert hashlib.sha256(content(response)).hexdigest() == entry["sha256"]
    manifest = json.loads(content(client.get(entry["manifest_url"].removeprefix(SITE))))
    assert manifest["parquet_sha256"] == entry["sha256"]


def test_empty_tier(client, token):
    data = api(client, token).json()
    assert (data["mtd"], data["daily"], data["last_build_at"]) == (None, [], None)


def test_outgoing_token_says_when_it_stops(client, scenario, token):
    with time_machine.travel(NOW, tick=False):
        rotation.announce(["tier1"])
        data = api(client, token).json()
    assert data["token_expires_at"] == "2026-11-16T00:00:00Z"
    _, upcoming = live_tokens("tier1")
    assert api(client, upcoming).json()["token_expires_at"] is None


def test_token_param_form_and_query_budget(client, scenario, token, django_assert_num_queries):
    with django_assert_num_queries(4):  # the listing version; then kept under it: live tokens, bundle, days
        assert api(client, token, param="token").status_code == 200
    with django_assert_num_queries(1):  # the listing version
        assert api(client, token, param="token").status_code == 200


# --- The body is kept SIGNED_URL_REUSE seconds under the listing version, without a token ----------


def signed_urls(data):
    return [(entry["signed_url"], entry["signed_url_expires_at"]) for entry in [data["mtd"], *data["daily"]]]


def test_signed_urls_are_reused_within_the_window_with_each_requests_token(client, scenario, token):
    with time_machine.travel(NOW, tick=False):
        rotation.announce(["tier1"])  # two live tokens: current (outgoing) and next
    _, upcoming = live_tokens("tier1")
    first_at = NOW + timedelta(minutes=5)
    with time_machine.travel(first_at, tick=False):
        first = api(client, token).json()
    with time_machine.travel(first_at + timedelta(seconds=200), tick=False):
        again = api(client, upcoming)
    text = again.content.decode()
    assert token not in text  # the body kept from the first request carries no token of its own
    second = again.json()
    assert signed_urls(second) == signed_urls(first)
    assert parse_time(second["daily"][0]["signed_url_expires_at"]) == first_at + timedelta(seconds=590400)
    assert second["daily"][0]["url"].endswith(f"?t={upcoming}&v={second['daily'][0]['sha256'][:16]}")
    assert first["daily"][0]["url"].endswith(f"?t={token}&v={first['daily'][0]['sha256'][:16]}")
    assert (first["generated_at"], second["generated_at"]) == ("2026-11-10T06:05:00Z", "2026-11-10T06:08:20Z")
    assert (first["token_expires_at"], second["token_expires_at"]) == ("2026-11-16T00:00:00Z", None)
    assert second["next_update_at"] == "2026-11-11T00:30:00Z"
    assert set(second) == set(first) and second["mtd"].keys() == first["mtd"].keys()


def test_a_new_window_or_a_listing_change_signs_again(client, scenario, token, settings):
    start = NOW + timedelta(minutes=5)  # 06:05:00, the start of a 300-second window
    with time_machine.travel(start, tick=False):
        first = signed_urls(api(client, token).json())
    with time_machine.travel(start + timedelta(seconds=settings.SIGNED_URL_REUSE), tick=False):
        later = api(client, token).json()
        rotation.announce(["tier1"])  # renews the listing version
        announced = api(client, token).json()
    assert set(signed_urls(later)).isdisjoint(first)
    expires = start + timedelta(seconds=settings.SIGNED_URL_REUSE + 590400)
    assert parse_time(later["mtd"]["signed_url_expires_at"]) == expires
    assert announced["token_expires_at"] == "2026-11-16T00:00:00Z"  # not the body kept before the rotation
    assert later["token_expires_at"] is None


def test_reuse_of_zero_signs_each_request(client, scenario, token, settings):
    settings.SIGNED_URL_REUSE = 0
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        first = signed_urls(api(client, token).json())
    with time_machine.travel(NOW + timedelta(minutes=5, seconds=1), tick=False):
        second = signed_urls(api(client, token).json())
    assert set(first).isdisjoint(second)


def test_the_cache_holds_no_token(client, scenario, token, monkeypatch):
    from django.core.cache import caches

    kept = {}
    backend = caches["default"]  # this thread's cache, as the view sees it

    def keeping(store):
        def keep(key, value, *args, **kwargs):
            kept[key] = value
            return store(key, value, *args, **kwargs)

        return keep

    for name in ("add", "set"):  # every way a value goes in (get_or_set adds)
        monkeypatch.setattr(backend, name, keeping(getattr(backend, name)))
    assert api(client, token).status_code == 200
    bodies = [value for key, value in kept.items() if key.startswith("api-body:")]
    assert len(bodies) == 1
    assert all(token not in str(key) + str(value) for key, value in kept.items())


# --- Signed URLs (local storage): no token, expiring, Range-capable ----------------------------


def test_local_signed_url_downloads_without_token_and_resumes(client, scenario, token, local_storage):
    entry = api(client, token).json()["daily"][0]
    path = local_path(entry["signed_url"])
    assert path.startswith(f"/files/{entry['filename']}?t=")
    assert token not in path
    full = client.get(path)
    assert full.status_code == 200
    data = content(full)
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert full["Content-Disposition"] == f'attachment; filename="{entry["filename"]}"'
    assert full["Referrer-Policy"] == "no-referrer"
    assert "no-store" in full["Cache-Control"]
    rest = client.get(path, HTTP_RANGE="bytes=10-")
    assert rest.status_code == 206
    assert content(rest) == data[10:]
    assert DownloadCount.objects.get(kind="daily", file_label=entry["date"]).count == 1


def test_signed_url_survives_a_rotation_but_not_its_expiry(client, scenario, token):
    entry = api(client, token).json()["mtd"]
    path = local_path(entry["signed_url"])
    rotation.emergency(["tier1"])  # signed URLs are for scripts that fetch later: not tied to the token
    assert client.get(path).status_code == 200
    with time_machine.travel(parse_time(entry["signed_url_expires_at"]) + timedelta(seconds=5)):
        expired = client.get(path)
    assert expired.status_code == 403
    assert b"expired or is not valid" in expired.content


def test_forged_or_renamed_signed_urls_are_refused(client, scenario, token):
    entry = api(client, token).json()["daily"][0]
    path = local_path(entry["signed_url"])
    assert client.get(path[:-3] + "abc").status_code == 403
    assert client.get(path.replace(entry["filename"], "other.parquet")).status_code == 403
    assert client.get(f"/files/{entry['filename']}").status_code == 403
    url, _ = storage.download_url("../../etc/passwd", entry["filename"], "application/octet-stream", 60)
    assert client.get(local_path(url)).status_code == 404


def test_signed_url_of_a_deleted_file_is_404(client, scenario, token):
    entry = api(client, token).json()["daily"][0]
    storage.delete(scenario.dailies[scenario.retained[0]].key)
    assert client.get(local_path(entry["signed_url"])).status_code == 404


# --- Errors are JSON ------------------------------------------------------------------------------


def assert_json_error(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["error"] == code
    assert data["message"]
    assert "Traceback" not in response.content.decode()
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    return data


def test_missing_token_is_401_json(client, scenario):
    issue_current("tier1")
    assert_json_error(api(client), 401, "token_required")
    assert_json_error(api(client, ""), 401, "token_required")


def test_bad_other_tier_and_revoked_tokens_are_403_json(client, scenario, token):
    other = issue_current("tier2")
    bodies = {bad: assert_json_error(api(client, bad), 403, "token_not_valid") for bad in ("A" * 43, "nope", other)}
    assert len({json.dumps(body) for body in bodies.values()}) == 1  # the same answer whatever was wrong
    rotation.emergency(["tier1"])
    assert_json_error(api(client, token), 403, "token_not_valid")


def test_unknown_tier_is_404_json(client, token):
    assert_json_error(api(client, token, tier="tier7"), 404, "unknown_tier")


def test_signing_failure_is_503_json_and_logged(client, scenario, token, monkeypatch, caplog):
    def broken(target):
        raise storage.StorageError("storage signing of tier1/daily failed: ConnectTimeoutError")

    monkeypatch.setattr(downloads, "signed_url", broken)
    data = assert_json_error(api(client, token), 503, "storage_unavailable")
    assert "ConnectTimeout" not in data["message"]
    assert "storage signing" in caplog.text
    assert token not in caplog.text


def test_unexpected_failure_is_500_json_not_a_traceback(client, scenario, token, monkeypatch):
    def broken(tier):
        raise RuntimeError("boom")

    monkeypatch.setattr(listing, "list_files", broken)
    data = assert_json_error(api(client, token), 500, "server_error")
    assert "boom" not in json.dumps(data)


# --- S3: signed_url is a presigned URL for SIGNED_URL_EXPIRY -------------------------------------


@pytest.mark.s3
def test_s3_signed_url_is_presigned_for_the_configured_expiry(client, s3_storage):
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    data = api(client, token).json()
    entry = data["daily"][0]
    assert entry["signed_url"].startswith(s3_storage.meta.endpoint_url)
    assert "X-Amz-Expires=590400" in entry["signed_url"]
    with urllib.request.urlopen(entry["signed_url"], timeout=10) as response:
        body = response.read()
        disposition = response.headers["Content-Disposition"]
    assert hashlib.sha256(body).hexdigest() == entry["sha256"]
    assert disposition == f'attachment; filename="{entry["filename"]}"'
    with urllib.request.urlopen(data["mtd"]["signed_url"], timeout=10) as response:
        assert hashlib.sha256(response.read()).hexdigest() == scenario.bundle.sha256


# --- The documented download-and-verify script works --------------------------------------------


def doc_script():
    text = (Path(settings.BASE_DIR) / "README.md").read_text()
    start = text.index("```python\n", text.index("<!-- fetch-script")) + len("```python\n")
    return text[start : text.index("\n```", start)]


@pytest.mark.django_db(transaction=True)
def test_the_documented_python_script_downloads_resumes_and_verifies(live_server, settings, tmp_path):
    settings.SITE_URL = live_server.url
    scenario = publish_scenario("tier1", today=timezone.now().date())
    token = issue_current("tier1")
    script = tmp_path / "fetch.py"
    script.write_text(doc_script())
    out = tmp_path / "data"
    env = {
        **os.environ,
        "INSTRUMETRIQ_API": f"{live_server.url}/api/downloads/tier1",
        "INSTRUMETRIQ_TOKEN": token,
        "INSTRUMETRIQ_DIR": str(out),
    }
    newest = scenario.dailies[scenario.retained[0]]
    out.mkdir()
    whole = (storage.local_path(newest.key)).read_bytes()
    (out / f"{newest.download_filename}.part").write_bytes(whole[:500])  # a download that broke off

    first = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("downloaded") == 8
    for daily in (scenario.dailies[day] for day in scenario.retained):
        assert hashlib.sha256((out / daily.download_filename).read_bytes()).hexdigest() == daily.sha256
    assert (out / scenario.bundle.download_filename).exists()
    assert not list(out.glob("*.part"))

    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert again.stdout.count("up to date") == 8

    refused = subprocess.run(
        [sys.executable, str(script)], env={**env, "INSTRUMETRIQ_TOKEN": "A" * 43}, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "403: This link is not, or no longer, valid for Explorer" in refused.stderr
