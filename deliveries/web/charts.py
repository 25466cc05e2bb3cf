"""The tier page's rows chart: which days to draw (retained days, the month's days, gaps and
partial days) and the geometry of the bars and labels, computed here so the template stays a
plain loop and the page needs no JavaScript."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings


@dataclass(frozen=True)
class Bar:
    """One day of the rows chart."""

    day: date
    rows: int | None
    state: str  # "full", "partial", "missing"
    in_mtd: bool
    in_daily: bool


def chart_days(listing, expected_last):
    """The retained days and the month's days, oldest first, with gaps and partial days marked.

    A day inside the shown span with no file is a gap; so is ``expected_last``, the newest day
    that should be published by now (``utc.expected_newest_day``), when it is within the
    retention window and not published yet.
    """
    rows, partial = {}, set()
    mtd_days = set()
    if listing.mtd is not None:
        rows.update(listing.mtd_day_rows())
        mtd_days = {date.fromisoformat(d) for d in listing.mtd.days_included}
        partial.update(listing.mtd.partial_days)
    daily_days = set()
    for daily in listing.daily:
        label = daily.date.isoformat()
        rows[label] = daily.row_count
        daily_days.add(daily.date)
        if daily.is_partial:
            partial.add(label)
    known = mtd_days | daily_days
    if listing.mtd is not None:
        known |= {listing.mtd.coverage_start, listing.mtd.coverage_end}
    if not known:
        return []
    first, last = min(known), max(known)
    if last < expected_last <= last + timedelta(days=settings.DAILY_RETENTION_DAYS):
        last = expected_last
    bars = []
    day = first
    while day <= last:
        label = day.isoformat()
        present = day in known and (day in mtd_days or day in daily_days)
        state = "missing" if not present else ("partial" if label in partial else "full")
        bars.append(Bar(day, rows.get(label) if present else None, state, day in mtd_days, day in daily_days))
        day += timedelta(days=1)
    return bars


def chart_data(bars, *, unit=10, plot=100):
    """Geometry for the rows chart: SVG bars in a viewBox stretched to the card (``unit`` per day,
    ``plot`` high), and day labels and spans as HTML on a grid of the same columns, so their text
    stays readable at any width. No JS."""
    if not bars:
        return None
    peak = max((bar.rows or 0) for bar in bars) or 1
    count = len(bars)
    shapes = []
    for index, bar in enumerate(bars):
        if bar.state == "missing":
            h = 6
        elif bar.rows is None:
            h = 12
        else:
            h = max(3, round(bar.rows / peak * (plot - 4), 1))
        shapes.append(
            {"x": index * unit + unit * 0.15, "y": plot - h, "w": unit * 0.7, "h": h, "cls": bar.state, "bar": bar}
        )
    step = 1 if count <= 16 else (2 if count <= 32 else 3)
    labels = []
    for index, bar in enumerate(bars):
        last = index == count - 1
        if last or (index % step == 0 and count - 1 - index >= step):
            minor = not last and index % (2 * step) != 0
            labels.append({"column": index + 1, "text": bar.day.day, "minor": minor})
    bands = []
    for name, attr in (("Month to date", "in_mtd"), ("Daily files", "in_daily")):
        indexes = [i for i, bar in enumerate(bars) if getattr(bar, attr)]
        if indexes:
            bands.append({"name": name, "start": indexes[0] + 1, "end": indexes[-1] + 2, "key": attr})
    return {
        "days": count,
        "width": count * unit,
        "height": plot,
        "shapes": shapes,
        "labels": labels,
        "bands": bands,
        "peak": peak,
        "has_gap": any(bar.state == "missing" for bar in bars),
        "has_partial": any(bar.state == "partial" for bar in bars),
        "first": bars[0].day,
        "last": bars[-1].day,
    }
