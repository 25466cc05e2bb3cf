"""The admin front page's pointer to the delivery state page, with last night's outcome on it."""

from django import template

from deliveries.dashboard import run_tone
from deliveries.models import BuildRun

register = template.Library()


@register.simple_tag
def last_build():
    """The newest build_daily run and its tone (good/neutral/bad), or None: one query."""
    run = BuildRun.objects.filter(command="build_daily").order_by("-started_at").first()
    return {"run": run, "tone": run_tone(run.outcome)} if run else None
