"""One decorator checks the tier token: every URL that names a tier goes through it, and each
refusal looks the way its readers expect (pages for people, JSON for scripts)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from deliveries.web.access import tier_token

pytestmark = pytest.mark.django_db


def patterns(resolver=None):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from patterns(entry)
        elif isinstance(entry, URLPattern):
            yield entry


def test_every_url_naming_a_tier_is_checked_by_the_tier_token_decorator():
    tier_urls = [entry for entry in patterns() if "<str:tier>" in str(entry.pattern)]
    assert len(tier_urls) == 7  # page, feed, API, two files and two manifests
    for entry in tier_urls:
        view = entry.callback
        while not getattr(view, "checks_tier_token", False) and hasattr(view, "__wrapped__"):
            view = view.__wrapped__  # require_safe's wrapper around it
        assert getattr(view, "checks_tier_token", False), entry.name


def test_the_view_runs_only_with_a_token_that_opens_its_tier(rf, token):
    seen = []

    @tier_token
    def view(request, label):
        seen.append((request.tier.value, request.token, request.validation.state, label))
        return "ok"

    assert view(rf.get("/", {"t": token}), "tier1", label="2026-11-09") == "ok"
    assert seen == [("tier1", token, "current", "2026-11-09")]
    assert view(rf.get("/", {"t": token}), "tier2", label="x").status_code == 403  # another tier's token
    assert view(rf.get("/"), "tier1", label="x").status_code == 403
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("name", "query", "status", "kind"),
    [
        ("tier_page", {}, 403, "text/html"),
        ("tier_page", {"t": "wrong"}, 403, "text/html"),
        ("feed", {}, 403, "text/html"),
        ("api_tier", {}, 401, "application/json"),
        ("api_tier", {"t": "wrong"}, 403, "application/json"),
    ],
)
def test_refusals_are_pages_for_people_and_json_for_scripts(client, name, query, status, kind):
    response = client.get(reverse(f"deliveries:{name}", args=["tier1"]), query)
    assert response.status_code == status
    assert response["Content-Type"].startswith(kind)


def test_an_unknown_tier_is_a_404_before_any_token_is_read(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        page = client.get(reverse("deliveries:tier_page", args=["tier9"]), {"t": "x" * 43})
        api = client.get(reverse("deliveries:api_tier", args=["tier9"]), {"t": "x" * 43})
    assert page.status_code == 404 and api.status_code == 404
    assert api.json()["error"] == "unknown_tier"
