"""Issuing, announcing, promoting and revoking tier tokens.

Each mode is a plain function returning a ``RotationResult``; the command and the admin are thin
layers over them. A run is one transaction: it reads each tier's live tokens, decides, and writes
with compare-and-set updates (``filter(pk=..., state=...).update(...)``). If another run got there
first, the update touches no row (or the partial unique index refuses the insert); that tier is
then re-read and reported as already done, never as an error and never half-done.

Tiers are always handled in the same order and, within a tier, ``current`` before ``next``, so two
runs lock rows in the same order and cannot deadlock each other on PostgreSQL. On SQLite the
IMMEDIATE transaction mode makes runs wait for each other.

Every mode is safe to rerun: announcing twice keeps one ``next``; promoting without a ``next``
keeps the current token working; init never replaces a token; an emergency rotation is not
repeated within ``EMERGENCY_REPEAT_WINDOW`` unless forced, so a double click or a rerun does not
kill the link that was just handed out.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.db import IntegrityError, transaction
from django.utils import timezone

from deliveries.tiers import Tier

from . import crypto
from .models import LIVE_STATES, Actor, Mode, Reason, RotationEvent, TierToken, TokenState
from .schedule import Schedule, promote_after
from .schedule import format_when as _when
from .signals import live_tokens_changed

EMERGENCY_REPEAT_WINDOW = timedelta(minutes=10)


class Action(StrEnum):
    ISSUED = "issued"
    ANNOUNCED = "announced"
    PROMOTED = "promoted"
    ROTATED = "rotated"
    UNCHANGED = "unchanged"
    FAILED = "failed"


CHANGING = frozenset({Action.ISSUED, Action.ANNOUNCED, Action.PROMOTED, Action.ROTATED})


class RotationConflict(Exception):
    """Another run changed a tier in a way this run cannot reconcile; the whole run is rolled back."""


@dataclass(frozen=True)
class TierOutcome:
    tier: str
    action: Action
    message: str
    token_id: int | None = None

    @property
    def changed(self):
        return self.action in CHANGING

    @property
    def failed(self):
        return self.action == Action.FAILED

    @property
    def plan(self):
        return Tier(self.tier).plan


@dataclass(frozen=True)
class RotationResult:
    mode: str
    at: datetime
    dry_run: bool
    outcomes: tuple
    event_id: int | None = None

    @property
    def ok(self):
        return not any(outcome.failed for outcome in self.outcomes)

    @property
    def touched(self):
        return [outcome.tier for outcome in self.outcomes if outcome.changed]

    def lines(self):
        """One line per tier, then the summary: what the command prints and the admin logs."""
        stamp = f"{self.at:%Y-%m-%d %H:%M:%S} UTC"
        prefix = "[dry run] " if self.dry_run else ""
        lines = [
            f"{stamp} {prefix}{self.mode} {o.tier} ({o.plan}): "
            + (o.message if o.changed else f"{o.action.value}: {o.message}")
            for o in self.outcomes
        ]
        return [*lines, f"{stamp} {prefix}{self.summary}"]

    @property
    def summary(self):
        counts = {action: sum(1 for o in self.outcomes if o.action == action) for action in Action}
        changed = sum(counts[action] for action in CHANGING)
        verb = "would change" if self.dry_run else "changed"
        text = f"{self.mode}: {verb} {changed} of {len(self.outcomes)} tier(s)"
        if self.touched:
            text += f" ({', '.join(self.touched)})"
        text += f", {counts[Action.UNCHANGED]} unchanged, {counts[Action.FAILED]} failed"
        if self.event_id:
            text += f"; event #{self.event_id}"
        return text


# --- The four modes -------------------------------------------------------------------------------


def init(tiers=None, *, at=None, dry_run=False, actor=Actor.COMMAND, user=None):
    """Issue a ``current`` token to every tier that has none (first deployment, demo)."""
    return _run(Mode.INIT, _plan_init, tiers, at=at, dry_run=dry_run, actor=actor, user=user)


def announce(tiers=None, *, at=None, dry_run=False, actor=Actor.COMMAND, user=None):
    """Issue each tier's ``next`` token; the current one keeps working until the promote."""
    return _run(Mode.ANNOUNCE, _plan_announce, tiers, at=at, dry_run=dry_run, actor=actor, user=user)


def promote(tiers=None, *, at=None, dry_run=False, actor=Actor.COMMAND, user=None):
    """``next`` becomes ``current``; the old current is retired and stops working at once."""
    return _run(Mode.PROMOTE, _plan_promote, tiers, at=at, dry_run=dry_run, actor=actor, user=user)


