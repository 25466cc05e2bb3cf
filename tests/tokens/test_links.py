"""The Patreon text: per tier and plan, the link to paste, both links labelled during the overlap."""

import json
from datetime import timedelta

import pytest

from tests.support.tokens import MONDAY, SATURDAY, SUNDAY, token_of
from tokens import links, rotation
from tokens.models import TierToken
from tokens.validation import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(settings):
    settings.SITE_URL = "https://data.example.com"
    rotation.init(at=SATURDAY)


@pytest.fixture
def overlap(issued):
    rotation.announce(at=SUNDAY)


def test_outside_the_overlap_each_tier_has_one_link_with_its_plan(issued):
    text = links.render(links.tier_links(), at=SATURDAY)
    for tier, plan in (("tier1", "Explorer"), ("tier2", "Analyst"), ("tier3", "Researcher")):
        assert (
            f"{plan} ({tier})\n  Link: https://data.example.com/downloads/{tier}?t={token_of(tier, 'current')}\n"
            in text
        )
        assert f"  Paste this link into the {plan} pinned post.\n" in text
    assert "New link" not in text


def test_during_the_overlap_both_links_are_labelled_with_one_line_of_instructions(overlap):
    text = links.render(links.tier_links(["tier2"]), at=SUNDAY + timedelta(hours=1))
    current, upcoming = token_of("tier2", "current"), token_of("tier2", "next")
    assert text == (
        "Patreon links for the pinned posts (generated 2025-06-08 01:00 UTC)\n"
        "\n"
        "Analyst (tier2)\n"
        f"  Current link (works until Mon 09 Jun 2025 00:00 UTC): https://data.example.com/downloads/tier2?t={current}\n"
        "  New link (works now, the only one after Mon 09 Jun 2025 00:00 UTC): "
        f"https://data.example.com/downloads/tier2?t={upcoming}\n"
        "  Replace the link in the Analyst pinned post with the new link now; "
        "the current link stops working Mon 09 Jun 2025 00:00 UTC.\n"
    )


def test_markdown_format(overlap):
    text = links.render(links.tier_links(["tier1"]), "markdown", at=SUNDAY)
    assert text.startswith(
        "## Patreon links for the pinned posts\n\n_Generated 2025-06-08 00:00 UTC._\n\n### Explorer (tier1)\n"
    )
    assert (
        f"- **Current link** (works until Mon 09 Jun 2025 00:00 UTC): <https://data.example.com/downloads/tier1?t={token_of('tier1', 'current')}>"
        in text
    )
    assert (
        f"- **New link** (works now, the only one after Mon 09 Jun 2025 00:00 UTC): <https://data.example.com/downloads/tier1?t={token_of('tier1', 'next')}>"
        in text
    )
    assert "Replace the link in the Explorer pinned post" in text


def test_json_format(overlap):
    rotation.promote(["tier3"], at=MONDAY)
    data = json.loads(links.render(links.tier_links(), "json", at=MONDAY))
    assert data["generated_at"] == "2025-06-09T00:00:00+00:00"
    by_tier = {item["tier"]: item for item in data["tiers"]}
    assert list(by_tier) == ["tier1", "tier2", "tier3"]
    assert by_tier["tier1"]["plan"] == "Explorer"
    assert by_tier["tier1"]["next_url"] == f"https://data.example.com/downloads/tier1?t={token_of('tier1', 'next')}"
    assert by_tier["tier1"]["current_works_until"] == "2025-06-09T00:00:00+00:00"
    assert by_tier["tier3"]["next_url"] is None and by_tier["tier3"]["current_works_until"] is None
    assert by_tier["tier3"]["current_url"].endswith(token_of("tier3", "current"))
    assert all(item["ok"] for item in data["tiers"])


def test_printed_links_open_their_tier_and_only_it(overlap):
    for item in links.tier_links():
        for url in (item.current_url, item.next_url):
            token = url.split("?t=", 1)[1]
            assert url.startswith(f"https://data.example.com/downloads/{item.tier}?t=")
            assert [tier for tier in ("tier1", "tier2", "tier3") if validate(tier, token)] == [item.tier]


def test_tiers_without_a_token_say_how_to_fix_it(settings):
    settings.SITE_URL = "https://data.example.com"
    rotation.init(["tier1"])
    items = {item.tier: item for item in links.tier_links()}
    assert items["tier1"].ok and not items["tier2"].ok
    assert "run rotate_tokens --mode init" in links.render(links.tier_links())


def test_a_changed_token_secret_is_reported_not_printed_as_a_wrong_link(issued, settings):
    settings.TOKEN_SECRET = "rotated-secret-" * 5
    item = links.tier_links(["tier1"])[0]
    assert not item.ok and item.current_url is None
    assert "TOKEN_SECRET changed" in item.instructions
    assert "--mode emergency --tier tier1" in item.instructions


def test_unknown_format_is_refused(issued):
    with pytest.raises(ValueError, match="unknown format"):
        links.render(links.tier_links(), "html")


def test_links_are_printed_with_a_single_query(overlap, django_assert_num_queries):
    with django_assert_num_queries(1):
        links.render(links.tier_links())


def test_a_tier_with_only_a_next_token_says_what_to_do(overlap):
    TierToken.objects.filter(tier="tier1", state="current").update(state="revoked", revoked_at=SUNDAY)
    item = links.tier_links(["tier1"])[0]
    assert not item.ok and item.next_url and item.current_url is None
    assert item.problem == "No current token, only a next one: run rotate_tokens --mode promote."
    text = links.render(links.tier_links(["tier1"]))
    assert "New link" in text and "Current link" not in text and item.problem in text


@pytest.mark.parametrize("damage", ["digest", "sealed", "not hex"])
def test_one_damaged_token_row_is_reported_as_that_row_not_as_a_changed_secret(issued, damage):
    row = TierToken.objects.get(tier="tier2", state="current")
    if damage == "digest":
        TierToken.objects.filter(pk=row.pk).update(digest="0" * 64)
    elif damage == "sealed":
        TierToken.objects.filter(pk=row.pk).update(sealed=("f" if row.sealed[0] != "f" else "e") + row.sealed[1:])
    else:
        TierToken.objects.filter(pk=row.pk).update(sealed="zz" * 32)
    items = {item.tier: item for item in links.tier_links()}
    assert items["tier1"].ok and items["tier3"].ok
    assert not items["tier2"].ok and items["tier2"].current_url is None
    assert items["tier2"].problem.startswith(f"The database row of token #{row.pk} (current) is unreadable")
    assert "TOKEN_SECRET changed" not in items["tier2"].problem
    assert "rotate_tokens --mode emergency --tier tier2" in items["tier2"].problem
    # asked for alone, the damaged tier is still told apart from a changed secret (the other tiers open)
    assert links.tier_links(["tier2"])[0].problem == items["tier2"].problem


def test_a_changed_secret_fails_every_tier_as_a_changed_secret(issued, settings):
    settings.TOKEN_SECRET = "rotated-secret-" * 5
    assert all("TOKEN_SECRET changed" in item.problem for item in links.tier_links())
