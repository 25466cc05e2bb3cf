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


@pytest.mark.parametrize("database", ["not a database", "no tables"])
def test_an_unreadable_database_is_one_line_and_a_non_zero_exit(tmp_path, database):
    """Run as the operator runs it: a real process, its stderr as the terminal shows it."""
    import os
    import subprocess
    import sys

    from django.conf import settings

    path = tmp_path / "db.sqlite3"
    if database == "not a database":
        path.write_bytes(b"this is not an SQLite file " * 100)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "DJANGO_ALLOW"))}
    env.update(VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{path}")
    result = subprocess.run(
        [sys.executable, "manage.py", "patreon_links"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: cannot read the tokens: the database is unreadable (")
    assert ("file is not a database" if database == "not a database" else "no such table") in lines[0]