def emergency(tiers, *, at=None, dry_run=False, actor=Actor.COMMAND, user=None, force=False):
    """Revoke a tier's ``current`` and ``next`` tokens now and issue a new ``current``.

    ``tiers`` is required: revoking every link of every tier by accident is the one mistake
    this module refuses to make easy.
    """
    if not tiers:
        raise ValueError("an emergency rotation needs the tiers to rotate")
    return _run(Mode.EMERGENCY, _plan_emergency, tiers, at=at, dry_run=dry_run, actor=actor, user=user, force=force)


MODES = {Mode.INIT: init, Mode.ANNOUNCE: announce, Mode.PROMOTE: promote, Mode.EMERGENCY: emergency}


def normalize_tiers(tiers):
    """Known tier values, deduplicated, in the fixed order (lock ordering depends on it)."""
    if not tiers:
        return list(Tier.values)
    if isinstance(tiers, str):
        tiers = [tiers]
    wanted = set()
    for tier in tiers:
        if tier not in Tier.values:
            raise ValueError(f"unknown tier {tier!r}: expected one of {', '.join(Tier.values)}")
        wanted.add(Tier(tier).value)
    return [tier for tier in Tier.values if tier in wanted]


# --- Running a mode ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    action: Action
    message: str  # a status for unchanged/failed; an infinitive ("issue a ...") for changes
    apply: object = field(default=None, compare=False)  # callable(event) -> TierOutcome


class _Lost(Exception):
    """A compare-and-set update touched no row: a concurrent run changed the tier first."""


def _run(mode, planner, tiers, *, at, dry_run, actor, user, **options):
    tiers = normalize_tiers(tiers)
    at = at or timezone.now()
    actor = Actor(actor)
    if dry_run:
        outcomes = []
        for tier in tiers:
            plan = planner(tier, _live(tier), at, actor=actor, **options)
            message = f"would {plan.message}" if plan.action in CHANGING else plan.message
            outcomes.append(TierOutcome(tier, plan.action, message))
        return RotationResult(mode.value, at, True, tuple(outcomes))

    with transaction.atomic():
        event = RotationEvent.objects.create(
            at=at, mode=mode, actor=actor, user=user if user is not None and user.pk else None, requested_tiers=tiers
        )
        outcomes = tuple(_run_tier(planner, tier, at, event, actor, options) for tier in tiers)
        result = RotationResult(mode.value, at, False, outcomes, event.pk)
        event.tiers = result.touched
        event.outcomes = {
            o.tier: {"action": o.action.value, "message": o.message, "token": o.token_id} for o in outcomes
        }
        event.ok = result.ok
        event.summary = result.summary[:500]
        event.save(update_fields=["tiers", "outcomes", "ok", "summary"])
    return result


def _run_tier(planner, tier, at, event, actor, options):
    plan = planner(tier, _live(tier), at, actor=actor, **options)
    if plan.action not in CHANGING:
        return TierOutcome(tier, plan.action, plan.message)
    try:
        with transaction.atomic():
            outcome = plan.apply(event)
            live_tokens_changed.send(sender=TierToken, tier=tier, at=at)
            return outcome
    except (_Lost, IntegrityError) as error:
        # Someone else changed this tier between our read and our write. Re-read: if there is now
        # nothing left to do, that run did our work; anything else is a conflict we do not guess at.
        fresh = planner(tier, _live(tier), at, actor=actor, **options)
        if fresh.action in CHANGING:
            raise RotationConflict(f"{tier}: changed by a concurrent run and still not settled") from error
        return TierOutcome(tier, Action.UNCHANGED, f"a concurrent run got there first; {fresh.message}")


def _live(tier):
    return {row.state: row for row in TierToken.objects.filter(tier=tier, state__in=LIVE_STATES)}


def _issue(tier, state, reason, event, at):
    token = crypto.new_token()
    salt, sealed = crypto.seal(token)
    return TierToken.objects.create(
        tier=tier,
        state=state,
        reason=reason,
        digest=crypto.digest(token),
        salt=salt,
        sealed=sealed,
        created_at=at,
        announced_at=at if state == TokenState.NEXT else None,
        promoted_at=at if state == TokenState.CURRENT else None,
        issued_by=event,
    )


def _end(row, state, event, at):
    """Retire or revoke ``row`` if it is still in the state we read; raise _Lost otherwise."""
    times = {"retired_at": at} if state == TokenState.RETIRED else {"revoked_at": at}
    if not TierToken.objects.filter(pk=row.pk, state=row.state).update(state=state, ended_by=event, **times):
        raise _Lost(row.pk)


