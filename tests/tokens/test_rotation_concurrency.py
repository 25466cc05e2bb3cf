"""Two rotations at once, on real connections in real threads: never two current (or next) tokens.

The same tests run on both CI legs. On PostgreSQL both transactions read the tier before either
writes (a barrier after the read makes sure of it), then race: row locks plus compare-and-set
updates settle promotes, and the partial unique indexes refuse a second insert. On SQLite the
IMMEDIATE transaction mode makes the second run wait for the first, on an on-disk copy of the
test database (the ``contended_db`` fixture: pytest-django's in-memory one cannot make a writer wait).
"""

import threading
import time

import pytest
from django.db import IntegrityError, connection, connections, transaction

from deliveries.tiers import Tier
from tokens import crypto, rotation
from tokens.models import Actor, Mode, Reason, RotationEvent, TierToken, TokenState
from tokens.rotation import Action

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BARRIER_TIMEOUT = 10


def both_read_before_either_writes(monkeypatch):
    """On PostgreSQL, hold each run after its first read until the other has read too."""
    if connection.vendor != "postgresql":
        return
    barrier = threading.Barrier(2)
    real = rotation._live
    local = threading.local()

    def read_then_wait(tier):
        rows = real(tier)
        if not getattr(local, "waited", False):
            local.waited = True
            barrier.wait(BARRIER_TIMEOUT)
        return rows

    monkeypatch.setattr(rotation, "_live", read_then_wait)


def run_twice_at_once(function, *args, **kwargs):
    start = threading.Barrier(2)
    results, errors = [None, None], []

    def worker(index):
        try:
            start.wait(BARRIER_TIMEOUT)
            results[index] = function(*args, **kwargs)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT * 3)
    assert not errors, errors
    return results


def per_tier(results):
    return {tier: sorted(str(o.action) for r in results for o in r.outcomes if o.tier == tier) for tier in Tier.values}


def test_two_concurrent_promotes_leave_exactly_one_current_token_per_tier(contended_db, monkeypatch):
    rotation.init()
    rotation.announce()
    promoted = dict(TierToken.objects.filter(state="next").values_list("tier", "pk"))
    both_read_before_either_writes(monkeypatch)

    results = run_twice_at_once(rotation.promote)

    assert per_tier(results) == dict.fromkeys(Tier.values, [Action.PROMOTED, Action.UNCHANGED])
    for tier in Tier.values:
        assert list(TierToken.objects.filter(tier=tier, state="current").values_list("pk", flat=True)) == [
            promoted[tier]
        ]
        assert TierToken.objects.filter(tier=tier, state="retired").count() == 1
        assert not TierToken.objects.filter(tier=tier, state="next").exists()
    assert all(result.ok for result in results)
    loser = next(o for r in results for o in r.outcomes if o.tier == "tier1" and o.action == Action.UNCHANGED)
    if connection.vendor == "postgresql":
        assert loser.message.startswith("a concurrent run got there first; nothing to promote")
    assert RotationEvent.objects.filter(mode="promote").count() == 2


def test_two_concurrent_announces_leave_exactly_one_next_token_per_tier(contended_db, monkeypatch):
    rotation.init()
    both_read_before_either_writes(monkeypatch)

    results = run_twice_at_once(rotation.announce)

    assert per_tier(results) == dict.fromkeys(Tier.values, [Action.ANNOUNCED, Action.UNCHANGED])
    for tier in Tier.values:
        assert TierToken.objects.filter(tier=tier, state="next").count() == 1
        assert TierToken.objects.filter(tier=tier, state="current").count() == 1


def test_two_concurrent_emergencies_issue_one_new_token(contended_db, monkeypatch):
    rotation.init(["tier1"])
    old = TierToken.objects.get()
    both_read_before_either_writes(monkeypatch)

    results = run_twice_at_once(rotation.emergency, ["tier1"])

    assert per_tier(results)["tier1"] == [Action.ROTATED, Action.UNCHANGED]
    old.refresh_from_db()
    assert old.state == "revoked"
    (current,) = TierToken.objects.filter(tier="tier1", state="current")
    assert current.reason == Reason.EMERGENCY
    assert TierToken.objects.count() == 2


def test_the_database_refuses_a_second_current_token_from_a_concurrent_transaction(contended_db):
    """The constraint itself, with no application check in the way: the second insert must fail."""
    event = RotationEvent.objects.create(at="2025-06-08T00:00:00Z", mode=Mode.INIT, actor=Actor.COMMAND)
    inserted, outcome = threading.Event(), []

    def insert_current():
        token = crypto.new_token()
        salt, sealed = crypto.seal(token)
        TierToken.objects.create(
            tier="tier1",
            state=TokenState.CURRENT,
            reason=Reason.MANUAL,
            digest=crypto.digest(token),
            salt=salt,
            sealed=sealed,
            created_at=event.at,
            promoted_at=event.at,
            issued_by=event,
        )

    def first():
        try:
            with transaction.atomic():
                insert_current()
                inserted.set()
                time.sleep(0.5)  # the second transaction tries while this one is still open
            outcome.append("first committed")
        finally:
            connections.close_all()

    def second():
        try:
            inserted.wait(BARRIER_TIMEOUT)
            with transaction.atomic():
                insert_current()
            outcome.append("second committed")
        except IntegrityError:
            outcome.append("second refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_TIMEOUT * 3)
    assert outcome == ["first committed", "second refused"]
    assert TierToken.objects.filter(tier="tier1", state="current").count() == 1
