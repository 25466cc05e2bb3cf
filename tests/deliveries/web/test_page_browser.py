"""The subscriber's view in a real headless Chromium (tests/support/browser.py): the page, a
download, the 403 page. Screenshots land in test-artifacts/ for a human to look at.
"""

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from deliveries import build, mtd, sample
from tests.support.browser import ARTIFACTS
from tests.support.scenarios import publish_scenario
from tests.support.tokens import issue_current

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_orm_beside_playwright"),
]

PHONE = {"width": 390, "height": 844}


def test_valid_link_shows_files_and_downloads_the_right_bytes(live_server, context, local_storage):
    today = timezone.now().date()
    scenario = publish_scenario("tier1", today=today, span=max(9, today.day - 1))
    token = issue_current("tier1")
    third_party = []
    page = context.new_page()
    page.on(
        "request", lambda request: None if request.url.startswith(live_server.url) else third_party.append(request.url)
    )
    page.goto(f"{live_server.url}/downloads/tier1?t={token}")

    assert page.locator("h1").inner_text() == "Explorer downloads"
    assert page.locator('[data-testid="mtd"]').is_visible()
    rows = page.locator('[data-testid="daily"] tbody tr')
    assert rows.count() == 7
    assert rows.first.get_attribute("data-date") == scenario.retained[0].isoformat()
    assert page.locator("#chart svg rect.missing").count() >= 1
    assert page.locator("#chart svg rect.partial").count() == 1
    page.screenshot(path=ARTIFACTS / "tier-page-desktop.png", full_page=True)

    newest = scenario.dailies[scenario.retained[0]]
    with page.expect_download() as info:
        rows.first.get_by_role("link", name=f"Download Parquet for {newest.date.isoformat()}").click()
    download = info.value
    assert download.suggested_filename == newest.download_filename
    data = Path(download.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == newest.sha256
    assert data == (local_storage / newest.key).read_bytes()
    assert third_party == []

    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / "tier-page-phone.png", full_page=True)
    # readable on a phone: the daily files table included, nothing makes the page scroll sideways
    assert fits_the_screen(page)
    size = page.locator('[data-testid="daily"] tbody tr').first.locator("td.num").nth(1)
    box = size.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]  # the size column is not cut off


def test_invalid_link_shows_the_403_page(live_server, context):
    issue_current("tier1")
    page = context.new_page()
    response = page.goto(f"{live_server.url}/downloads/tier1?t={'A' * 43}")
    assert response.status == 403
    assert page.locator("h1").inner_text() == "This link is not valid, or no longer valid"
    assert "pinned post of the Explorer tier on Patreon" in page.content()
    page.screenshot(path=ARTIFACTS / "forbidden-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / "forbidden-phone.png", full_page=True)


def outside_their_card(page, section):
    """The elements of a section's card that stick out of it (at the right)."""
    return page.evaluate(
        """section => {
            const card = document.querySelector(section + ' .card').getBoundingClientRect();
            return [...document.querySelectorAll(section + ' .card *')]
                .filter(e => e.getBoundingClientRect().right > card.right + 0.5)
                .map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 30));
        }""",
        section,
    )


def fits_the_screen(page):
    """No sideways scrolling of the page itself (a table may scroll inside its own box)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_profiles_preview_and_query_snippets_are_readable_on_desktop_and_phone(live_server, context, settings):
    """Tier 3 built by the real builder from a small sample archive: the columns' profiles with
    their histograms, the newest day's first rows, the query snippets with the real link, at
    desktop width and at 390 px, where nothing makes the page scroll sideways."""
    settings.SITE_URL = live_server.url
    today = timezone.now().date()
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    for day in days:  # the newest partial: its badge made the daily table overflow a phone
        missing = (5, 6) if day == days[-1] else ()
        sample.write_day(settings.ARCHIVE_ROOT, day, entries_per_hour=2, samples_per_entry=30, missing_hours=missing)
        assert build.build_day(day, tiers=["tier3"]).outcome == "published"
    assert mtd.build_month("tier3", days[-1].replace(day=1), today=today).outcome == "built"
    token = issue_current("tier3")
    page = context.new_page()
    page.goto(f"{live_server.url}/downloads/tier3?t={token}")

    preview = page.locator('[data-testid="preview"]')
    assert preview.is_visible()
    assert preview.locator("tbody tr").count() >= 5
    preview.locator("tbody tr").first.locator("details").first.locator("summary").click()  # unfold a struct
    assert preview.locator("tbody tr").first.locator("details[open] dl").first.is_visible()

    columns = page.locator("#columns")
    prices = columns.locator("details", has=page.locator("summary", has_text="spot_prices"))
    prices.locator("summary").click()
    assert prices.locator(".leaves .hist").first.is_visible()
    assert prices.locator(".leaves .prof").first.inner_text().endswith(" · 30 a row")  # price samples a row
    assert columns.locator(".prof").first.inner_text().startswith("no nulls · ")  # symbol

    url = f"{live_server.url}/downloads/tier3/mtd/{days[-1]:%Y-%m}.parquet?t={token}"
    assert f'url = "{url}"' in page.locator("#query-pandas").inner_text()
    assert f'url = "{url}"' in page.locator("#query-polars").inner_text()
    page.screenshot(path=ARTIFACTS / "tier3-profiles-desktop.png", full_page=True)
    assert fits_the_screen(page)

    page.set_viewport_size(PHONE)
    page.locator("#preview").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "tier3-profiles-phone.png", full_page=True)
    assert fits_the_screen(page)
    for section in ("mtd", "daily", "chart", "preview", "use", "query", "columns"):
        box = page.locator(f"#{section}").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], section
    for section in ("#mtd", "#daily", "#columns"):  # the daily rows' size was cut off at 390 px
        assert outside_their_card(page, section) == [], section