# --- Planners: read a tier's live tokens, decide, and say how to apply --------------------------------


def _plan_init(tier, live, at, **_):
    current = live.get(TokenState.CURRENT)
    if current:
        return _Plan(Action.UNCHANGED, f"already has current token #{current.pk} (since {_when(current.promoted_at)})")

    def apply(event):
        row = _issue(tier, TokenState.CURRENT, Reason.FIRST_ISSUE, event, at)
        return TierOutcome(tier, Action.ISSUED, f"issued current token #{row.pk}", row.pk)

    return _Plan(Action.ISSUED, "issue a first current token", apply)


def _plan_announce(tier, live, at, *, actor, **_):
    current, upcoming = live.get(TokenState.CURRENT), live.get(TokenState.NEXT)
    if upcoming:
        due = promote_after(upcoming.announced_at)
        promote = f"to be promoted {_when(due)}" if due > at else f"its promote was due {_when(due)} (run promote)"
        return _Plan(
            Action.UNCHANGED,
            f"already announced: next token #{upcoming.pk} since {_when(upcoming.announced_at)}, {promote}",
        )
    if not current:
        return _Plan(Action.FAILED, "has no current token: run rotate_tokens --mode init first")
    reason = Reason.SCHEDULED if actor == Actor.CRON else Reason.MANUAL

    def apply(event):
        row = _issue(tier, TokenState.NEXT, reason, event, at)
        return TierOutcome(
            tier,
            Action.ANNOUNCED,
            f"announced next token #{row.pk}; current token #{current.pk} and the new one both work "
            f"until the promote {_when(promote_after(at))}",
            row.pk,
        )

    return _Plan(Action.ANNOUNCED, f"issue a next token beside current token #{current.pk}", apply)


def _plan_promote(tier, live, at, **_):
    current, upcoming = live.get(TokenState.CURRENT), live.get(TokenState.NEXT)
    if upcoming:

        def apply(event):
            if current:
                _end(current, TokenState.RETIRED, event, at)
            promoted = TierToken.objects.filter(pk=upcoming.pk, state=TokenState.NEXT).update(
                state=TokenState.CURRENT, promoted_at=at
            )
            if not promoted:
                raise _Lost(upcoming.pk)
            retired = f"; retired token #{current.pk}, its link stops working now" if current else ""
            return TierOutcome(tier, Action.PROMOTED, f"next token #{upcoming.pk} is now current{retired}", upcoming.pk)

        retiring = f" and retire current token #{current.pk}" if current else ""
        return _Plan(Action.PROMOTED, f"make next token #{upcoming.pk} current{retiring}", apply)
    if not current:
        return _Plan(Action.FAILED, "has no token at all: run rotate_tokens --mode init")
    due = Schedule.from_settings().announce.last_at_or_before(at)
    if current.promoted_at < due:
        return _Plan(
            Action.UNCHANGED,
            f"nothing to promote: no next token (the announce due {_when(due)} did not run?); "
            f"current token #{current.pk} keeps working",
        )
    return _Plan(
        Action.UNCHANGED,
        f"nothing to promote: no next token; current token #{current.pk} (current since "
        f"{_when(current.promoted_at)}) keeps working",
    )


def _plan_emergency(tier, live, at, *, force=False, **_):
    current, upcoming = live.get(TokenState.CURRENT), live.get(TokenState.NEXT)
    if (
        not force
        and current
        and not upcoming
        and current.reason == Reason.EMERGENCY
        and current.created_at > at - EMERGENCY_REPEAT_WINDOW
    ):
        return _Plan(
            Action.UNCHANGED,
            f"already rotated in an emergency at {_when(current.created_at)} (current token #{current.pk}); "
            "force to rotate again",
        )
    doomed = [row for row in (current, upcoming) if row]

    def apply(event):
        for row in doomed:
            _end(row, TokenState.REVOKED, event, at)
        row = _issue(tier, TokenState.CURRENT, Reason.EMERGENCY, event, at)
        revoked = ", ".join(f"#{old.pk} ({old.state})" for old in doomed) or "nothing"
        return TierOutcome(
            tier,
            Action.ROTATED,
            f"revoked {revoked}; issued current token #{row.pk}: print it with patreon_links and update the pinned post",
            row.pk,
        )

    revoking = ", ".join(f"#{old.pk} ({old.state})" for old in doomed) or "nothing"
    return _Plan(Action.ROTATED, f"revoke {revoking} and issue a new current token", apply)
