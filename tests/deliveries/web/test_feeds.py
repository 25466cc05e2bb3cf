"""The Atom feed: one entry per published file, links that work, the same token rules as the page."""

import xml.etree.ElementTree as ET

import pytest
import time_machine
from django.urls import reverse

from deliveries import mtd
from tests.support.factories import publish_day
from tests.support.scenarios import NOW, TODAY
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db

ATOM = "{http://www.w3.org/2005/Atom}"
SITE = "https://data.example.test"


@pytest.fixture(autouse=True)
def site_url(settings):
    settings.SITE_URL = SITE


def feed(client, token=None, tier="tier1"):
    path = reverse("deliveries:feed", args=[tier])
    return client.get(path, {"t": token} if token is not None else {})


def entries(response):
    root = ET.fromstring(response.content)  # noqa: S314  (our own feed)
    return root, root.findall(f"{ATOM}entry")


def test_one_entry_per_published_file(client, scenario, token):
    response = feed(client, token)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    root, items = entries(response)
    assert root.findtext(f"{ATOM}title") == "Instrumetriq Explorer downloads"
    assert len(items) == 1 + 7
    links = [item.find(f"{ATOM}link[@rel='alternate']").get("href") for item in items]
    expected = {f"{SITE}/downloads/tier1/mtd/2026-11.parquet?t={token}&v={scenario.bundle.sha256[:16]}"} | {
        f"{SITE}/downloads/tier1/daily/{day.isoformat()}.parquet?t={token}&v={scenario.dailies[day].sha256[:16]}"
        for day in scenario.retained
    }
    assert set(links) == expected
    for item in items:
        assert item.findtext(f"{ATOM}id").startswith("urn:instrumetriq:tier1:")
        assert item.findtext(f"{ATOM}updated")
        enclosure = item.find(f"{ATOM}link[@rel='enclosure']")
        assert enclosure.get("type") == "application/vnd.apache.parquet"
        assert int(enclosure.get("length")) > 0
    partial = next(item for item in items if "2026-11-08" in item.findtext(f"{ATOM}title"))
    assert "partial day, 21/24 hours" in partial.findtext(f"{ATOM}summary")
    bundle = next(item for item in items if "month to date" in item.findtext(f"{ATOM}title"))
    assert scenario.bundle.sha256 in bundle.findtext(f"{ATOM}summary")
    assert "missing days: 2026-11-06" in bundle.findtext(f"{ATOM}summary")


def test_feed_links_keep_the_token_and_entry_links_download(client, scenario, token):
    root, items = entries(feed(client, token))
    assert root.find(f"{ATOM}link[@rel='self']").get("href") == f"{SITE}/downloads/tier1/feed.atom?t={token}"
    assert root.find(f"{ATOM}link[@rel='alternate']").get("href") == f"{SITE}/downloads/tier1?t={token}"
    href = items[-1].find(f"{ATOM}link[@rel='alternate']").get("href")
    assert client.get(href.removeprefix(SITE)).status_code == 200


def test_a_new_day_or_rebuilt_bundle_is_a_new_entry(client, scenario, token):
    _, before = entries(feed(client, token))
    ids_before = {item.findtext(f"{ATOM}id") for item in before}
    with time_machine.travel(NOW.replace(day=11), tick=False):
        publish_day("tier1", TODAY)
        mtd.build_month("tier1", TODAY.replace(day=1), today=TODAY.replace(day=11))
    _, after = entries(feed(client, token))
    new = {item.findtext(f"{ATOM}id") for item in after} - ids_before
    assert any(":daily:2026-11-10:" in entry for entry in new)
    assert any(":mtd:2026-11:" in entry for entry in new)


def test_empty_feed_is_valid(client, token):
    _, items = entries(feed(client, token))
    assert items == []


@pytest.mark.parametrize("bad", [None, "A" * 43])
def test_feed_refuses_bad_tokens_like_the_page(client, scenario, token, bad):
    response = feed(client, bad)
    assert response.status_code == 403
    assert b"pinned post of the Explorer tier on Patreon" in response.content


def test_feed_refuses_another_tiers_token_and_unknown_tiers(client, scenario, token):
    assert feed(client, issue_current("tier2")).status_code == 403
    assert feed(client, token, tier="tier0").status_code == 404


def test_feed_query_budget(client, scenario, token, django_assert_num_queries):
    with django_assert_num_queries(4):  # the listing version; then kept under it: live tokens, bundle, days
        assert feed(client, token).status_code == 200
    with django_assert_num_queries(1):  # the listing version
        assert feed(client, token).status_code == 200
