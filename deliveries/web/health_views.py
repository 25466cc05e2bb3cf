"""``/healthz``: the health checks as JSON for uptime monitors (200 healthy, 503 not)."""

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from instrumetriq_site.utc import iso_z

from .. import health

CACHE_KEY = "deliveries:healthz"


def healthz_payload():
    """The checks, reused for HEALTHZ_CACHE_SECONDS (default 30): the URL is public, and each run
    asks storage about every live object, so a busy monitor (or a bot) must not multiply that."""
    payload = cache.get(CACHE_KEY)
    if payload is None:
        now = timezone.now()
        problems = health.run_checks(now=now)
        payload = {
            "status": "fail" if health.failures(problems) else "ok",
            "checked_at": iso_z(now),
            "problems": [problem.as_dict() for problem in health.failures(problems)],
            "warnings": [problem.as_dict() for problem in health.warnings(problems)],
        }
        cache.set(CACHE_KEY, payload, settings.HEALTHZ_CACHE_SECONDS)
    return payload


@require_safe
def healthz(request):
    payload = healthz_payload()
    response = JsonResponse(payload, status=200 if payload["status"] == "ok" else 503)
    response["Cache-Control"] = "no-store"
    return response
