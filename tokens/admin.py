"""Token history, rotation events, and the rotation buttons for staff.

The history never shows a token, its digest or its sealed form. Live links appear on exactly one
page, the Patreon text, and only to staff holding ``tokens.view_patreon_links``. Rotating needs
``tokens.rotate_tiertoken`` and always goes through a confirmation page that shows, from a dry
run, what will happen to each tier.
"""

import logging

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode

from deliveries.tiers import Tier
from instrumetriq_site.admin import ReadOnlyAdmin, lines_html

from . import links, rotation
from .models import Actor, Mode, RotationEvent, TierToken

logger = logging.getLogger("tokens.admin")

ADMIN_MODES = (Mode.ANNOUNCE, Mode.PROMOTE, Mode.EMERGENCY)
CONFIRM_LABELS = {
    Mode.ANNOUNCE: "Yes, announce new links for the selected tiers",
    Mode.PROMOTE: "Yes, promote the new links of the selected tiers",
    Mode.EMERGENCY: "Yes, revoke the selected tiers' links and issue new ones",
}
ROTATE_PERMISSION = "tokens.rotate_tiertoken"
LINKS_PERMISSION = "tokens.view_patreon_links"


@admin.register(TierToken)
class TierTokenAdmin(ReadOnlyAdmin):
    list_display = ("id", "tier", "plan", "state", "reason", "created_at", "promoted_at", "ended_at", "issued_by")
    list_filter = ("tier", "state", "reason")
    date_hierarchy = "created_at"
    # The digest, salt and sealed columns are deliberately absent.
    fields = (
        "tier",
        "state",
        "reason",
        "created_at",
        "announced_at",
        "promoted_at",
        "retired_at",
        "revoked_at",
        "issued_by",
        "ended_by",
    )
    readonly_fields = fields
    actions = ("announce_now", "promote_now", "emergency_rotate")

    @admin.display(description="Plan")
    def plan(self, obj):
        return obj.plan

    @admin.display(description="Retired/revoked at")
    def ended_at(self, obj):
        return obj.ended_at

    def has_rotate_permission(self, request):
        return request.user.has_perm(ROTATE_PERMISSION)

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("rotate/<str:mode>/", wrap(self.rotate_view), name="tokens_tiertoken_rotate"),
            path("patreon/", wrap(self.patreon_view), name="tokens_tiertoken_patreon"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_rotate": self.has_rotate_permission(request),
            "can_view_links": request.user.has_perm(LINKS_PERMISSION),
            "rotation_modes": ADMIN_MODES,
        }
        return super().changelist_view(request, extra_context)

    # --- Actions: the selected rows name the tiers; the confirmation page does the rest ------------

    def _confirm(self, queryset, mode):
        tiers = sorted(set(queryset.values_list("tier", flat=True)))
        url = reverse("admin:tokens_tiertoken_rotate", args=[mode])
        return HttpResponseRedirect(f"{url}?{urlencode({'tier': tiers}, doseq=True)}")

    @admin.action(description="Announce now: issue the next token of the selected tiers", permissions=["rotate"])
    def announce_now(self, request, queryset):
        return self._confirm(queryset, Mode.ANNOUNCE)

    @admin.action(description="Promote now: make the next token current for the selected tiers", permissions=["rotate"])
    def promote_now(self, request, queryset):
        return self._confirm(queryset, Mode.PROMOTE)

    @admin.action(description="Emergency: revoke the selected tiers' links and issue new ones", permissions=["rotate"])
    def emergency_rotate(self, request, queryset):
        return self._confirm(queryset, Mode.EMERGENCY)

    # --- Views ----------------------------------------------------------------------------------

    def rotate_view(self, request, mode):
        if mode not in ADMIN_MODES:
            raise Http404("unknown rotation mode")
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        mode = Mode(mode)
        if request.method == "POST":
            return self._rotate(request, mode)
        asked = [tier for tier in request.GET.getlist("tier") if tier in Tier.values]
        if not asked and mode != Mode.EMERGENCY:
            asked = list(Tier.values)  # an emergency never defaults to every tier
        preview = rotation.MODES[mode](list(Tier.values), dry_run=True, actor=Actor.ADMIN)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Confirm: {mode.label.lower()} tier tokens",
            "mode": mode,
            "confirm_label": CONFIRM_LABELS[mode],
            "rows": [(outcome, outcome.tier in asked) for outcome in preview.outcomes],
            "repeat_minutes": int(rotation.EMERGENCY_REPEAT_WINDOW.total_seconds() // 60),
        }
        return TemplateResponse(request, "admin/tokens/confirm_rotation.html", context)

    def _rotate(self, request, mode):
        tiers = [tier for tier in request.POST.getlist("tier") if tier in Tier.values]
        back = reverse("admin:tokens_tiertoken_rotate", args=[mode])
        if not tiers:
            self.message_user(request, "Select at least one tier.", messages.WARNING)
            return HttpResponseRedirect(back)
        kwargs = {"actor": Actor.ADMIN, "user": request.user}
        if mode == Mode.EMERGENCY:
            kwargs["force"] = request.POST.get("force") == "on"
        try:
            result = rotation.MODES[mode](tiers, **kwargs)
        except rotation.RotationConflict as error:
            self.message_user(request, f"Nothing was changed: {error}. Try again.", messages.ERROR)
            return HttpResponseRedirect(back)
        for line in result.lines():
            logger.info("%s (by %s)", line, request.user.get_username())
        for outcome in result.outcomes:
            level = messages.ERROR if outcome.failed else messages.SUCCESS if outcome.changed else messages.INFO
            self.message_user(request, f"{outcome.tier} ({outcome.plan}): {outcome.message}", level)
        if result.touched and request.user.has_perm(LINKS_PERMISSION):
            return HttpResponseRedirect(reverse("admin:tokens_tiertoken_patreon"))
        return HttpResponseRedirect(reverse("admin:tokens_rotationevent_change", args=[result.event_id]))

    def patreon_view(self, request):
        if not request.user.has_perm(LINKS_PERMISSION):
            raise PermissionDenied
        items = links.tier_links()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Patreon links",
            "items": items,
            "text": links.render(items, "text"),
            "markdown": links.render(items, "markdown"),
        }
        response = TemplateResponse(request, "admin/tokens/patreon_links.html", context)
        # Live links in the body: no cache keeps them. The URL has no token, so the admin's
        # same-origin referrer policy stays (its logout form must post with a real Origin).
        response["Cache-Control"] = "no-store, private"
        return response


@admin.register(RotationEvent)
class RotationEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "mode", "actor", "user", "touched", "ok", "summary")
    list_filter = ("mode", "actor", "ok")
    date_hierarchy = "at"
    fields = ("at", "mode", "actor", "user", "requested", "touched", "outcome_lines", "ok", "summary")
    readonly_fields = fields

    @admin.display(description="Tiers asked for")
    def requested(self, obj):
        return ", ".join(obj.requested_tiers) or "none"

    @admin.display(description="Tiers changed")
    def touched(self, obj):
        return ", ".join(obj.tiers) or "none"

    @admin.display(description="Per tier")
    def outcome_lines(self, obj):
        return lines_html(f"{tier}: {item.get('action')}: {item.get('message')}" for tier, item in obj.outcomes.items())
