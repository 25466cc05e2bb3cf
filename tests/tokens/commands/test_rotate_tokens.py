"""manage.py rotate_tokens: thin over tokens.rotation, one line per tier, non-zero exit on failure."""

import io

import pytest
from django.core.management import CommandError, call_command

from tokens.management.commands.rotate_tokens import running_under_django_crontab
from tokens.models import RotationEvent, TierToken

pytestmark = pytest.mark.django_db


def run(*args, **kwargs):
    out = io.StringIO()
    call_command("rotate_tokens", *args, stdout=out, **kwargs)
    return out.getvalue().splitlines()


def test_each_run_prints_one_line_per_tier_and_a_summary():
    lines = run("--mode", "init")
    assert len(lines) == 4
    assert [line.split(" UTC ", 1)[1].split(":")[0] for line in lines[:3]] == [
        "init tier1 (Explorer)",
        "init tier2 (Analyst)",
        "init tier3 (Researcher)",
    ]
    assert "init: changed 3 of 3 tier(s)" in lines[3]


def test_tier_option_limits_the_run():
    lines = run("--mode", "init", "--tier", "tier2")
    assert len(lines) == 2 and "tier2 (Analyst)" in lines[0]
    assert list(TierToken.objects.values_list("tier", flat=True)) == ["tier2"]


def test_announce_and_promote_as_cron_calls_them():
    run(mode="init")
    run(mode="announce")
    assert TierToken.objects.filter(state="next").count() == 3
    run(mode="promote")
    assert TierToken.objects.filter(state="retired").count() == 3


def test_failure_exits_non_zero_after_printing_every_tier():
    run("--mode", "init", "--tier", "tier1")
    out = io.StringIO()
    with pytest.raises(CommandError, match="announce failed for tier2, tier3"):
        call_command("rotate_tokens", "--mode", "announce", stdout=out)
    assert len(out.getvalue().splitlines()) == 4


def test_emergency_without_tiers_is_refused():
    run("--mode", "init")
    with pytest.raises(CommandError, match="name the tiers with --tier"):
        run("--mode", "emergency")
    assert not TierToken.objects.filter(state="revoked").exists()


def test_emergency_with_all_rotates_every_tier():
    run("--mode", "init")
    run("--mode", "emergency", "--all")
    assert TierToken.objects.filter(state="revoked").count() == 3


def test_emergency_force_rotates_again_and_force_is_emergency_only():
    run("--mode", "init")
    run("--mode", "emergency", "--tier", "tier1")
    assert "unchanged: already rotated in an emergency" in run("--mode", "emergency", "--tier", "tier1")[0]
    assert "revoked #" in run("--mode", "emergency", "--tier", "tier1", "--force")[0]
    with pytest.raises(CommandError, match="--force only applies"):
        run("--mode", "promote", "--force")


def test_dry_run_writes_nothing():
    lines = run("--mode", "init", "--dry-run")
    assert all("[dry run]" in line for line in lines)
    assert "would issue a first current token" in lines[0]
    assert not TierToken.objects.exists() and not RotationEvent.objects.exists()


def test_tier_and_all_are_exclusive_and_unknown_values_refused():
    for args in (
        ["--mode", "init", "--tier", "tier1", "--all"],
        ["--mode", "init", "--tier", "tier7"],
        ["--mode", "rotate"],
    ):
        with pytest.raises(CommandError):
            run(*args)


def test_actor_defaults_to_command_and_can_be_set_to_cron():
    run("--mode", "init")
    run("--mode", "announce", "--actor", "cron", "--tier", "tier1")
    run("--mode", "announce", "--tier", "tier2")
    actors = list(RotationEvent.objects.order_by("pk").values_list("actor", flat=True))
    assert actors == ["command", "cron", "command"]
    reasons = dict(TierToken.objects.filter(state="next").values_list("tier", "reason"))
    assert reasons == {"tier1": "scheduled", "tier2": "manual"}


def test_django_crontab_runs_are_recorded_as_cron(monkeypatch):
    assert running_under_django_crontab(["manage.py", "crontab", "run", "abc123", "--settings=x"])
    assert not running_under_django_crontab(["manage.py", "rotate_tokens", "--mode", "announce"])
    monkeypatch.setattr("sys.argv", ["manage.py", "crontab", "run", "abc123"])
    run(mode="init")
    assert RotationEvent.objects.get().actor == "cron"
    assert TierToken.objects.filter(reason="first_issue").count() == 3


def test_output_never_contains_a_token():
    from tokens import crypto

    output = run("--mode", "init") + run("--mode", "announce") + run("--mode", "promote")
    output += run("--mode", "announce") + run("--mode", "emergency", "--all")
    text = "\n".join(output)
    for row in TierToken.objects.all():
        assert crypto.unseal_row(row) not in text
        assert row.digest not in text and row.sealed not in text
