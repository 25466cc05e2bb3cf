"""The headless Chromium the browser tests drive: Debian's, through Playwright's sync API (which
runs an event loop, hence DJANGO_ALLOW_ASYNC_UNSAFE for the ORM calls a test makes beside it; the
fixtures are in tests/conftest.py). Screenshots land in test-artifacts/ for a human to look at."""

from pathlib import Path

from django.conf import settings

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
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
