"""The admin's delivery state page answers "did last night work, and what do subscribers see?"
on one page; the record lists are read-only and readable (lines, not JSON; times in UTC)."""

import re
from datetime import date

import pytest
import time_machine
from django.urls import reverse

from deliveries import mtd
from deliveries.models import BuildRun, DailyFile, DownloadCount, MonthBundle
from deliveries.outcomes import Outcome
from tests.support.factories import publish_day
from tests.support.scenarios import NOW, operator_morning
from tokens import rotation
from tokens.models import RotationEvent, TierToken

pytestmark = pytest.mark.django_db

URL = "/admin/delivery-state/"


@pytest.fixture
def morning():
    with time_machine.travel(NOW, tick=False):
        yield operator_morning(NOW)


def squash(html):
    """The text as read: tags out, whitespace collapsed, no space before punctuation."""
    return re.sub(r"\s+([,.:;])", r"\1", re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def row_of(html, tier):
    return html[html.index(f'<tr data-tier="{tier}">') :].split("</tr>", 1)[0]


def test_the_page_is_for_staff_only(client, morning):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_the_front_page_links_to_it_with_last_nights_outcome(admin_client, morning):
    body = admin_client.get("/admin/").content.decode()
    box = body[body.index('data-testid="delivery-state-link"') :].split("</div>", 1)[0]
    assert f'href="{URL}"' in box
    assert "Last build_daily run: Failed, started 2026-11-10 06:00 UTC." in squash(box)  # the manual backfill


def test_per_tier_newest_day_month_strip_and_links(admin_client, morning):
    html = admin_client.get(URL).content.decode()
    tier1 = row_of(html, "tier1")
    assert "2026-11-09" in tier1  # newest published day
    assert "2026-11: 8 days, 1 missing, 1 partial" in squash(tier1)
    strip = re.findall(r'<li class="(\w+)" title="([^"]+)">', tier1)
    states = ["published", "published", "published", "missing", "published", "partial", "published"]
    assert [state for state, _ in strip] == states  # 3 to 9 November
    assert strip[-1][1] == "Mon 2026-11-09: published"
    assert strip[-2][1] == "Sun 2026-11-08: published, partial (hours missing)"
    assert strip[-4][1] == "Fri 2026-11-06: missing"
    current = TierToken.objects.get(tier="tier1", state="current")
    upcoming = TierToken.objects.get(tier="tier1", state="next")
    text = squash(tier1)
    assert f"current #{current.pk} since 2026-11-07 06:00 UTC" in text
    assert f"next #{upcoming.pk} announced 2026-11-10 04:00 UTC" in text
    assert "announce Sun 15 Nov 00:00 UTC" in text and "promote Mon 16 Nov 00:00 UTC" in text
    tier3 = squash(row_of(html, "tier3"))
    assert "2026-11-08" in tier3 and "no next token" in tier3


def test_last_runs_with_outcome_duration_and_first_failure(admin_client, morning):
    html = admin_client.get(URL).content.decode()
    builds = squash(html[html.index('data-testid="build_daily"') :].split("</table>", 1)[0])
    backfill = morning["backfill"]
    assert f"2026-11-10 06:00 UTC build_daily Failed 0.0 s {backfill.error.splitlines()[0]}" in builds
    assert "2026-11-10 00:30 UTC build_daily Success 2 min 12 s –" in builds
    rotations = squash(html[html.index('data-testid="rotate_tokens"') :].split("</table>", 1)[0])
    assert "2026-11-10 04:00 UTC rotate_tokens --mode announce (command line) Success one transaction –" in rotations
    assert reverse("admin:tokens_rotationevent_change", args=[RotationEvent.objects.first().pk]) in html


def test_health_problems_and_warnings_in_words(admin_client, morning):
    html = admin_client.get(URL).content.decode()
    health = squash(html[html.index('data-testid="health"') :].split("</section>", 1)[0])
    assert "Delivery has 1 problem " in health
    assert "Problem stale tier3: newest published day is 2026-11-08, expected 2026-11-09" in health
    assert "Problem mtd_lacks_day" not in health
    assert f"Warning backfill_failed manual build_daily run #{morning['backfill'].pk} (2026-10-01," in health


def test_downloads_chart_is_an_svg_per_tier_on_one_scale(admin_client, morning):
    html = admin_client.get(URL).content.decode()
    chart = html[html.index('data-testid="downloads"') :].split("</section>", 1)[0]
    assert chart.count("<svg") == 3 and "<script" not in chart and "style=" not in chart
    bars = re.findall(
        r'<rect class="ds-bar" x="[\d.]+" y="([\d.]+)" width="8" height="([\d.]+)"><title>([^<]+)</title>', chart
    )
    assert len(bars) == 90  # 30 days x 3 tiers
    by_title = {title: float(height) for _, height, title in bars}
    assert by_title["Sun 2026-11-08: 12 downloads"] == 58  # the peak fills the plot
    assert by_title["Mon 2026-11-09: 5 downloads"] == round(5 / 12 * 58, 1)
    assert by_title["Tue 2026-11-10: 4 downloads"] > 0  # tier 2's bundle; its manifest views do not count
    assert "Mon 2026-10-12: 0 downloads" in by_title and "Sun 2026-10-11: 0 downloads" not in by_title
    assert "Explorer" in chart and "20 in 30 days" in squash(chart)


@pytest.fixture
def one_of_each():
    """One record of each kind, cheaply (the lists' permissions do not depend on what is in them)."""
    publish_day("tier1", date(2026, 11, 8))
    mtd.build_month("tier1", date(2026, 11, 1), today=date(2026, 11, 10))
    BuildRun.objects.create(command="build_daily", outcome=Outcome.SUCCESS)
    DownloadCount.objects.create(tier="tier1", kind="daily", file_label="2026-11-08", day=date(2026, 11, 9), count=1)
    rotation.init(["tier1"])


@pytest.mark.parametrize("model", [BuildRun, DailyFile, MonthBundle, DownloadCount, RotationEvent])
def test_record_lists_have_no_add_change_or_delete(admin_client, one_of_each, model):
    opts = model._meta
    changelist = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert changelist.status_code == 200
    add = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
    assert b'value="delete_selected"' not in changelist.content and f'href="{add}"'.encode() not in changelist.content
    obj = model.objects.first()
    assert admin_client.get(add).status_code == 403
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    detail = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert b'name="_save"' not in detail.content and delete.encode() not in detail.content
    assert model.objects.filter(pk=obj.pk).exists()


def test_daily_files_show_listed_or_delisted_and_filter_on_it(admin_client):
    with time_machine.travel(NOW, tick=False):
        publish_day("tier1", date(2026, 11, 8))
        old = publish_day("tier1", date(2026, 11, 1))
        DailyFile.objects.filter(pk=old.pk).update(deleted_at=NOW)
    url = reverse("admin:deliveries_dailyfile_changelist")
    body = squash(admin_client.get(url).content.decode())
    assert "delisted 2026-11-10 06:00 UTC" in body and " listed " in body
    assert admin_client.get(url, {"listed": "listed"}).context["cl"].result_count == 1
    delisted = admin_client.get(url, {"listed": "delisted"}).context["cl"]
    assert [row.pk for row in delisted.result_list] == [old.pk]


def test_build_run_steps_and_results_are_lines_and_times_say_utc(admin_client, morning):
    run = morning["nightly"]
    body = squash(admin_client.get(reverse("admin:deliveries_buildrun_change", args=[run.pk])).content.decode())
    assert "daily: success in 121.5 s: 1 days" in body and "mtd: success in 9.2 s: tier1 2026-11: built" in body
    assert "2026-11-09: published: x" in body
    assert '{"name"' not in body and "[{" not in body
    assert "2026-11-10 00:30 UTC" in body  # started_at in the UTC date format
    listing = squash(admin_client.get(reverse("admin:deliveries_buildrun_changelist")).content.decode())
    assert "2026-11-10 00:30 UTC" in listing and "2 min 12 s" in listing
    event = RotationEvent.objects.first()
    detail = squash(admin_client.get(reverse("admin:tokens_rotationevent_change", args=[event.pk])).content.decode())
    assert "tier1: announced: announced next token" in detail and '["tier1"]' not in detail
