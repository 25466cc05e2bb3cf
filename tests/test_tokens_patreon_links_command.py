"""manage.py patreon_links: the text to paste, in text, markdown or json, instantly."""

import io
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command

from tokens import crypto, rotation
from tokens.models import TierToken

pytestmark = pytest.mark.django_db
SUNDAY = datetime(2025, 6, 8, tzinfo=UTC)


def run(*args, **kwargs):
    out = io.StringIO()
    call_command("patreon_links", *args, stdout=out, **kwargs)
    return out.getvalue()


@pytest.fixture
def overlap(settings):
    settings.SITE_URL = "https://data.example.com"
    rotation.init(at=SUNDAY - timedelta(days=3))
    rotation.announce(at=SUNDAY)


def test_text_is_the_default(overlap):
    with time_machine.travel(SUNDAY + timedelta(hours=2), tick=False):
        out = run()
    assert out.startswith("Patreon links for the pinned posts (generated 2025-06-08 02:00 UTC)\n")
    assert out.count("Current link (works until Mon 09 Jun 2025 00:00 UTC)") == 3
    for tier in ("tier1", "tier2", "tier3"):
        next_token = crypto.unseal_row(TierToken.objects.get(tier=tier, state="next"))
        assert f"https://data.example.com/downloads/{tier}?t={next_token}" in out


def test_tier_option_is_repeatable(overlap):
    out = run("--tier", "tier3", "--tier", "tier1")
    assert "Explorer (tier1)" in out and "Researcher (tier3)" in out and "Analyst" not in out
    assert out.index("Explorer") < out.index("Researcher")


def test_markdown_format(overlap):
    assert run("--format", "markdown", "--tier", "tier2").startswith("## Patreon links for the pinned posts\n")


def test_json_format(overlap):
    data = json.loads(run("--format", "json"))
    assert [item["plan"] for item in data["tiers"]] == ["Explorer", "Analyst", "Researcher"]


def test_format_keyword_as_other_commands_call_it(overlap):
    assert "Explorer (tier1)" in run(format="text")


def test_it_is_instant(overlap):
    started = time.perf_counter()
    run()
    assert time.perf_counter() - started < 0.5


def test_missing_tokens_exit_non_zero_after_printing_the_rest(settings):
    rotation.init(["tier1"])
    out = io.StringIO()
    with pytest.raises(CommandError, match="no working link to print for tier2, tier3"):
        call_command("patreon_links", stdout=out)
    assert "Explorer (tier1)\n  Link: " in out.getvalue()


def test_unknown_tier_or_format_is_refused(overlap):
    with pytest.raises(CommandError):
        run("--tier", "tier9")
    with pytest.raises(CommandError):
        run("--format", "html")
