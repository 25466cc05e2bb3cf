"""The tier token check, written once: every token-checked view (page, API, feed, downloads) is
wrapped in ``@tier_token`` (or ``@tier_token(refusals=JSON)`` for the API), like healthchecks'
``@authorize``.

The wrapper resolves the URL's tier, reads ``?t=`` (or ``?token=``), asks
``tokens.validation.validate`` and either refuses, never saying why a token failed, or calls the
view with ``request.tier``, ``request.token``, ``request.validation`` and
``request.listing_version`` set. The view's own URL arguments are passed on without ``tier``.

A well-formed token costs one query, the tier's listing version: the tier's live tokens are kept
in Django's cache under it, and every rotation renews it (``tokens.signals``), so a revoked link
stops working on the next request of every worker. The views key what they cache by it too.
"""

from functools import wraps

from django.core.cache import cache
from django.http import Http404, JsonResponse
from django.shortcuts import render

from tokens.schedule import Schedule
from tokens.validation import live_tokens, validate

from ..tiers import Tier
from .listing import CACHE_SECONDS, version_of


def token_from(request):
    """The token of ``?t=`` or ``?token=``; the empty string when there is none."""
    return request.GET.get("t") or request.GET.get("token") or ""


def forbidden(request, tier):
    """The friendly 403: which plan, where the current link is, when links change. Never why."""
    context = {"tier": tier, "plan": tier.plan, "schedule": Schedule.from_settings()}
    return render(request, "deliveries/forbidden.html", context, status=403)


def json_error(status, code, message):
    return JsonResponse({"error": code, "message": message}, status=status)


class HTML:
    """Refusals as pages: the 404 page for a tier that does not exist, the friendly 403 otherwise."""

    @staticmethod
    def unknown_tier(request):
        raise Http404("No such tier.")

    @staticmethod
    def missing_token(request, tier):
        return forbidden(request, tier)

    not_valid = missing_token


class JSON:
    """Refusals as JSON for scripts: 404, 401 without a token, 403 with one that does not open."""

    @staticmethod
    def unknown_tier(request):
        return json_error(404, "unknown_tier", "No such tier: use tier1, tier2 or tier3.")

    @staticmethod
    def missing_token(request, tier):
        return json_error(401, "token_required", "Add ?t=TOKEN: the link is in your tier's pinned Patreon post.")

    @staticmethod
    def not_valid(request, tier):
        return json_error(
            403,
            "token_not_valid",
            f"This link is not, or no longer, valid for {tier.plan}. "
            "The current link is in your tier's pinned Patreon post.",
        )


def tier_token(view=None, *, refusals=HTML):
    """Let the request through only with a token that opens the URL's tier (current, or next
    during the overlap). A missing token costs no query; a malformed one no hashing either."""
    if view is None:
        return lambda view: tier_token(view, refusals=refusals)

    @wraps(view)
    def checked(request, tier, *args, **kwargs):
        try:
            tier = Tier(tier)
        except ValueError:
            return refusals.unknown_tier(request)
        token = token_from(request)
        if not token:
            return refusals.missing_token(request, tier)
        request.listing_version = None
        validation = validate(tier, token, live=lambda tier: _live_tokens(request, tier))
        if not validation:
            return refusals.not_valid(request, tier)
        request.tier, request.token, request.validation = tier, token, validation
        return view(request, *args, **kwargs)

    checked.checks_tier_token = True  # what tests/deliveries/web/test_access.py looks for on every tier URL
    return checked


def _live_tokens(request, tier):
    """The tier's live tokens, from the cache under the listing version read now (and kept on
    the request for the view); read from the database when the tier has no version yet."""
    request.listing_version = version = version_of(tier)
    if version is None:
        return live_tokens(tier)
    return cache.get_or_set(f"tier-tokens:{tier}:{version}", lambda: live_tokens(tier), CACHE_SECONDS)


def outgoing_until(validation, now):
    """When an outgoing token stops working (None for a token that is not outgoing)."""
    if not validation.is_outgoing:
        return None
    return validation.promotes_at or Schedule.from_settings().promote.next_after(now)
