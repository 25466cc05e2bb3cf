"""The tier page: every status a subscriber can meet, what a valid page shows, and its cost."""

import re
import tempfile
from html import unescape
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import pytest
import time_machine
from django.urls import reverse

from deliveries import mtd, publish, storage
from deliveries.models import DailyFile
from deliveries.tiers import schema_for
from deliveries.web import explore
from deliveries.web import listing as listing_module
from deliveries.web.listing import list_files, newest_part
from deliveries.web.snippets import query_snippets
from tests.support.factories import daily_manifest, dense_table, publish_daily, publish_day, write_parquet
from tests.support.scenarios import NOW, TODAY, publish_scenario
from tests.support.tokens import issue_current, live_tokens
from tokens import rotation

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def scenario():
    return publish_scenario("tier1")


@pytest.fixture
def token():
    return issue_current("tier1")


def page(client, tier="tier1", token=None, param="t"):
    url = reverse("deliveries:tier_page", args=[tier])
    return client.get(url, {param: token} if token is not None else {})


def text_of(response):
    return re.sub(r"\s+", " ", response.content.decode())


# --- Valid links ---------------------------------------------------------------------------------


def test_valid_link_shows_month_first_then_seven_days_newest_first(client, scenario, token):
    response = page(client, token=token)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('data-testid="mtd"') < html.index('data-testid="daily"')
    shown = re.findall(r'<tr data-date="([\d-]+)"', html)
    assert shown == [day.isoformat() for day in scenario.retained]
    assert len(shown) == 7
    assert scenario.gap.isoformat() not in shown


def test_month_card_shows_coverage_rows_size_sha_and_gaps(client, scenario, token):
    body = text_of(page(client, token=token))
    bundle = scenario.bundle
    assert "November 2026" in body
    assert "1 Nov – 9 Nov 2026" in body
    assert f"{bundle.row_count:,}" in body
    assert bundle.sha256 in body
    assert "missing 6 Nov" in body
    assert "partial 8 Nov" in body
    assert f"built {bundle.built_at:%Y-%m-%d %H:%M} UTC" in body


def test_daily_rows_show_rows_size_sha_and_partial_badge_with_hours(client, scenario, token):
    body = text_of(page(client, token=token))
    for day in scenario.retained:
        daily = scenario.dailies[day]
        assert daily.sha256 in body
        assert f"{daily.row_count:,}" in body
    assert "partial · 21/24 h" in body
    assert 'title="Missing 21:00-23:59 UTC"' in body
    assert body.count("24/24 h") == 6


def test_every_file_links_token_checked_downloads_of_the_version_shown_with_noreferrer(client, scenario, token):
    html = page(client, token=token).content.decode()
    for day in scenario.retained:
        version = scenario.dailies[day].sha256[:16]  # the bytes whose SHA-256 the page shows
        for name in ("daily_file", "daily_manifest"):
            url = reverse(f"deliveries:{name}", args=["tier1", day.isoformat()])
            assert f'href="{url}?t={token}&amp;v={version}"' in html
        manifest = reverse("deliveries:daily_manifest", args=["tier1", day.isoformat()])
        assert f'href="{manifest}?t={token}&amp;v={version}&amp;download=1"' in html
    mtd_url = reverse("deliveries:mtd_file", args=["tier1", "2026-11"])
    assert f'href="{mtd_url}?t={token}&amp;v={scenario.bundle.sha256[:16]}"' in html
    anchors = re.findall(r"<a [^>]*href=\"[^\"]*\?t=[^>]*>", html)
    assert anchors and all('rel="noreferrer"' in anchor for anchor in anchors)


def test_freshness_columns_snippet_and_chart(client, scenario, token):
    body = text_of(page(client, token=token))
    newest_build = max([d.built_at for d in scenario.dailies.values()] + [scenario.bundle.built_at])
    assert f'Last updated <strong><time datetime="{newest_build.isoformat()}">{newest_build:%Y-%m-%d %H:%M} UTC' in body
    assert 'Next update expected <strong><time datetime="2026-11-11T00:30:00+00:00">Wed 11 Nov, 00:30 UTC' in body
    # columns and types from the tier definition
    assert '<code>meta_archive_schema_version</code></span><span class="type">int64</span>' in body
    assert "19 columns" in body
    # the snippet checks the newest file's SHA-256 and loads it with pandas
    newest = scenario.dailies[scenario.retained[0]]
    assert f"path = &quot;{newest.download_filename}&quot;" in body
    assert f"expected = &quot;{newest.sha256}&quot;" in body
    assert "pd.read_parquet(path)" in body


