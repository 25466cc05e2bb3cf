"""The operator meets a crashed run in the admin, in a real headless Chromium (tests/support/browser.py)."""

import pytest
from django.conf import settings as django_settings
from django.test import Client

from deliveries import pipeline, sample
from deliveries.models import BuildRun
from deliveries.outcomes import Outcome
from tests.support.browser import ARTIFACTS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_orm_beside_playwright"),
]


def test_a_run_killed_mid_build_shows_as_crashed_in_the_admin(live_server, context, settings, django_user_model):
    django_user_model.objects.create_superuser("ops", password="pw-for-tests-only")
    killed = BuildRun.objects.create(command="build_daily", holder="cron-host:4242:0badc0de")
    sample.write_day(settings.ARCHIVE_ROOT, sample.yesterday_utc(), entries_per_hour=1, samples_per_entry=2)
    nightly = pipeline.run_nightly()  # the next run takes the lock and finds the dead one
    assert nightly.outcome == Outcome.SUCCESS

    # Signed in by session cookie: the login form in Chromium is tests/site/test_operator_browser.py's journey.
    client = Client()
    client.force_login(django_user_model.objects.get(username="ops"))
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/deliveries/buildrun/")
    page.get_by_role("link", name="Crashed: its process died mid-run").click()  # the outcome filter
    page.wait_for_url("**outcome__exact=crashed")  # count() does not wait for the filtered page
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    row = rows.first.inner_text()
    assert "Crashed: its process died mid-run" in row
    assert "the process ended without recording an outcome" in row
    rows.first.locator("th a").click()
    detail = page.locator("#content").inner_text()
    assert "cron-host:4242:0badc0de" in detail  # which process it was
    assert nightly.run.holder in detail  # and which run noticed it
    page.screenshot(path=str(ARTIFACTS / "admin-crashed-run.png"), full_page=True)
    assert BuildRun.objects.get(pk=killed.pk).outcome == Outcome.CRASHED
