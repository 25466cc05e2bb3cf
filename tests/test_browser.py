"""The subscriber's view in a real headless Chromium: the page, a download, the 403 page.

Debian's Chromium driven by Playwright's sync API (which runs an event loop, hence
DJANGO_ALLOW_ASYNC_UNSAFE for the ORM calls made from the test). Screenshots land in
test-artifacts/ for a human to look at.
"""

import hashlib
from pathlib import Path

import pytest
from django.utils import timezone

from .test_views_support import issue_current, publish_scenario

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module", autouse=True)
def allow_orm_beside_playwright():
    """Set only while these tests run: in os.environ for the whole session it would leak into
    subprocesses (``check --deploy`` rightly refuses it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(allow_orm_beside_playwright):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


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
    # readable on a phone: nothing wider than the screen but the chart's own scroller
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0


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