def test_chart_marks_the_gap_and_the_partial_day(client, scenario, token):
    response = page(client, token=token)
    html = response.content.decode()
    chart = html[html.index('<figure class="chart"') : html.index("</figure>")]
    bars = re.findall(r'<rect class="(full|partial|missing)"[^>]*><title>([^<]+)</title>', chart)
    assert len(bars) == 9  # 1 to 9 November
    by_day = {title.split(":")[0]: cls for cls, title in bars}
    assert by_day["Fri 2026-11-06"] == "missing"
    assert by_day["Sun 2026-11-08"] == "partial"
    assert by_day["Mon 2026-11-09"] == "full"
    # the geometry is in the page's nonce'd <style> (no style attributes under the CSP)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    style = re.search(r'<style nonce="([^"]+)">([^<]*)</style>', html)
    assert style.group(1) == nonce
    again = page(client, token=token)  # the cached render gets a fresh nonce for each response
    assert f'<style nonce="{nonce}">' not in again.content.decode()
    assert re.search(r"'nonce-([^']+)'", again["Content-Security-Policy"]).group(1) in again.content.decode()
    assert "#chart .chart{--days:9}" in style.group(2)
    assert "#chart .chart-bands>span:nth-child(1){grid-column:1/10}" in style.group(2)  # Month to date
    assert "#chart .chart-bands>span:nth-child(2){grid-column:2/10}" in style.group(2)  # Daily files
    assert '<span class="chart-band in_mtd">Month to date</span><span class="chart-band in_daily">' in chart
    assert "style=" not in html


def test_empty_snippet_names_the_tier(client, token):
    assert "instrumetriq_tier1_daily_YYYY-MM-DD.parquet" in text_of(page(client, token=token))


def test_tier_schema_per_tier(client):
    publish_day("tier3", TODAY.replace(day=9))
    response = page(client, "tier3", issue_current("tier3"))
    body = text_of(response)
    assert "Researcher downloads" in body
    assert '<code>spot_prices</code></span><span class="type">list&lt;struct (5 fields)&gt;</span>' in body
    # a struct's leaves, by their path inside it, with their types
    nested = '<li><code>bucket_meta.asset_unified_id</code><span class="type">string</span>'
    assert nested in response.content.decode()
    assert "12 columns" in body


def test_token_param_form_is_accepted(client, scenario, token):
    assert page(client, token=token, param="token").status_code == 200


def test_overlap_both_links_work_and_the_outgoing_one_says_when_it_stops(client, scenario, token):
    rotation.announce(["tier1"])
    current, upcoming = live_tokens("tier1")
    assert current == token
    outgoing = text_of(page(client, token=current))
    assert "This link stops working Monday 16 November, 00:00 UTC." in outgoing
    assert "new link is already in the pinned post of the Explorer tier on Patreon" in outgoing
    fresh = page(client, token=upcoming)
    assert fresh.status_code == 200
    assert 'id="outgoing-notice"' not in fresh.content.decode()


def test_after_promote_the_old_link_gets_the_403_page(client, scenario, token):
    rotation.announce(["tier1"])
    _, upcoming = live_tokens("tier1")
    rotation.promote(["tier1"])
    assert page(client, token=token).status_code == 403
    assert page(client, token=upcoming).status_code == 200


# --- Refusals ------------------------------------------------------------------------------------

FRIENDLY = (
    "Explorer downloads",
    "This link is not valid, or no longer valid",
    "pinned post of the Explorer tier on Patreon",
    "Sunday at 00:00 UTC",
    "stops working <strong>Monday 00:00 UTC",
)


def assert_friendly_403(response):
    assert response.status_code == 403
    body = text_of(response)
    for phrase in FRIENDLY:
        assert phrase in body
    for leak in ("expired", "revoked", "wrong tier", "other tier", "unknown token", "Traceback"):
        assert leak not in body.lower()
    return body


@pytest.mark.parametrize("bad", [None, "", "short", "x" * 43, "A" * 43 + "?"])
def test_missing_or_malformed_token_gets_the_friendly_403(client, scenario, bad):
    issue_current("tier1")
    assert_friendly_403(page(client, token=bad))


def test_other_tiers_token_gets_the_same_page(client, scenario, token):
    tier2 = issue_current("tier2")
    tier1_wrong = assert_friendly_403(page(client, token=tier2))
    unknown = assert_friendly_403(page(client, token="B" * 43))
    assert tier1_wrong == unknown  # nothing tells which part was wrong


