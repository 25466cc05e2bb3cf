"""``manage.py doctor``: is this machine configured the way a real deployment needs?

``healthcheck`` asks whether the deliveries are fresh; the doctor asks whether the setup can work at
all. Settings are Django's system checks (``check --deploy``, ours in ``instrumetriq_site/checks.py``),
which the doctor reports as they are; everything else here is a live probe: the database, storage
permissions, presigned links, the archive, tokens, cron and the clock. Each finding is a ``Check``
in plain words. Messages never carry a secret: no keys, no tokens, no presigned URL (every message
goes through ``scrub`` on its way out).

Checks that cannot run because something they need failed (storage unreachable: no round trip;
database not migrated: no token check) are left out rather than reported twice.

Here: the system checks, the order and ``--skip``. The findings and their wording are in
``report``, the live probes in ``probes`` and ``cron``.
"""

import re

from django.core import checks as django_checks
from django.db import DatabaseError

from ..tiers import Tier
from .cron import check_cron
from .probes import check_archive, check_clock, check_database, check_storage, check_tokens
from .report import ERROR, WARNING, fail, ok, scrub, short

GROUPS = ("checks", "database", "storage", "archive", "tokens", "cron", "clock")
CHECK_ID = re.compile(r"^(checks\.)?[a-z_]+\.[CEWID]\d{3}$")  # a system check: instrumetriq.W104


# --- system checks -------------------------------------------------------------------------------


def check_system(skip=()):
    """Django's system checks with the deployment ones, as ``manage.py check --deploy`` runs them.
    The settings a deployment needs are checked there (``instrumetriq_site/checks.py``), never here:
    one place says what a setting must be. ``skip`` takes check ids (``instrumetriq.W104``)."""
    messages = [
        m
        for m in django_checks.run_checks(include_deployment_checks=True)
        if m.is_serious(django_checks.WARNING) and not m.is_silenced() and m.id not in skip
    ]
    if not messages:
        return [ok("checks", "manage.py check --deploy finds nothing.")]
    results = []
    for message in messages:
        level = ERROR if message.is_serious(django_checks.ERROR) else WARNING
        text = str(message.msg).split(". ")[0].rstrip(".")  # Django's security texts run on; the id says the rest
        hint = f" ({message.hint})" if message.hint else ""
        results.append(fail(f"checks.{message.id}", scrub(f"{text}.{hint}"), level))
    return results


# --- all -----------------------------------------------------------------------------------------


def run_doctor(*, fetch=True, skip=(), read_crontab=None, clock=None, now=None):
    """Every check, in a stable order. ``skip`` takes groups (``cron``) or names (``storage.presigned``).

    ``fetch=False`` makes no HTTP request outside the storage client: no presigned download, no clock.
    ``read_crontab`` and ``clock`` are injectable so tests never touch the real crontab or time.
    """
    skip = set(skip)

    def wanted(name):
        return name not in skip and name.split(".", 1)[0] not in skip

    results = []
    if wanted("checks"):
        results += check_system(skip)
    usable = False
    if wanted("database"):
        found, usable = check_database()
        results += found
    else:
        usable = True
    reachable = False
    if wanted("storage"):
        found, reachable = check_storage(fetch=fetch and wanted("storage.presigned"))
        results += found
    if wanted("archive"):
        results += check_archive(now)
    if wanted("tokens") and usable:
        try:
            results += check_tokens(now)
        except DatabaseError as exc:
            results.append(fail("tokens.query", f"cannot read the tokens ({short(exc)})."))
    if wanted("cron"):
        results += check_cron(read_crontab)
    if wanted("clock") and fetch and (reachable or not wanted("storage")):
        results += check_clock(clock)
    return [r for r in results if wanted(r.name)]


def is_known(name):
    """True for a group, a check name or a system check id that --skip accepts."""
    return name in _NAMES or bool(CHECK_ID.match(name))


_NAMES = frozenset(
    {
        *GROUPS,
        "database.reachable",
        "database.migrations",
        "storage.reachable",
        "storage.round_trip",
        "storage.presigned",
        "archive.root",
        "archive.recent",
        *(f"tokens.{tier}" for tier in Tier.values),
        "tokens.rotation",
        "cron.installed",
        "clock.skew",
    }
)


def summary(results, skipped=()):
    failed = sum(1 for r in results if r.failed)
    warned = sum(1 for r in results if not r.ok and not r.failed)
    passed = sum(1 for r in results if r.ok)
    text = f"doctor: {passed} ok, {warned} warning(s), {failed} failure(s)"
    if skipped:
        text += f"; skipped: {', '.join(sorted(skipped))}"
    return text
