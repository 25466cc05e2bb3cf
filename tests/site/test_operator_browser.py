"""The operator's journeys in a real headless Chromium, against a live server, as the operator meets
them: log in, read the delivery state, announce, promote and emergency-rotate from the admin
(confirm page, submit, result; the old link then gets 403 over HTTP), open the Patreon links, log out.

Twice: with DEBUG on (pytest-django's live server, as ``make run`` serves it) and with DEBUG off
behind HTTPS (gunicorn with the production settings, TLS on 127.0.0.1, a scratch PostgreSQL
database, every step a ``manage.py`` command). A real browser sends ``Origin`` with every form
POST, which the test client never does: this is where a Referrer-Policy that breaks Django's
CSRF origin check, or a Content-Security-Policy that blocks the admin's own scripts and styles,
shows. Every page is also checked for CSP violations. Screenshots land in test-artifacts/.
"""

import re
import secrets

import pytest
from django.utils import timezone

from deliveries import sample
from tests.support.browser import ARTIFACTS
from tests.support.databases import scratch_postgres
from tests.support.processes import manage, production_env
from tests.support.scenarios import operator_morning
from tests.support.servers import UNVERIFIED, fetch, free_port, gunicorn, self_signed_certificate

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("allow_orm_beside_playwright")]

PASSWORD = "operator-" + secrets.token_urlsafe(12)


def http_status(url):
    """The status of a plain GET of ``url`` (the old link, as a subscriber's script would fetch it)."""
    return fetch(url, context=UNVERIFIED)[0]


class Watch:
    """Console errors and failed requests that mean the page did not work as the operator saw it."""

    def __init__(self, page):
        self.problems = []
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self.response)

    def console(self, message):
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def response(self, response):
        if response.status == 403 and "/admin/" in response.url:
            self.problems.append(f"403 from {response.url} (CSRF?)")


def shot(page, name):
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def links_on_patreon_page(page):
    """{tier: (current link, new link or None)} as the Patreon links page shows them."""
    found = {}
    for tier in ("tier1", "tier2", "tier3"):
        boxes = page.locator(f'[data-tier="{tier}"] textarea')
        values = [boxes.nth(i).input_value().strip() for i in range(boxes.count())]
        found[tier] = (values[0], values[1] if len(values) > 1 else None)
    return found


def confirm(page, button_text):
    """Submit a rotation's confirmation page; wait for the Patreon links page it leads to."""
    page.get_by_role("button", name=button_text).click()
    page.wait_for_url("**/admin/tokens/tiertoken/patreon/")


