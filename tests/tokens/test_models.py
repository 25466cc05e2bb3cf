"""The database itself keeps the invariants: one current and one next per tier, states that match times."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from tokens import crypto, rotation
from tokens.models import Actor, Mode, Reason, RotationEvent, TierToken, TokenState

T0 = datetime(2025, 6, 2, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def make_event():
    return RotationEvent.objects.create(at=T0, mode=Mode.INIT, actor=Actor.COMMAND)


def make_token(tier="tier1", state=TokenState.CURRENT, event=None, **times):
    token = crypto.new_token()
    salt, sealed = crypto.seal(token)
    defaults = {
        TokenState.CURRENT: {"promoted_at": T0},
        TokenState.NEXT: {"announced_at": T0},
        TokenState.RETIRED: {"promoted_at": T0, "retired_at": T0},
        TokenState.REVOKED: {"promoted_at": T0, "revoked_at": T0},
    }[state]
    return TierToken.objects.create(
        tier=tier,
        state=state,
        reason=Reason.MANUAL,
        digest=crypto.digest(token),
        salt=salt,
        sealed=sealed,
        created_at=T0,
        issued_by=event or make_event(),
        **{**defaults, **times},
    )


def test_database_refuses_a_second_current_token_for_a_tier():
    make_token("tier1", TokenState.CURRENT)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_token("tier1", TokenState.CURRENT)


def test_database_refuses_a_second_next_token_for_a_tier():
    make_token("tier2", TokenState.NEXT)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_token("tier2", TokenState.NEXT)


def test_ended_tokens_and_other_tiers_do_not_count_against_the_one_per_tier_rule():
    for tier in ("tier1", "tier2", "tier3"):
        make_token(tier, TokenState.CURRENT)
        make_token(tier, TokenState.NEXT)
        make_token(tier, TokenState.RETIRED)
        make_token(tier, TokenState.RETIRED)
        make_token(tier, TokenState.REVOKED)
    assert TierToken.objects.count() == 15


@pytest.mark.parametrize(
    ("state", "times"),
    [
        (TokenState.CURRENT, {"promoted_at": None}),
        (TokenState.CURRENT, {"retired_at": T0}),
        (TokenState.NEXT, {"announced_at": None}),
        (TokenState.NEXT, {"promoted_at": T0}),
        (TokenState.RETIRED, {"retired_at": None}),
        (TokenState.REVOKED, {"revoked_at": None}),
        (TokenState.NEXT, {"announced_at": T0 - timedelta(hours=1)}),
        ("lost", {}),
    ],
)
def test_database_refuses_a_state_its_times_contradict(state, times):
    event = make_event()
    with pytest.raises(IntegrityError), transaction.atomic():
        if state == "lost":
            TierToken.objects.filter(pk=make_token(event=event).pk).update(state="lost")
        else:
            make_token("tier1", state, event, **times)


def test_digest_is_unique():
    row = make_token()
    with pytest.raises(IntegrityError), transaction.atomic():
        TierToken.objects.create(
            tier="tier2",
            state=TokenState.RETIRED,
            reason=Reason.MANUAL,
            digest=row.digest,
            salt=row.salt,
            sealed=row.sealed,
            created_at=T0,
            promoted_at=T0,
            retired_at=T0,
            issued_by=row.issued_by,
        )


def test_str_of_a_token_names_it_without_revealing_it():
    row = make_token()
    token = crypto.unseal_row(row)
    assert str(row) == f"tier1 token #{row.pk} (current)"
    assert token not in str(row) and token not in repr(row)


def test_working_at_answers_from_the_history_alone():
    first = rotation.init(["tier1"], at=T0).outcomes[0].token_id
    sunday, monday = T0 + timedelta(days=6), T0 + timedelta(days=7)
    second = rotation.announce(["tier1"], at=sunday).outcomes[0].token_id
    rotation.promote(["tier1"], at=monday)

    def working(at):
        return sorted(TierToken.objects.working_at(at).values_list("pk", flat=True))

    assert working(T0 - timedelta(seconds=1)) == []
    assert working(T0) == [first]
    assert working(sunday - timedelta(seconds=1)) == [first]
    assert working(sunday) == [first, second]
    assert working(monday - timedelta(seconds=1)) == [first, second]
    assert working(monday) == [second]
    states = dict(TierToken.objects.with_state_at(sunday).values_list("pk", "state_at"))
    assert states == {first: "current", second: "next"}


def test_rotation_event_records_time_mode_actor_and_tiers_touched():
    at = T0 + timedelta(hours=3)
    rotation.init(["tier2", "tier1"], at=at)
    event = RotationEvent.objects.get()
    assert (event.at, event.mode, event.actor) == (at, "init", "command")
    assert event.tiers == ["tier1", "tier2"]
    assert event.requested_tiers == ["tier1", "tier2"]
    assert event.ok and event.outcomes["tier1"]["action"] == "issued"
    assert "changed 2 of 2" in event.summary
