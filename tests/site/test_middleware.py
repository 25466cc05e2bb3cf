"""Headers of every response: no-referrer wherever a URL carries (or may carry) a token, same-origin
everywhere else so the admin's forms pass Django's CSRF origin check in real browsers, and one
strict Content-Security-Policy on all of them. (tests/site/test_operator_browser.py proves it in Chromium.)"""

import re
from pathlib import Path

import pytest
import time_machine
from django.conf import settings

from tests.support.scenarios import NOW, publish_scenario
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)
STRICT = {
    "default-src": "'none'",
    "script-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "manifest-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def policy(response):
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.fixture
def token():
    with time_machine.travel(NOW, tick=False):
        publish_scenario("tier1")
    return issue_current("tier1")


def token_urls(token):
    return [
        (f"/downloads/tier1?t={token}", 200),
        ("/downloads/tier1?t=" + "A" * 43, 403),
        (f"/downloads/tier1/daily/2026-11-09.parquet?t={token}", 200),
        (f"/downloads/tier1/daily/2026-01-01.parquet?t={token}", 404),
        (f"/downloads/tier1/feed.atom?t={token}", 200),
        (f"/api/downloads/tier1?t={token}", 200),
        ("/files/x.parquet?t=forged", 403),
        (f"/download/tier1?t={token}", 404),  # a mistyped path with a token in it
        (f"/?token={token}", 200),  # a token pasted onto the front page
    ]


def other_urls():
    return [("/", 200), ("/admin/login/", 200), ("/healthz", 503), ("/ping", 200), ("/no-such-page", 404)]


def test_token_urls_are_no_referrer_and_no_store(client, token):
    for url, status in token_urls(token):
        response = client.get(url)
        assert response.status_code == status, url
        assert response["Referrer-Policy"] == "no-referrer", url
        assert "no-store" in response["Cache-Control"], url


def test_every_other_page_is_same_origin_so_csrf_origin_checks_work(client, admin_client, token):
    for url, status in other_urls():
        response = client.get(url)
        assert response.status_code == status, url
        assert response["Referrer-Policy"] == "same-origin", url
    for url in ("/admin/", "/admin/delivery-state/", "/admin/tokens/tiertoken/patreon/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert response["Referrer-Policy"] == "same-origin", url
    # The Patreon page holds live links in its body: never cached, and its URL has no token.
    assert "no-store" in admin_client.get("/admin/tokens/tiertoken/patreon/")["Cache-Control"]


def test_the_landing_page_says_where_subscribers_find_their_link(client):
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/").content.decode()))
    assert "pinned post of your tier on Patreon" in text
    assert "Explorer , Analyst and Researcher" in text or "Explorer, Analyst and Researcher" in text
    assert 'href="/admin/"' in client.get("/").content.decode()
    assert '<meta name="referrer"' not in client.get("/").content.decode()


def test_one_strict_csp_on_every_response(client, admin_client, token):
    responses = [client.get(url) for url, _ in token_urls(token) + other_urls()]
    responses += [admin_client.get(url) for url in ("/admin/", "/admin/delivery-state/", "/admin/deliveries/buildrun/")]
    responses.append(client.get("/static/css/site.css"))
    for response in responses:
        directives = policy(response)
        for name, value in STRICT.items():
            assert directives[name] == value, (response.request["PATH_INFO"], name)
        assert re.fullmatch(r"'self'( 'nonce-[A-Za-z0-9+/=]+')?", directives["style-src"])
        header = response["Content-Security-Policy"]
        assert "unsafe-inline" not in header and "unsafe-eval" not in header


def test_settings_keep_the_csp_strict():
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    assert all("'unsafe-inline'" not in values and "'unsafe-eval'" not in values for values in directives.values())


INLINE = [
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style(?![^>]*\snonce=)[^>]*>", re.I), "a <style> without the nonce"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_no_template_has_inline_script_or_style_the_csp_would_block():
    """Scripts and styles are static files; computed CSS goes in a <style nonce>. A template that
    breaks this renders wrongly in every browser while the test client sees nothing amiss."""
    offenders = []
    for folder in (ROOT / "templates", ROOT / "tokens" / "templates", ROOT / "deliveries" / "templates"):
        for path in folder.rglob("*.html") if folder.exists() else []:
            text = path.read_text(encoding="utf-8")
            for pattern, what in INLINE:
                if pattern.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}: {what}")
    assert offenders == []
