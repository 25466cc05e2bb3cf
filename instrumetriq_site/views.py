"""The site's front door: ``/`` says what this is, where subscribers find their link and where the
operator logs in (instead of Django's 404 listing the URL patterns)."""

from django.shortcuts import render
from django.views.decorators.http import require_safe

from deliveries.tiers import Tier


@require_safe
def landing(request):
    return render(request, "landing.html", {"tiers": [(tier.plan, tier.value) for tier in Tier]})
