"""Token history and rotation events.

Every token ever issued stays as a row; only its state and times change. The database, not the
code, guarantees at most one ``current`` and one ``next`` token per tier (partial unique indexes),
so two rotations racing each other cannot leave a tier with two live tokens of the same kind.
A row holds a digest and a sealed form of its token, never the token (see ``tokens.crypto``).
"""

from django.conf import settings
from django.db import models
from django.db.models import Case, F, OuterRef, Q, Subquery, Value, When

from deliveries.tiers import Tier


class TokenState(models.TextChoices):
    NEXT = "next", "Next (announced, not yet promoted)"
    CURRENT = "current", "Current"
    RETIRED = "retired", "Retired (replaced at a promote)"
    REVOKED = "revoked", "Revoked (emergency)"


LIVE_STATES = (TokenState.CURRENT, TokenState.NEXT)


class Reason(models.TextChoices):
    """Why a token was issued."""

    FIRST_ISSUE = "first_issue", "First issue"
    SCHEDULED = "scheduled", "Scheduled rotation"
    EMERGENCY = "emergency", "Emergency rotation"
    MANUAL = "manual", "Manual rotation"


class Mode(models.TextChoices):
    INIT = "init", "Init"
    ANNOUNCE = "announce", "Announce"
    PROMOTE = "promote", "Promote"
    EMERGENCY = "emergency", "Emergency"


class Actor(models.TextChoices):
    CRON = "cron", "Cron"
    COMMAND = "command", "Command line"
    ADMIN = "admin", "Admin"


class RotationEvent(models.Model):
    """One run of a rotation, including runs that changed nothing (they show cron is alive)."""

    at = models.DateTimeField(db_index=True)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    actor = models.CharField(max_length=8, choices=Actor.choices)
    # The staff member behind an admin action; nothing else about people is stored.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    requested_tiers = models.JSONField(default=list)
    tiers = models.JSONField(default=list, help_text="The tiers this run changed.")
    outcomes = models.JSONField(default=dict, help_text="Per tier: what was done and why.")
    ok = models.BooleanField(default=True)
    summary = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=Mode.values), name="rotationevent_mode_known"),
            models.CheckConstraint(condition=Q(actor__in=Actor.values), name="rotationevent_actor_known"),
        ]

    def __str__(self):
        return f"{self.get_mode_display()} at {self.at:%Y-%m-%d %H:%M} UTC"


class TierTokenQuerySet(models.QuerySet):
    def for_tier(self, tier):
        return self.filter(tier=tier)

    def live(self):
        """Tokens that open their tier right now: the rotation state is the truth."""
        return self.filter(state__in=LIVE_STATES)

    def working_at(self, at):
        """Tokens that opened their tier at ``at``, from the recorded times alone.

        The history answers "did this link work last Tuesday at 14:00?" without replaying events.
        """
        return self.filter(created_at__lte=at).exclude(retired_at__lte=at).exclude(revoked_at__lte=at)

    def with_state_at(self, at=None):
        """Keep tokens working at ``at`` (now: the live ones), annotated with ``state_at``, current or next."""
        if at is None:
            return self.live().annotate(state_at=F("state"))
        return self.working_at(at).annotate(
            state_at=Case(
                When(promoted_at__lte=at, then=Value(TokenState.CURRENT.value)),
                default=Value(TokenState.NEXT.value),
                output_field=models.CharField(),
            )
        )

    def with_next_announced_at(self, at=None):
        """Annotate ``next_announced_at``: when the tier's ``next`` token (now, or at ``at``) was announced."""
        if at is None:
            pending = TierToken.objects.filter(tier=OuterRef("tier"), state=TokenState.NEXT)
        else:
            pending = (
                TierToken.objects.working_at(at)
                .filter(tier=OuterRef("tier"), announced_at__isnull=False)
                .exclude(promoted_at__lte=at)
            )
        return self.annotate(next_announced_at=Subquery(pending.values("announced_at")[:1]))


class TierToken(models.Model):
    tier = models.CharField(max_length=8, choices=Tier.choices)
    state = models.CharField(max_length=8, choices=TokenState.choices)
    reason = models.CharField(max_length=12, choices=Reason.choices, help_text="Why the token was issued.")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    salt = models.CharField(max_length=32, editable=False)
    sealed = models.CharField(max_length=64, editable=False)
    # created_at is also when the token started to work: announce and issue both take effect at once.
    created_at = models.DateTimeField()
    announced_at = models.DateTimeField(null=True, blank=True, help_text="Issued as the next token (overlap start).")
    promoted_at = models.DateTimeField(null=True, blank=True, help_text="Became the current token.")
    retired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(RotationEvent, on_delete=models.PROTECT, related_name="issued_tokens")
    ended_by = models.ForeignKey(
        RotationEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="ended_tokens"
    )

    objects = TierTokenQuerySet.as_manager()

    class Meta:
        ordering = ["tier", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tier"], condition=Q(state=TokenState.CURRENT), name="tiertoken_one_current_per_tier"
            ),
            models.UniqueConstraint(
                fields=["tier"], condition=Q(state=TokenState.NEXT), name="tiertoken_one_next_per_tier"
            ),
            models.CheckConstraint(condition=Q(state__in=TokenState.values), name="tiertoken_state_known"),
            # The times must tell the same story as the state, or the history would lie.
            models.CheckConstraint(
                condition=~Q(state=TokenState.CURRENT)
                | Q(promoted_at__isnull=False, retired_at__isnull=True, revoked_at__isnull=True),
                name="tiertoken_current_is_promoted_and_alive",
            ),
            models.CheckConstraint(
                condition=~Q(state=TokenState.NEXT)
                | Q(
                    announced_at__isnull=False,
                    promoted_at__isnull=True,
                    retired_at__isnull=True,
                    revoked_at__isnull=True,
                ),
                name="tiertoken_next_is_announced_only",
            ),
            models.CheckConstraint(
                condition=~Q(state=TokenState.RETIRED) | Q(retired_at__isnull=False, revoked_at__isnull=True),
                name="tiertoken_retired_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(state=TokenState.REVOKED) | Q(revoked_at__isnull=False, retired_at__isnull=True),
                name="tiertoken_revoked_has_time",
            ),
            models.CheckConstraint(
                condition=Q(announced_at__isnull=True) | Q(announced_at__gte=F("created_at")),
                name="tiertoken_announced_after_created",
            ),
        ]
        indexes = [models.Index(fields=["tier", "state"], name="tiertoken_tier_state")]
        permissions = [
            ("rotate_tiertoken", "Can rotate tier tokens (announce, promote, emergency)"),
            ("view_patreon_links", "Can view the Patreon links (they contain live tokens)"),
        ]

    def __str__(self):
        # Never the token: the id, tier and state are enough to talk about it.
        return f"{self.tier} token #{self.pk} ({self.state})"

    @property
    def plan(self):
        return Tier(self.tier).plan

    @property
    def ended_at(self):
        return self.retired_at or self.revoked_at
