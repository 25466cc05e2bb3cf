"""Delivery state at a glance: the operator's morning question, "did last night work, and what do
subscribers see?", answered on one admin page (``/admin/delivery-state/``).

Everything here is read from what the site itself serves (``web.listing.list_files``), the run records
and the health checks, so the page cannot disagree with the tier pages or with ``healthcheck``.
Plain functions returning plain data; the view only renders them.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.contrib import admin
from django.db.models import Sum
from django.template.response import TemplateResponse
from django.utils import timezone

from instrumetriq_site.utc import expected_newest_day
from tokens.models import RotationEvent, TierToken, TokenState
from tokens.rotation import Action
from tokens.schedule import Schedule, promote_after

from . import health
from .admin import first_failure, human_duration
from .models import BuildRun, DownloadCount
from .outcomes import Outcome
from .tiers import Tier
from .web.listing import list_files

STRIP_DAYS = 7
CHART_DAYS = 30
RECENT_RUNS = 5
GOOD, NEUTRAL, BAD = "good", "neutral", "bad"


def run_tone(outcome):
    """good / neutral / bad for any outcome, a new one included: only the known good and the
    known in-between outcomes are spared the red."""
    if outcome in (Outcome.SUCCESS, Outcome.NOTHING_TO_DO):
        return GOOD
    if outcome in (Outcome.RUNNING, Outcome.DRY_RUN, Outcome.LOCKED):
        return NEUTRAL
    return BAD


@dataclass(frozen=True)
class DayCell:
    day: date
    state: str  # published, partial, missing, pending (not due yet)

    @property
    def label(self):
        words = {
            "published": "published",
            "partial": "published, partial (hours missing)",
            "missing": "missing",
            "pending": "not due yet (build deadline not passed)",
        }
        return f"{self.day:%a %Y-%m-%d}: {words[self.state]}"


@dataclass(frozen=True)
class TierState:
    tier: Tier
    newest: object  # DailyFile or None: the newest day subscribers are offered
    mtd: object  # MonthBundle or None
    strip: list
    current: object  # TierToken or None
    upcoming: object  # TierToken or None (the announced next token)
    next_announce: datetime
    next_promote: datetime

    @property
    def mtd_days(self):
        return len(self.mtd.days_included) if self.mtd else 0


@dataclass(frozen=True)
class RunLine:
    what: str
    at: datetime
    outcome: str
    tone: str
    duration: str
    failure: str
    url_name: str
    pk: int


@dataclass
class Chart:
    """Downloads per tier per UTC day as SVG geometry (bars in viewBox units; no JS, no style)."""

    first: date
    last: date
    peak: int
    width: int
    height: int
    rows: list = field(default_factory=list)  # one per tier: tier, total, bars


def tier_strip(listing, expected_newest, today):
    """The last STRIP_DAYS days up to yesterday, as subscribers see them (a daily file, or a day of
    the bundle when retention already delisted its file)."""
    published, partial = {}, set()
    if listing.mtd is not None:
        published.update(dict.fromkeys(listing.mtd.days_included, True))
        partial.update(listing.mtd.partial_days)
    for daily in listing.daily:
        published[daily.date.isoformat()] = True
        if daily.is_partial:
            partial.add(daily.date.isoformat())
    cells = []
    for offset in range(STRIP_DAYS, 0, -1):
        day = today - timedelta(days=offset)
        label = day.isoformat()
        if label in published:
            state = "partial" if label in partial else "published"
        else:
            state = "pending" if day > expected_newest else "missing"
        cells.append(DayCell(day, state))
    return cells


def tier_states(now):
    schedule = Schedule.from_settings()
    live = {(row.tier, row.state): row for row in TierToken.objects.live()}
    expected = expected_newest_day(now)
    today = now.date()
    states = []
    for tier in Tier:
        listing = list_files(tier.value)
        upcoming = live.get((tier.value, TokenState.NEXT))
        states.append(
            TierState(
                tier=tier,
                newest=listing.daily[0] if listing.daily else None,
                mtd=listing.mtd,
                strip=tier_strip(listing, expected, today),
                current=live.get((tier.value, TokenState.CURRENT)),
                upcoming=upcoming,
                next_announce=schedule.announce.next_after(now),
                next_promote=promote_after(upcoming.announced_at) if upcoming else schedule.promote.next_after(now),
            )
        )
    return states


def build_runs(limit=RECENT_RUNS):
    return [
        RunLine(
            what=run.command,
            at=run.started_at,
            outcome=run.get_outcome_display(),
            tone=run_tone(run.outcome),
            duration=human_duration(run.duration) if run.finished_at else "still running",
            failure=first_failure(run),
            url_name="admin:deliveries_buildrun_change",
            pk=run.pk,
        )
        for run in BuildRun.objects.filter(command="build_daily").order_by("-started_at")[:limit]
    ]


def rotation_runs(limit=RECENT_RUNS):
    lines = []
    for event in RotationEvent.objects.order_by("-at", "-pk")[:limit]:
        failed = [
            f"{tier}: {item.get('message')}"
            for tier, item in event.outcomes.items()
            if item.get("action") == Action.FAILED
        ]
        lines.append(
            RunLine(
                what=f"rotate_tokens --mode {event.mode} ({event.get_actor_display().lower()})",
                at=event.at,
                outcome=(Outcome.SUCCESS if event.ok else Outcome.FAILED).label,
                tone=GOOD if event.ok else BAD,
                duration="one transaction",
                failure=failed[0] if failed else "",
                url_name="admin:tokens_rotationevent_change",
                pk=event.pk,
            )
        )
    return lines


def downloads_chart(today, days=CHART_DAYS, *, unit=10, height=60):
    """Parquet downloads (daily files and bundles, not manifests) per tier per UTC day, the last
    ``days`` days up to today, on one scale for all tiers so they compare at a glance."""
    first = today - timedelta(days=days - 1)
    counts = {
        (row["tier"], row["day"]): row["n"]
        for row in DownloadCount.objects.filter(
            day__gte=first, day__lte=today, kind__in=[DownloadCount.Kind.DAILY, DownloadCount.Kind.MTD]
        )
        .values("tier", "day")
        .annotate(n=Sum("count"))
        .order_by()
    }
    peak = max(counts.values(), default=0)
    chart = Chart(first=first, last=today, peak=peak, width=days * unit, height=height)
    for tier in Tier:
        bars = []
        for index in range(days):
            day = first + timedelta(days=index)
            n = counts.get((tier.value, day), 0)
            h = round(n / peak * (height - 2), 1) if peak and n else 0
            bars.append({"day": day, "n": n, "x": index * unit + 1, "w": unit - 2, "y": height - h, "h": h})
        chart.rows.append({"tier": tier, "total": sum(bar["n"] for bar in bars), "bars": bars})
    return chart


def delivery_state(now=None):
    """Everything the page shows, computed once."""
    now = now or timezone.now()
    problems = health.run_checks(now=now)
    return {
        "now": now,
        "tiers": tier_states(now),
        "run_tables": [
            ("build_daily", build_runs(), "admin:deliveries_buildrun_changelist", "All build runs"),
            ("rotate_tokens", rotation_runs(), "admin:tokens_rotationevent_changelist", "All rotation events"),
        ],
        "failures": health.failures(problems),
        "warnings": health.warnings(problems),
        "chart": downloads_chart(now.date()),
        "deadline": settings.BUILD_DEADLINE_UTC,
        "build_time": settings.BUILD_TIME_UTC,
    }


def delivery_state_view(request):
    """``/admin/delivery-state/``: staff only (wrapped in ``admin_view`` in the URLconf)."""
    context = {**admin.site.each_context(request), "title": "Delivery state", **delivery_state()}
    return TemplateResponse(request, "admin/delivery_state.html", context)
