"""Privacy and security of the token pages: headers on every outcome, no token in the logs, no
third-party assets, error pages that leak nothing."""

import io
import logging
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse

from deliveries import storage
from deliveries.web import listing
from tests.support.scenarios import NOW, TODAY, publish_scenario
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db

ROOT = Path(settings.BASE_DIR)


@pytest.fixture
def token():
    return issue_current("tier1")


@pytest.fixture
def console():
    """The configured console handler (root and ``django`` loggers), writing to a buffer."""
    handler = next(h for h in logging.getLogger("django").handlers if isinstance(h, logging.StreamHandler))
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    levels = {name: logging.getLogger(name).level for name in ("", "django", "deliveries")}
    for name in levels:
        logging.getLogger(name).setLevel(logging.INFO)
    yield buffer
    handler.setStream(previous)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def outcomes(token):
    """A request for every kind of answer a token URL can give."""
    day = "2026-11-09"
    return [
        (f"/downloads/tier1?t={token}", 200),
        ("/downloads/tier1?t=" + "A" * 43, 403),
        (f"/downloads/tier1?token={token}x", 403),
        (f"/downloads/tier9?t={token}", 404),
        (f"/downloads/tier1/daily/{day}.parquet?t={token}", 200),
        (f"/downloads/tier1/daily/2026-01-01.parquet?t={token}", 404),
        (f"/downloads/tier1/daily/{day}.parquet?t=nope", 403),
        (f"/downloads/tier1/feed.atom?t={token}", 200),
        (f"/api/downloads/tier1?t={token}", 200),
        ("/api/downloads/tier1", 401),
        ("/api/downloads/tier1?t=nope", 403),
        (f"/api/downloads/tier5?t={token}", 404),
    ]


def test_every_outcome_of_a_token_url_is_no_referrer_and_no_store(client, token):
    with time_machine.travel(NOW, tick=False):
        publish_scenario("tier1")
        for path, status in outcomes(token):
            response = client.get(path)
            assert response.status_code == status, path
            assert response["Referrer-Policy"] == "no-referrer", path
            assert "no-store" in response["Cache-Control"], path


def test_the_token_never_reaches_the_logs(client, token, console, monkeypatch):
    """django.request logs every 4xx/5xx with the request attached; our views log outages."""
    for path, _ in outcomes(token):
        client.get(path)
    publish_scenario("tier1")
    monkeypatch.setattr(storage, "local_path", lambda key: ROOT)  # a directory: the read fails, 503
    client.get(f"/downloads/tier1/daily/{TODAY.replace(day=9)}.parquet?t={token}")
    # what the dev server prints for each request goes through the same handler
    logging.getLogger("django.server").info('"GET /downloads/tier1?t=%s HTTP/1.1" 200 9000', token)
    logging.getLogger("django.request").warning("Forbidden: %s", f"/downloads/tier1?token={token}")

    output = console.getvalue()
    assert "Not Found: /downloads/tier9" in output
    assert "storage unavailable" in output
    assert "t=[redacted]" in output and "token=[redacted]" in output
    assert token not in output


def test_no_third_party_assets_anywhere():
    """Templates and static files reference nothing outside this site (no CDN, no webfonts)."""
    offenders = []
    for folder in ("templates", "static"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "://" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_error_pages_leak_nothing(token):
    client = Client(raise_request_exception=False)
    secret_path = f"/downloads/tier1/nothing-here?t={token}"
    not_found = client.get(secret_path)
    assert not_found.status_code == 404
    assert token not in not_found.content.decode()
    assert "nothing-here" not in not_found.content.decode()


def test_an_unexpected_error_is_a_plain_500(token, monkeypatch):
    def broken(tier, **kwargs):
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(listing, "list_files", broken)
    response = Client(raise_request_exception=False).get(reverse("deliveries:tier_page", args=["tier1"]), {"t": token})
    assert response.status_code == 500
    text = response.content.decode()
    assert "Something went wrong on our side" in text
    for leak in ("hunter2", "RuntimeError", "Traceback", token):
        assert leak not in text
    assert response["Referrer-Policy"] == "no-referrer"


def test_ping_is_a_bare_ok(client):
    response = client.get("/ping")
    assert response.status_code == 200
    assert response.content == b"ok"
