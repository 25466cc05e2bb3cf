"""Rotation modes: what each does, that each is safe to rerun, and that no tier is ever left without a token."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from deliveries.tiers import Tier
from tests.support.tokens import MONDAY, SUNDAY, token_of
from tokens import crypto, rotation
from tokens.models import Reason, RotationEvent, TierToken, TokenState
from tokens.rotation import Action
from tokens.validation import Validation, validate

pytestmark = pytest.mark.django_db

WEDNESDAY = datetime(2025, 6, 4, 9, tzinfo=UTC)
NEXT_SUNDAY, NEXT_MONDAY = SUNDAY + timedelta(days=7), MONDAY + timedelta(days=7)


def live(tier):
    return {row.state: row for row in TierToken.objects.live().filter(tier=tier)}


def actions(result):
    return {outcome.tier: outcome.action for outcome in result.outcomes}


def counts():
    return TierToken.objects.count(), RotationEvent.objects.count()


@pytest.fixture
def initialised():
    with time_machine.travel(WEDNESDAY, tick=False):
        rotation.init()


# --- init ----------------------------------------------------------------------------------------


def test_init_issues_a_current_token_to_every_tier():
    result = rotation.init(at=WEDNESDAY)
    assert actions(result) == dict.fromkeys(Tier.values, Action.ISSUED)
    for tier in Tier.values:
        row = TierToken.objects.get(tier=tier)
        assert (row.state, row.reason, row.promoted_at, row.announced_at) == ("current", "first_issue", WEDNESDAY, None)
        assert validate(tier, crypto.unseal_row(row))


def test_init_twice_keeps_the_first_tokens(initialised):
    before = {tier: token_of(tier, "current") for tier in Tier.values}
    result = rotation.init()
    assert actions(result) == dict.fromkeys(Tier.values, Action.UNCHANGED)
    assert {tier: token_of(tier, "current") for tier in Tier.values} == before
    assert "already has current token" in result.outcomes[0].message


def test_init_fills_only_the_tiers_without_a_current_token():
    rotation.init(["tier2"])
    assert actions(rotation.init()) == {"tier1": Action.ISSUED, "tier2": Action.UNCHANGED, "tier3": Action.ISSUED}


# --- announce --------------------------------------------------------------------------------------


def test_announce_issues_a_next_token_and_both_work(initialised):
    current = token_of("tier1", "current")
    result = rotation.announce(at=SUNDAY)
    assert actions(result) == dict.fromkeys(Tier.values, Action.ANNOUNCED)
    upcoming = live("tier1")[TokenState.NEXT]
    assert (upcoming.announced_at, upcoming.created_at, upcoming.promoted_at) == (SUNDAY, SUNDAY, None)
    assert validate("tier1", current) and validate("tier1", crypto.unseal_row(upcoming))
    assert "both work until the promote Mon 09 Jun 2025 00:00 UTC" in result.outcomes[0].message


def test_announce_twice_keeps_one_next(initialised):
    rotation.announce(at=SUNDAY)
    first = token_of("tier2", "next")
    result = rotation.announce(at=SUNDAY + timedelta(minutes=5))
    assert actions(result) == dict.fromkeys(Tier.values, Action.UNCHANGED)
    assert TierToken.objects.filter(state="next").count() == 3
    assert token_of("tier2", "next") == first
    assert "already announced" in result.outcomes[1].message
    assert "to be promoted Mon 09 Jun 2025 00:00 UTC" in result.outcomes[1].message


def test_announce_rerun_after_a_missed_promote_says_the_promote_is_overdue(initialised):
    rotation.announce(at=SUNDAY)
    result = rotation.announce(at=MONDAY + timedelta(hours=3))
    assert "its promote was due Mon 09 Jun 2025 00:00 UTC (run promote)" in result.outcomes[0].message
    assert "to be promoted" not in result.outcomes[0].message


def test_announce_without_a_current_token_fails_for_that_tier_only():
    rotation.init(["tier1"])
    result = rotation.announce()
    assert actions(result) == {"tier1": Action.ANNOUNCED, "tier2": Action.FAILED, "tier3": Action.FAILED}
    assert not result.ok
    assert "run rotate_tokens --mode init" in result.outcomes[1].message
    assert not RotationEvent.objects.latest("pk").ok


@pytest.mark.parametrize(
    ("actor", "reason"), [("cron", Reason.SCHEDULED), ("command", Reason.MANUAL), ("admin", Reason.MANUAL)]
)
def test_announce_records_why_the_token_was_issued(initialised, actor, reason):
    rotation.announce(["tier1"], actor=actor)
    assert live("tier1")[TokenState.NEXT].reason == reason


# --- promote ---------------------------------------------------------------------------------------


def test_promote_makes_next_current_and_retires_the_old_one_at_once(initialised):
    rotation.announce(at=SUNDAY)
    old, new = token_of("tier1", "current"), token_of("tier1", "next")
    old_pk = live("tier1")[TokenState.CURRENT].pk
    result = rotation.promote(at=MONDAY)
    assert actions(result) == dict.fromkeys(Tier.values, Action.PROMOTED)
    retired = TierToken.objects.get(pk=old_pk)
    assert (retired.state, retired.retired_at, retired.ended_by_id) == ("retired", MONDAY, result.event_id)
    promoted = live("tier1")[TokenState.CURRENT]
    assert (promoted.promoted_at, promoted.announced_at) == (MONDAY, SUNDAY)
    assert not validate("tier1", old)
    assert validate("tier1", new).state == "current"


def test_promote_twice_does_nothing_the_second_time_and_says_so(initialised):
    rotation.announce(at=SUNDAY)
    rotation.promote(at=MONDAY)
    current = token_of("tier3", "current")
    result = rotation.promote(at=MONDAY + timedelta(minutes=1))
    assert actions(result) == dict.fromkeys(Tier.values, Action.UNCHANGED)
    assert "nothing to promote" in result.outcomes[2].message and "did not run" not in result.outcomes[2].message
    assert validate("tier3", current)
    assert result.ok


def test_missed_announce_then_promote_keeps_the_current_token_working(initialised):
    current = token_of("tier1", "current")
    result = rotation.promote(at=MONDAY)  # Sunday's announce never ran
    assert actions(result) == dict.fromkeys(Tier.values, Action.UNCHANGED)
    assert result.ok
    assert "the announce due Sun 08 Jun 2025 00:00 UTC did not run" in result.outcomes[0].message
    assert validate("tier1", current) == Validation(True, "tier1", "current")


def test_missed_announce_recovers_by_announcing_late_and_promoting_next_week(initialised):
    old = token_of("tier1", "current")
    rotation.promote(at=MONDAY)
    rotation.announce(at=MONDAY + timedelta(hours=8))  # the operator notices and announces by hand
    new = token_of("tier1", "next")
    with time_machine.travel(MONDAY + timedelta(hours=9), tick=False):
        outgoing = validate("tier1", old)
    assert outgoing.is_outgoing and outgoing.promotes_at == NEXT_MONDAY  # not this morning's missed promote
    rotation.announce(at=NEXT_SUNDAY)  # the regular Sunday run: already announced, nothing changes
    assert token_of("tier1", "next") == new
    rotation.promote(at=NEXT_MONDAY)
    assert not validate("tier1", old)
    assert validate("tier1", new).state == "current"


def test_promote_with_no_token_at_all_fails():
    result = rotation.promote(["tier2"])
    assert actions(result) == {"tier2": Action.FAILED}
    assert not result.ok


# --- emergency -------------------------------------------------------------------------------------


def test_emergency_revokes_current_and_next_and_issues_a_new_current(initialised):
    rotation.announce(at=SUNDAY)
    current, upcoming = token_of("tier2", "current"), token_of("tier2", "next")
    at = SUNDAY + timedelta(hours=5)
    result = rotation.emergency(["tier2"], at=at)
    assert actions(result) == {"tier2": Action.ROTATED}
    assert not validate("tier2", current) and not validate("tier2", upcoming)
    revoked = TierToken.objects.filter(tier="tier2", state="revoked")
    assert sorted(revoked.values_list("revoked_at", flat=True)) == [at, at]
    fresh = live("tier2")
    assert list(fresh) == [TokenState.CURRENT]
    assert (fresh[TokenState.CURRENT].reason, fresh[TokenState.CURRENT].promoted_at) == ("emergency", at)
    assert validate("tier2", crypto.unseal_row(fresh[TokenState.CURRENT]))
    # The other tiers are untouched, overlap included.
    assert validate("tier1", token_of("tier1", "next"))


def test_emergency_needs_the_tiers_named():
    with pytest.raises(ValueError, match="needs the tiers"):
        rotation.emergency(None)
    with pytest.raises(ValueError, match="needs the tiers"):
        rotation.emergency([])


def test_emergency_rerun_within_the_window_keeps_the_new_token(initialised):
    rotation.emergency(["tier1"], at=SUNDAY)
    new = token_of("tier1", "current")
    again = rotation.emergency(["tier1"], at=SUNDAY + timedelta(minutes=9))
    assert actions(again) == {"tier1": Action.UNCHANGED}
    assert "already rotated in an emergency" in again.outcomes[0].message
    assert token_of("tier1", "current") == new


def test_emergency_rerun_with_force_or_after_the_window_rotates_again(initialised):
    rotation.emergency(["tier1"], at=SUNDAY)
    first = token_of("tier1", "current")
    forced = rotation.emergency(["tier1"], at=SUNDAY + timedelta(minutes=1), force=True)
    assert actions(forced) == {"tier1": Action.ROTATED}
    second = token_of("tier1", "current")
    assert not validate("tier1", first)
    later = rotation.emergency(["tier1"], at=SUNDAY + rotation.EMERGENCY_REPEAT_WINDOW + timedelta(minutes=2))
    assert actions(later) == {"tier1": Action.ROTATED}
    assert not validate("tier1", second)


def test_emergency_on_a_tier_without_tokens_issues_one():
    assert actions(rotation.emergency(["tier3"])) == {"tier3": Action.ROTATED}
    assert live("tier3")[TokenState.CURRENT].reason == Reason.EMERGENCY


# --- every mode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["init", "announce", "promote", "emergency"])
def test_dry_run_writes_nothing_and_says_what_it_would_do(initialised, mode):
    if mode == "promote":
        rotation.announce()
    before = counts(), list(TierToken.objects.values_list("pk", "state"))
    result = rotation.MODES[mode](list(Tier.values), dry_run=True)
    assert (counts(), list(TierToken.objects.values_list("pk", "state"))) == before
    assert result.dry_run and result.event_id is None
    if mode != "init":
        assert all(outcome.message.startswith("would ") for outcome in result.outcomes)
    assert all(line.split(" UTC ", 1)[1].startswith("[dry run]") for line in result.lines())


@pytest.mark.parametrize("mode", ["init", "announce", "promote"])
def test_every_mode_run_twice_equals_run_once(initialised, mode):
    if mode == "promote":
        rotation.announce(at=SUNDAY)
    rotation.MODES[mode](at=MONDAY)
    state = sorted(TierToken.objects.values_list("pk", "state"))
    second = rotation.MODES[mode](at=MONDAY + timedelta(seconds=30))
    assert sorted(TierToken.objects.values_list("pk", "state")) == state
    assert second.touched == [] and second.ok


def test_every_run_is_an_event_even_when_nothing_changes(initialised):
    rotation.announce(["tier1"], at=SUNDAY, actor="cron")
    rotation.announce(["tier1"], at=SUNDAY + timedelta(hours=1), actor="cron")
    first, second = RotationEvent.objects.order_by("pk")[1:]
    assert (first.mode, first.actor, first.at, first.tiers) == ("announce", "cron", SUNDAY, ["tier1"])
    assert second.tiers == [] and second.outcomes["tier1"]["action"] == "unchanged"


def test_history_keeps_every_token_ever_issued(initialised):
    for week in range(3):
        rotation.announce(at=SUNDAY + timedelta(days=7 * week))
        rotation.promote(at=MONDAY + timedelta(days=7 * week))
    rotation.emergency(["tier1"], at=NEXT_MONDAY + timedelta(days=10))
    tier1 = TierToken.objects.filter(tier="tier1")
    assert tier1.count() == 5
    assert sorted(tier1.values_list("state", flat=True)) == ["current", "retired", "retired", "retired", "revoked"]


def test_unknown_tiers_are_refused():
    with pytest.raises(ValueError, match="unknown tier"):
        rotation.init(["tier4"])


def test_tiers_are_handled_in_a_fixed_order_without_duplicates():
    assert rotation.normalize_tiers(["tier3", "tier1", "tier3"]) == ["tier1", "tier3"]
    assert rotation.normalize_tiers("tier2") == ["tier2"]
    assert rotation.normalize_tiers(None) == ["tier1", "tier2", "tier3"]


def test_result_lines_are_one_per_tier_and_a_summary(initialised):
    result = rotation.announce(at=SUNDAY)
    lines = result.lines()
    assert len(lines) == 4
    assert lines[0].startswith("2025-06-08 00:00:00 UTC announce tier1 (Explorer): announced next token #")
    assert lines[-1].endswith(
        f"announce: changed 3 of 3 tier(s) (tier1, tier2, tier3), 0 unchanged, 0 failed; event #{result.event_id}"
    )


# --- a run that lost a race: simulated deterministically by replaying a stale read ----------------


@pytest.fixture
def stale_read(monkeypatch):
    """Make the next run decide on a snapshot taken before another run changed the tier."""

    def install(snapshot):
        real = rotation._live
        calls = []

        def replay(tier):
            calls.append(tier)
            return snapshot if len(calls) == 1 else real(tier)

        monkeypatch.setattr(rotation, "_live", replay)

    return install


def test_promote_that_lost_the_race_reports_already_done(initialised, stale_read):
    rotation.announce(["tier1"], at=SUNDAY)
    snapshot = rotation._live("tier1")
    rotation.promote(["tier1"], at=MONDAY)
    promoted = token_of("tier1", "current")
    stale_read(snapshot)
    result = rotation.promote(["tier1"], at=MONDAY)
    assert actions(result) == {"tier1": Action.UNCHANGED}
    assert result.outcomes[0].message.startswith("a concurrent run got there first; nothing to promote")
    assert token_of("tier1", "current") == promoted
    assert TierToken.objects.filter(tier="tier1", state="current").count() == 1


def test_announce_that_lost_the_race_reports_already_done(initialised, stale_read):
    snapshot = rotation._live("tier1")
    rotation.announce(["tier1"], at=SUNDAY)
    stale_read(snapshot)
    result = rotation.announce(["tier1"], at=SUNDAY)  # the insert hits the one-next-per-tier index
    assert actions(result) == {"tier1": Action.UNCHANGED}
    assert "a concurrent run got there first; already announced" in result.outcomes[0].message
    assert TierToken.objects.filter(tier="tier1", state="next").count() == 1


def test_emergency_that_lost_the_race_issues_no_second_token(initialised, stale_read):
    snapshot = rotation._live("tier1")
    rotation.emergency(["tier1"], at=SUNDAY)
    stale_read(snapshot)
    result = rotation.emergency(["tier1"], at=SUNDAY)
    assert actions(result) == {"tier1": Action.UNCHANGED}
    assert TierToken.objects.filter(tier="tier1").count() == 2


def test_a_conflict_that_does_not_settle_rolls_the_whole_run_back(initialised, stale_read):
    rotation.announce(["tier1"], at=SUNDAY)
    snapshot = rotation._live("tier1")
    # Pretend the current token we read is one that has since been retired by someone else.
    ghost = TierToken.objects.get(tier="tier2", state="current")
    TierToken.objects.filter(pk=ghost.pk).update(state="retired", retired_at=SUNDAY)
    snapshot[TokenState.CURRENT] = ghost
    stale_read(snapshot)
    events = RotationEvent.objects.count()
    with pytest.raises(rotation.RotationConflict):
        rotation.promote(["tier1"], at=MONDAY)
    assert RotationEvent.objects.count() == events
    assert TierToken.objects.filter(tier="tier1", state="next").count() == 1
