"""Know the data before downloading it: the tier page's column profiles and row preview.

Everything here is made from what the manifests already hold (``profile``, ``preview``: see
``deliveries.parquet.profile``), which the listing brings with the newest day: no Parquet is read during a
request. The HTML is built here, escaped, with no inline styles or scripts (the stylesheet styles
it), so it stays within the site's Content-Security-Policy.
"""

import pyarrow as pa
from django.utils.html import format_html, format_html_join, mark_safe

from ..tiers import describe_type, schema_for

HIST_WIDTH, HIST_HEIGHT = 40, 10
LONG_TEXT = 32  # characters: longer text wraps in its cell (the rest stays on one line)


# --- Column profiles -----------------------------------------------------------------------------


def number(value):
    """A figure short enough for a table cell: ints with separators, floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def share(part, whole):
    if not whole or not part:
        return "0%"
    if part == whole:
        return "100%"
    ratio = part / whole * 100
    if ratio < 0.1:
        return "<0.1%"
    if ratio > 99.9:
        return ">99.9%"
    return f"{ratio:.1f}%" if ratio < 10 else f"{ratio:.0f}%"


def null_text(figures):
    nulls, count = figures["null_count"], figures["count"]
    if not count:
        return "no values"
    if nulls == 0:
        return "no nulls"
    if nulls == count:
        return "all null"
    return f"{share(nulls, count)} null"


def time_span(low, high):
    """Two ISO times as "2026-11-23 00:04 – 23:59" (the date once when it is the same)."""
    first = low[:16].replace("T", " ")
    if low[:10] == high[:10]:
        return f"{first} – {high[11:16]}"
    return f"{first} – {high[:16].replace('T', ' ')}"


def range_text(figures):
    """The column's range in words: numbers, times, text lengths, symbols or true share."""
    kind = figures.get("kind")
    if kind == "number" and figures.get("min") is not None:
        text = f"{number(figures['min'])} – {number(figures['max'])}"
        return text if figures.get("mean") is None else f"{text} · mean {number(figures['mean'])}"
    if kind == "timestamp" and figures.get("min"):
        return time_span(figures["min"], figures["max"])
    if kind == "string" and figures.get("length", {}).get("min") is not None:
        low, high = figures["length"]["min"], figures["length"]["max"]
        text = f"{low} chars" if low == high else f"{low}–{high} chars"
        if "distinct" in figures:
            text = f"{figures['distinct']:,} distinct · {text}"
        return text
    if kind == "bool" and figures["count"] > figures["null_count"]:
        return f"{share(figures['true_count'], figures['count'] - figures['null_count'])} true"
    return ""


def list_text(figures):
    lengths = figures.get("list_length") or {}
    if lengths.get("min") is None:
        return ""
    low, high = lengths["min"], lengths["max"]
    return f"{number(low)} a row" if low == high else f"{number(low)}–{number(high)} a row"


def histogram_path(histogram):
    """The histogram as one SVG path (a step outline over HIST_WIDTH x HIST_HEIGHT), or ""."""
    counts = (histogram or {}).get("counts") or []
    peak = max(counts, default=0)
    if not peak:
        return ""
    width = HIST_WIDTH / len(counts)
    steps = [f"M0 {HIST_HEIGHT}"]
    for index, count in enumerate(counts):
        top = HIST_HEIGHT - (max(0.4, round(count / peak * HIST_HEIGHT, 1)) if count else 0)
        steps.append(f"V{round(top, 1):g}H{round((index + 1) * width, 1):g}")
    return "".join(steps) + f"V{HIST_HEIGHT}Z"


def profile_html(figures):
    """One column's profile as a line of HTML: null share, range, list lengths, histogram."""
    if figures is None:
        return ""
    text = " · ".join(part for part in (null_text(figures), range_text(figures), list_text(figures)) if part)
    path = histogram_path(figures.get("histogram"))
    if not path:
        return format_html('<span class="prof">{}</span>', text)
    return format_html(
        '<span class="prof">{}<svg class="hist" viewBox="0 0 {} {}" aria-hidden="true"><path d="{}"/></svg></span>',
        text,
        HIST_WIDTH,
        HIST_HEIGHT,
        path,
    )


def _leaves(type_, path):
    if pa.types.is_struct(type_):
        for field in type_:
            yield from _leaves(field.type, f"{path}.{field.name}" if path else field.name)
    elif pa.types.is_list(type_):
        yield from _leaves(type_.value_type, f"{path}[]")
    else:
        yield path, type_


def column_profiles(tier, profile):
    """The tier's columns in order, each with its profile line (``prof``) or, for a struct or a
    list, the HTML of its leaves (``leaves``: path inside it, type, profile line), from a
    manifest's ``profile`` (types only when there is none). Built as HTML here: a tier 3 page has
    264 leaves, and this keeps their markup short."""
    profile = profile or {}
    columns = []
    for field in schema_for(tier):
        leaves = list(_leaves(field.type, field.name))
        column = {"name": field.name, "type": describe_type(field.type), "nested": leaves[0][0] != field.name}
        if column["nested"]:
            column["leaves"] = format_html_join(
                "",
                '<li><code>{}</code><span class="type">{}</span>{}</li>',
                (
                    (path.removeprefix(field.name).lstrip("."), describe_type(type_), profile_html(profile.get(path)))
                    for path, type_ in leaves
                ),
            )
        else:
            column["prof"] = profile_html(profile.get(field.name))
        columns.append(column)
    return columns


# --- Row preview ---------------------------------------------------------------------------------


def _is_cut_list(value):
    return isinstance(value, dict) and set(value) == {"count", "items"} and isinstance(value["items"], list)


def cell_html(value):
    """One preview value as HTML: scalars as text, structs and lists folded in ``details``, null
    as a grey ``<i>null</i>``."""
    if value is None:
        return mark_safe("<i>null</i>")
    if _is_cut_list(value):
        count, items = value["count"], value["items"]
        if not count:
            return mark_safe("<i>[ ]</i>")
        more = format_html('<p class="more">first {} of {}</p>', len(items), f"{count:,}") if count > len(items) else ""
        return format_html(
            "<details><summary>{} item{}</summary><ol>{}</ol>{}</details>",
            f"{count:,}",
            "" if count == 1 else "s",
            format_html_join("", "<li>{}</li>", ((cell_html(item),) for item in items)),
            more,
        )
    if isinstance(value, dict):
        filled = sum(item is not None for item in value.values())
        # a struct's fields are in alphabetical order (the contract), which PostgreSQL's jsonb forgets
        fields = sorted(value.items())
        return format_html(
            "<details><summary>{} of {} fields</summary><dl>{}</dl></details>",
            filled,
            len(value),
            # </dt> and </dd> are optional in HTML: a tier 3 row has ~250 fields
            format_html_join("", "<dt>{}<dd>{}", ((key, cell_html(item)) for key, item in fields)),
        )
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) > LONG_TEXT:
        return format_html('<span class="text">{}</span>', value)
    return str(value)


def preview_table(preview):
    """{"columns", "rows": [[cell HTML]]} of a manifest's ``preview``, or None without one."""
    if not preview or not preview.get("rows"):
        return None
    columns = preview["columns"]
    rows = [[cell_html(row.get(name)) for name in columns] for row in preview["rows"]]
    return {"columns": columns, "rows": rows}