def operator_journey(browser, base, name, **context_options):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    page = context.new_page()
    watch = Watch(page)
    try:
        # Log in with the form, as a person does.
        page.goto(f"{base}/admin/")
        page.fill("#id_username", "operator")
        page.fill("#id_password", PASSWORD)
        with page.expect_navigation() as login:
            page.get_by_role("button", name="Log in").click()
        assert login.value.status == 200, page.locator("body").inner_text()[:500]  # a CSRF refusal is a 403
        assert page.url == f"{base}/admin/"
        assert page.locator('[data-testid="delivery-state-link"]').is_visible()
        shot(page, f"{name}-admin-home")

        # The delivery state, one click from the front page.
        page.get_by_role("link", name="Delivery state").first.click()
        page.wait_for_url(f"{base}/admin/delivery-state/")
        assert page.locator("h1").inner_text() == "Delivery state"
        assert page.locator('[data-testid="tiers"] tbody tr').count() == 3
        assert page.locator(".ds-strip li").count() == 21
        assert page.locator('[data-testid="downloads"] svg').count() == 3
        assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        shot(page, f"{name}-delivery-state")

        # The record lists, as the operator reads them at 1280 px.
        for path, shot_name in (
            ("/admin/deliveries/dailyfile/", "daily-files"),
            ("/admin/deliveries/monthbundle/", "month-bundles"),
            ("/admin/tokens/rotationevent/", "rotation-events"),
            ("/admin/deliveries/buildrun/", "build-runs"),
        ):
            page.goto(base + path)
            shot(page, f"{name}-{shot_name}")
            assert page.locator("#result_list").is_visible()
            assert page.locator(".object-tools .addlink").count() == 0
            # every column in view: neither the page nor the results table scrolls sideways
            assert page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
            assert page.evaluate("(e => e.scrollWidth <= e.clientWidth)(document.querySelector('.results'))"), path
        page.locator("#result_list tbody tr th a").first.click()  # the newest build run
        page.wait_for_url("**/admin/deliveries/buildrun/*/change/")
        assert page.locator(".field-steps_lines .record-lines li").count() >= 1
        assert "UTC" in page.locator(".field-started_at").inner_text()
        shot(page, f"{name}-build-run")

        # The links before any rotation: one current link per tier.
        page.goto(f"{base}/admin/tokens/tiertoken/")
        page.get_by_role("link", name="Patreon links").click()
        page.wait_for_url("**/admin/tokens/tiertoken/patreon/")
        before = links_on_patreon_page(page)
        assert http_status(before["tier1"][0]) == 200

        # Announce now: confirm page (every tier ticked), submit, the result on the links page.
        page.goto(f"{base}/admin/tokens/tiertoken/")
        page.get_by_role("link", name="Announce now").click()
        page.wait_for_url("**/rotate/announce/")
        assert page.locator('input[name="tier"]:checked').count() == 3
        shot(page, f"{name}-confirm-announce")
        confirm(page, "Yes, announce new links for the selected tiers")
        assert page.locator(".messagelist .success").first.text_content().startswith("Tier1 (Explorer): announced")
        announced = links_on_patreon_page(page)
        assert announced["tier1"][0] == before["tier1"][0] and announced["tier1"][1]
        assert http_status(announced["tier1"][1]) == 200 and http_status(before["tier1"][0]) == 200

        # Promote now, tier 1 only: the old link stops at once, over HTTP.
        page.goto(f"{base}/admin/tokens/tiertoken/")
        page.get_by_role("link", name="Promote now").click()
        page.wait_for_url("**/rotate/promote/")
        page.uncheck("#tier-tier2")
        page.uncheck("#tier-tier3")
        confirm(page, "Yes, promote the new links of the selected tiers")
        assert "Tier1 (Explorer): next token" in page.locator(".messagelist").text_content()
        promoted = links_on_patreon_page(page)
        assert promoted["tier1"] == (announced["tier1"][1], None)
        assert http_status(before["tier1"][0]) == 403
        assert http_status(promoted["tier1"][0]) == 200

        # Emergency, from the list's action on a tier 1 row: confirm page, submit, old link 403.
        page.goto(f"{base}/admin/tokens/tiertoken/?tier__exact=tier1&state__exact=current")
        page.locator("#result_list tbody input.action-select").first.check()
        page.select_option('select[name="action"]', "emergency_rotate")
        page.get_by_role("button", name="Go").click()
        page.wait_for_url("**/admin/tokens/tiertoken/rotate/emergency/?tier=tier1")
        assert page.locator("#tier-tier1").is_checked() and not page.locator("#tier-tier2").is_checked()
        shot(page, f"{name}-confirm-emergency")
        confirm(page, "Yes, revoke the selected tiers' links and issue new ones")
        assert "Tier1 (Explorer): revoked" in page.locator(".messagelist").text_content()
        rotated = links_on_patreon_page(page)
        assert rotated["tier1"][0] != promoted["tier1"][0]
        assert http_status(promoted["tier1"][0]) == 403
        assert http_status(rotated["tier1"][0]) == 200
        assert rotated["tier2"] == promoted["tier2"]  # other tiers untouched
        shot(page, f"{name}-patreon-links")

        # Log out from the Patreon page (the header's logout is a form POST from this page).
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{base}/admin/logout/")
        assert "Logged out" in page.locator("#content h1").inner_text()
        page.goto(f"{base}/admin/delivery-state/")
        assert "/admin/login/" in page.url  # staff only

        # The front door and a tier page, in the same browser: no CSP violation there either.
        page.goto(f"{base}/")
        assert page.locator("h1").inner_text() == "Instrumetriq downloads"
        page.goto(rotated["tier3"][0])
        assert page.locator("h1").inner_text() == "Researcher downloads"
        assert page.locator("#chart svg rect").count() >= 1
        shot(page, f"{name}-tier3-page")
    finally:
        context.close()
    assert watch.problems == []


def test_operator_journey_with_debug_on(browser, live_server, settings, django_user_model):
    """DEBUG on, as `make run` serves the demo (live server: local storage, the test database)."""
    settings.DEBUG = True
    settings.SITE_URL = live_server.url
    django_user_model.objects.create_superuser("operator", password=PASSWORD, email="")
    operator_morning(timezone.now(), announce=False)
    operator_journey(browser, live_server.url, "debug")


def test_operator_journey_with_debug_off_behind_https(browser, tmp_path):
    """The production settings (DEBUG off: secure cookies, HSTS, SSL redirect, hashed static files,
    CSRF trusted origin from SITE_URL) behind HTTPS, set up with the operator's own commands."""
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    archive = tmp_path / "archive"
    sample.write_archive(archive, 3, entries_per_hour=2, samples_per_entry=3)
    with scratch_postgres("instrumetriq_browser") as database_url:
        env = production_env(
            ALLOWED_HOSTS="127.0.0.1",
            SITE_URL=base,
            DATABASE_URL=database_url,
            STORAGE_BACKEND="local",
            LOCAL_STORAGE_ROOT=tmp_path / "storage",
            ARCHIVE_ROOT=archive,
            VAR_DIR=tmp_path / "var",
            DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        )
        manage(env, "migrate", "--noinput", "-v0")
        manage(env, "collectstatic", "--noinput", "-v0")
        manage(env, "build_daily")
        manage(env, "rotate_tokens", "--mode", "init")
        manage(env, "createsuperuser", "--noinput", "--username", "operator", "--email", "")
        certificate = self_signed_certificate(tmp_path)
        with gunicorn(env, port, tmp_path / "gunicorn.log", certificate=certificate):
            operator_journey(browser, base, "production", ignore_https_errors=True)
    text = (tmp_path / "gunicorn.log").read_text()
    assert "CSRF" not in text and not re.search(r"Forbidden \(", text), text[-2000:]
