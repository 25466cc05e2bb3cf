"""ORM queries compiled to SQL once per process, run with fresh parameters each time.

The tier page and every download run the same few small queries. In a request that takes about a
millisecond, Django rebuilding the same SQL each time is most of the cost. The query is written
with the ORM (so it stays portable and readable), its SQL and parameters are kept per process and
database, and placeholder parameters are swapped for the real values when it runs.
"""

import json
from datetime import UTC, date
from functools import lru_cache

from django.db import connection
from django.utils import timezone


def placeholder(name):
    """A parameter value no real row has, replaced by the value named ``name`` at run time."""
    return f"\x00{name}"


_compiled = {}


def compiled_sql(name, build):
    key = (name, connection.alias, connection.vendor)
    if key not in _compiled:
        _compiled[key] = build().query.sql_with_params()
    return _compiled[key]


def _aware(value):
    return value.replace(tzinfo=UTC) if timezone.is_naive(value) else value


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def _date(value):
    return date.fromisoformat(value) if isinstance(value, str) else value


_CONVERT = {"DateTimeField": _aware, "DateField": _date, "JSONField": _json, "BooleanField": bool}


def _kind(model, name, json_names, text_names):
    if name in json_names:
        return "JSONField"
    if name in text_names:
        return "TextField"
    return model._meta.get_field(name).get_internal_type()


@lru_cache(maxsize=32)
def _converters(model, names, json_names, text_names=()):
    """Per column, what the ORM's converters would do for the field types used here (or None)."""
    return tuple(_CONVERT.get(_kind(model, name, json_names, text_names)) for name in names)


def fetch(name, model, names, build, params, json_names=(), text_names=()):
    """Rows of ``build()`` (a ``values_list(*names)`` queryset) as dicts, from SQL compiled once.

    ``params`` maps placeholder values to real ones; ``json_names`` are annotations holding JSON,
    ``text_names`` annotations left as text (JSON decoded by the caller only when it needs it).
    """
    sql, template_params = compiled_sql(name, build)
    converters = _converters(model, tuple(names), tuple(json_names), tuple(text_names))
    with connection.cursor() as cursor:
        cursor.execute(sql, [params.get(p, p) for p in template_params])
        rows = cursor.fetchall()
    return [
        {
            column: convert(value) if convert is not None and value is not None else value
            for column, convert, value in zip(names, converters, row, strict=True)
        }
        for row in rows
    ]