def test_revoked_token_gets_the_403_page(client, scenario, token):
    rotation.emergency(["tier1"])
    assert_friendly_403(page(client, token=token))
    new, _ = live_tokens("tier1")
    assert page(client, token=new).status_code == 200


def test_unknown_tier_is_404(client, token):
    response = page(client, "tier9", token)
    assert response.status_code == 404
    assert token not in response.content.decode()


# --- Empty states and missing objects -----------------------------------------------------------


def test_no_files_yet_explains_itself(client, token):
    body = text_of(page(client, token=token))
    assert "No files yet." in body
    assert "No month-to-date file yet this month." in body
    assert "Last updated <strong>not yet</strong>" in body
    assert 'data-testid="daily"' not in body


def test_days_but_no_bundle_yet(client, token):
    publish_day("tier1", TODAY.replace(day=9))
    body = text_of(page(client, token=token))
    assert "No month-to-date file yet this month." in body
    assert 'data-date="2026-11-09"' in body


def test_page_renders_when_objects_are_gone_from_storage(client, scenario, token, local_storage):
    for daily in scenario.dailies.values():
        storage.delete(daily.key)
    storage.delete(scenario.bundle.key)
    response = page(client, token=token)
    assert response.status_code == 200
    assert len(re.findall(r'<tr data-date="', response.content.decode())) == 7


def test_retention_deleted_days_drop_off_the_page(client, scenario, token):
    for day in sorted(scenario.days)[:2]:
        scenario.dailies[day].deleted_at = NOW
        scenario.dailies[day].save(update_fields=["deleted_at"])
    html = page(client, token=token).content.decode()
    shown = re.findall(r'<tr data-date="([\d-]+)"', html)
    assert shown == [day.isoformat() for day in sorted(scenario.days, reverse=True)[:6]]


# --- Headers and cost ----------------------------------------------------------------------------


@pytest.mark.parametrize("valid", [True, False])
def test_token_pages_send_no_referrer_and_no_store(client, scenario, token, valid):
    response = page(client, token=token if valid else "nope")
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"


def test_page_loads_nothing_from_third_parties(client, scenario, token):
    html = page(client, token=token).content.decode()
    external = re.findall(r'(?:src|href)="(https?:)?//[^"]*"', html)
    assert external == []
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) == ["/static/css/site.css"]


def test_a_page_costs_one_query_and_four_the_first_time_a_worker_renders_a_listing(
    client, scenario, token, django_assert_num_queries
):
    with django_assert_num_queries(4):  # the listing version; then kept under it: live tokens, bundle, days
        assert page(client, token=token).status_code == 200
    with django_assert_num_queries(1):  # the listing version
        assert page(client, token=token).status_code == 200


def test_post_is_not_allowed(client, token):
    url = reverse("deliveries:tier_page", args=["tier1"])
    assert client.post(f"{url}?t={token}").status_code == 405


def test_an_ended_month_with_missing_days_says_month_ended_not_complete(client, token):
    """On the 1st the bundle is last month's: its month has ended, which is not the same as complete."""
    with time_machine.travel("2026-12-01 06:00Z", tick=False):
        publish_day("tier1", NOW.date().replace(day=29))
        publish_day("tier1", NOW.date().replace(day=30))
        mtd.build_month("tier1", NOW.date().replace(day=1), today=NOW.date().replace(month=12, day=1))
        body = text_of(page(client, token=token))
    assert "month ended</span>" in body and "complete month" not in body
    assert '<span class="badge partial">month ended</span>' in body  # not the green badge: 28 days are missing
    assert "28 missing" in body


# --- Know the data before downloading: profiles, preview, query snippets -------------------------


def publish_dense_day(tier, day, rows, seed):
    """A day with every column filled, through the real publish path (profile and preview in its
    manifest, as the builder writes them)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_parquet(dense_table(tier, rows, seed=seed), Path(tmp) / "data.parquet")
        manifest = daily_manifest(tier, day, path, rows)
        return publish_daily(tier, day, path, manifest, input_fingerprint=f"dense-{seed}")


def test_columns_show_the_newest_days_profile_next_to_each_type(client, token):
    publish_dense_day("tier1", TODAY.replace(day=8), rows=30, seed=1)
    newest = publish_dense_day("tier1", TODAY.replace(day=9), rows=60, seed=2)
    html = page(client, token=token).content.decode()
    columns = html[html.index('id="columns"') :]
    figures = newest.manifest["profile"]["spot_mid"]
    low, high, mean = (explore.number(figures[key]) for key in ("min", "max", "mean"))
    nulls = explore.share(figures["null_count"], 60)
    line = f'<span class="prof">{nulls} null · {low} – {high} · mean {mean}<svg class="hist"'
    assert f'<code>spot_mid</code></span><span class="type">double</span></div>{line}' in columns
    assert columns.count('<svg class="hist"') == 14  # the 14 number columns of tier 1
    assert "Figures of 9 Nov, from its manifest" in columns


def test_struct_columns_fold_their_leaves_each_with_its_profile(client):
    publish_dense_day("tier3", TODAY.replace(day=9), rows=12, seed=3)
    html = page(client, "tier3", issue_current("tier3")).content.decode()
    columns = html[html.index('id="columns"') :]
    assert '<code>spot_prices</code></span><span class="type">list&lt;struct (5 fields)&gt;</span></summary>' in columns
    assert '<li><code>[].mid</code><span class="type">double</span><span class="prof">' in columns
    assert re.search(r" · \d+–\d+ a row<svg", columns)  # the price samples a row
    assert columns.count("<details>") == 10  # every struct and list column of tier 3


def test_preview_shows_the_newest_days_first_rows_with_nested_values_folded(client):
    newest = publish_dense_day("tier3", TODAY.replace(day=9), rows=25, seed=4)
    html = page(client, "tier3", issue_current("tier3")).content.decode()
    table = html[html.index('data-testid="preview"') : html.index("</table>", html.index('data-testid="preview"'))]
    rows = newest.manifest["preview"]["rows"]
    assert table.count("<tr>") == len(rows) + 1
    assert 0 < len(rows) <= 20
    assert "".join(f'<th scope="col">{name}</th>' for name in schema_for("tier3").names) in table
    assert f"<td>{rows[0]['symbol']}</td>" in table
    meta = rows[0]["meta"]
    filled = sum(value is not None for value in meta.values())
    assert f"<details><summary>{filled} of {len(meta)} fields</summary><dl><dt>added_ts<dd>" in table
    assert 'style="' not in table and "<script" not in table  # CSP-clean


def test_preview_escapes_what_it_shows():
    html = explore.cell_html({"a": "<b>x</b>", "b": {"count": 7, "items": ["<i>"]}})
    assert "<b>x" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "&lt;i&gt;" in html and "first 1 of 7" in html


def test_query_snippets_carry_the_real_token_checked_url(client, scenario, token, settings):
    settings.SITE_URL = "https://data.example.test"
    html = page(client, token=token).content.decode()
    url = f"https://data.example.test/downloads/tier1/mtd/2026-11.parquet?t={token}"
    for name in ("pandas", "polars", "duckdb"):
        snippet = html[html.index(f'<code id="query-{name}">') :]
        snippet = unescape(snippet[: snippet.index("</code>")].removeprefix(f'<code id="query-{name}">'))
        assert snippet == query_snippets(url)[name]
    assert "keep the code private" in html and "sends no <code>Referer</code>" in html


def test_the_page_reads_no_parquet(client, token, monkeypatch):
    publish_dense_day("tier1", TODAY.replace(day=9), rows=20, seed=5)
    for name in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, name, mock.Mock(side_effect=AssertionError(f"decoded: {name}")))
    monkeypatch.setattr(pq, "read_table", mock.Mock(side_effect=AssertionError("decoded: read_table")))
    html = page(client, token=token).content.decode()
    assert 'data-testid="preview"' in html and '<svg class="hist"' in html


def test_days_without_a_profile_still_show_their_columns(client, token):
    day = publish_day("tier1", TODAY.replace(day=9))
    DailyFile.objects.filter(pk=day.pk).update(manifest={"missing_hours": []})  # built before profiles
    html = page(client, token=token).content.decode()
    assert '<code>spot_mid</code></span><span class="type">double</span>' in html
    assert '<svg class="hist"' not in html and 'data-testid="preview"' not in html


def test_only_the_newest_days_profile_and_preview_leave_the_database(token):
    for day in (7, 8, 9):
        publish_day("tier1", TODAY.replace(day=day))
    assert list_files("tier1").newest == {}  # the API's, the feed's
    listing = list_files("tier1", newest_parts=True)
    assert set(listing.newest) == {"profile", "preview"}
    newest = DailyFile.objects.get(date=TODAY.replace(day=9))
    assert newest_part(listing, "profile") == newest.manifest["profile"]
    assert newest_part(listing, "preview") == newest.manifest["preview"]


def test_the_newest_days_profile_follows_the_newest_file():
    publish_day("tier1", TODAY.replace(day=8))
    first = publish_day("tier1", TODAY.replace(day=9), rows=12)
    assert newest_part(list_files("tier1", newest_parts=True), "profile") == first.manifest["profile"]
    rebuilt = publish_day("tier1", TODAY.replace(day=9), rows=15)  # another file for the same day
    profile = newest_part(list_files("tier1", newest_parts=True), "profile")
    assert profile == rebuilt.manifest["profile"] != first.manifest["profile"]
    publish.delist_day(rebuilt, NOW)  # the 8th is the newest again
    eighth = DailyFile.objects.get(date=TODAY.replace(day=8))
    assert newest_part(list_files("tier1", newest_parts=True), "profile") == eighth.manifest["profile"]


# --- The cached page -----------------------------------------------------------------------------


def test_a_cached_page_is_served_until_a_new_listing_version_renders_it_again(
    client, scenario, token, django_assert_num_queries
):
    first = page(client, token=token).content.decode()
    with django_assert_num_queries(1):  # the listing version
        again = page(client, token=token).content.decode()
    assert re.sub(r'nonce="[^"]+"', "", again) == re.sub(r'nonce="[^"]+"', "", first)
    assert '<tr data-date="2026-11-10"' not in again
    publish_day("tier1", TODAY)  # the nightly build, in another process in real life: a new listing version
    with django_assert_num_queries(4):
        after = page(client, token=token).content.decode()
    assert '<tr data-date="2026-11-10"' in after


def test_every_change_to_a_listing_or_its_tokens_gives_the_tier_a_new_listing_version():
    def versions():
        return {tier: listing_module.version_of(tier) for tier in ("tier1", "tier2")}

    publish_day("tier2", TODAY.replace(day=1))
    seen = [versions()]
    assert seen[0]["tier1"] is None  # nothing listed or issued yet: nothing is cached for the tier
    rotation.init(["tier1"])  # tokens issued
    seen.append(versions())
    publish_day("tier1", TODAY.replace(day=1))  # a day listed
    seen.append(versions())
    mtd.build_month("tier1", TODAY.replace(day=1), today=TODAY)  # a month bundle listed
    seen.append(versions())
    publish_day("tier1", TODAY.replace(day=1), rows=99)  # a day rebuilt: its old version delisted
    seen.append(versions())
    publish.delist_day(DailyFile.objects.get(tier="tier1", date=TODAY.replace(day=1)), NOW)  # retention
    seen.append(versions())
    for change in (rotation.announce, rotation.promote, lambda tiers: rotation.emergency(tiers, force=True)):
        change(["tier1"])
        seen.append(versions())
    tier1 = [state["tier1"] for state in seen[1:]]
    assert None not in tier1 and len(set(tier1)) == len(tier1) == 8
    assert len({state["tier2"] for state in seen}) == 1  # another tier's changes leave it alone


def test_a_revoked_link_stops_working_at_once_though_the_live_tokens_are_cached(client, scenario, token):
    assert page(client, token=token).status_code == 200  # the tier's live tokens are now cached
    rotation.emergency(["tier1"])
    assert page(client, token=token).status_code == 403
    assert page(client, token=live_tokens("tier1")[0]).status_code == 200


def test_the_cached_page_of_a_token_says_it_is_outgoing_once_the_next_one_is_announced(client, scenario, token):
    assert 'id="outgoing-notice"' not in page(client, token=token).content.decode()
    rotation.announce(["tier1"])  # the listing is the same: the token's deadline is in the page's key
    assert 'id="outgoing-notice"' in page(client, token=token).content.decode()
    _, upcoming = live_tokens("tier1")
    fresh = page(client, token=upcoming).content.decode()
    assert 'id="outgoing-notice"' not in fresh and upcoming in fresh and token not in fresh


def test_the_cached_page_moves_on_with_the_day(client, scenario, token):
    with time_machine.travel(NOW, tick=False):
        before = page(client, token=token).content.decode()
    with time_machine.travel(NOW.replace(day=12), tick=False):  # the 10th and 11th are now expected
        after = page(client, token=token).content.decode()
    assert before.count('class="missing"') < after.count('class="missing"')


def test_preview_structs_show_their_fields_in_the_contracts_order_whatever_the_database_keeps():
    """PostgreSQL's jsonb stores an object's keys shortest first; struct fields are alphabetical."""
    html = explore.cell_html({"mid": 1.0, "ask": 2.0, "spread_bps": None})
    assert html.index("<dt>ask<dd>") < html.index("<dt>mid<dd>") < html.index("<dt>spread_bps<dd><i>null</i>")
