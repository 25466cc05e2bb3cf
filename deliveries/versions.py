"""Published versions: listing and delisting them in the ledger, and the lock that keeps that safe
from the collector.

Every published file (data and manifest) lives in a folder of its own, named by its data's SHA-256
(``storage.version_keys``), and is never written again once listed. A ``StoredVersion`` row
remembers each version subscribers were shown and when it stopped being listed; the collector
(``deliveries.collect``) deletes its objects only ``SIGNED_URL_EXPIRY`` later.

Two rules make "nothing listed is ever missing" hold whatever runs at the same time:

- a version is listed only under ``ledger_lock``, after checking that its objects are in storage
  at the published size (``verify_present``);
- the collector deletes objects only under ``ledger_lock``, after checking again that no row
  lists them.

Whichever takes the lock second sees what the first did: the collector finds the version listed
and leaves it, or the publisher finds its objects gone and fails (a rerun uploads them again).

Listing or delisting a version also gives the tier a new ``ListingVersion`` in the same
transaction (``touch_listing``): the web side's cached pages are keyed by it.
"""

import uuid

from django.db import connection, transaction

from . import storage
from .models import DailyFile, ListingVersion, MonthBundle, StoredVersion

DAILY, MTD = StoredVersion.Kind.DAILY, StoredVersion.Kind.MTD
LOCK_NAMES = ("instrumetriq", "storage ledger")


class VersionMissing(storage.StorageError):
    """A version's objects are not in storage as published: it cannot be listed."""


def ledger_lock():
    """Take the ledger lock for the rest of the current transaction.

    PostgreSQL: a transaction-level advisory lock (two-key form, its own key space). SQLite: every
    transaction here begins IMMEDIATE (settings), so a writing transaction already excludes the
    others.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("ledger_lock() needs a transaction (transaction.atomic)")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(%s))", LOCK_NAMES)


def verify_present(key, manifest_key, size_bytes):
    """Raise VersionMissing unless the data object is in storage at ``size_bytes`` and the
    manifest is there. Called under the lock, just before listing."""
    actual = storage.size(key)
    if actual != size_bytes:
        found = "missing" if actual is None else f"{actual} bytes"
        raise VersionMissing(f"{key} is {found}, not the {size_bytes} bytes published; a rerun uploads it again")
    if not storage.exists(manifest_key):
        raise VersionMissing(f"{manifest_key} is missing; a rerun uploads it again")


def is_listed_key(key):
    """True when a row shows ``key`` (as data or manifest) to subscribers: a ledger version not
    delisted, a daily file retention has not delisted, or a tier's newest month bundle.

    The rows of the files are checked as well as the ledger, so that objects of installations
    from before the ledger (unversioned keys) are safe too.
    """
    if StoredVersion.objects.listed().filter(key=key).exists():
        return True
    if StoredVersion.objects.listed().filter(manifest_key=key).exists():
        return True
    if DailyFile.objects.published().filter(key=key).exists():
        return True
    if DailyFile.objects.published().filter(manifest_key=key).exists():
        return True
    for bundle in MonthBundle.objects.filter(key=key) | MonthBundle.objects.filter(manifest_key=key):
        if not is_closed_month(bundle.tier, bundle.month):
            return True
    return False


def is_closed_month(tier, first):
    """A month whose bundle a tier no longer lists: a later month has a bundle (contract section
    4: the bundle of the month just ended stays listed until the new month has its first day)."""
    return MonthBundle.objects.for_tier(tier).filter(month__gt=first).exists()


def touch_listing(tier, now):
    """Give the tier a new listing version: what it lists, or the tokens that open it, change in
    this transaction. The one function that does it: ``list_version`` and ``delist`` (every change
    to a listing goes through them) and a token rotation (``tokens_changed``) call it."""
    if not connection.in_atomic_block:
        raise RuntimeError("touch_listing() belongs in the transaction that changes the listing")
    ListingVersion.objects.update_or_create(tier=tier, defaults={"value": uuid.uuid4().hex, "changed_at": now})


def tokens_changed(sender, *, tier, at, **kwargs):
    """``tokens.signals.live_tokens_changed``: the links of the tier open other tokens now."""
    touch_listing(tier, at)


def list_version(tier, kind, label, key, manifest_key, sha256, size_bytes, now):
    """Mark a version listed (under the lock, after ``verify_present``); any other listed version
    of the same file is delisted in the same transaction."""
    touch_listing(tier, now)
    _delist_others(tier, kind, label, key, now)
    version, created = _ledger_row(tier, kind, label, key, manifest_key, sha256, size_bytes, listed_at=now)
    if not created:
        version.manifest_key, version.sha256, version.size_bytes = manifest_key, sha256, size_bytes
        version.listed_at, version.delisted_at, version.collected_at = now, None, None
        version.save(update_fields=["manifest_key", "sha256", "size_bytes", "listed_at", "delisted_at", "collected_at"])
    return version


def delist(tier, kind, label, key, manifest_key, sha256, size_bytes, now, *, listed_at=None):
    """Mark a version delisted as of ``now`` (its grace starts). A version the ledger does not know
    yet (published before the ledger existed) gets its row here."""
    touch_listing(tier, now)
    version, created = _ledger_row(
        tier, kind, label, key, manifest_key, sha256, size_bytes, listed_at=listed_at or now, delisted_at=now
    )
    if not created and version.delisted_at is None:
        StoredVersion.objects.filter(pk=version.pk, delisted_at__isnull=True).update(delisted_at=now)
    return version


def _ledger_row(tier, kind, label, key, manifest_key, sha256, size_bytes, *, listed_at, delisted_at=None):
    """(row, created): the ledger's row of the version at ``key``, made from these values when
    the ledger does not know it yet (an existing row is returned as it is)."""
    return StoredVersion.objects.get_or_create(
        key=key,
        defaults={
            "tier": tier,
            "kind": kind,
            "label": label,
            "manifest_key": manifest_key,
            "sha256": sha256,
            "size_bytes": size_bytes,
            "listed_at": listed_at,
            "delisted_at": delisted_at,
        },
    )


def _delist_others(tier, kind, label, key, now):
    StoredVersion.objects.listed().filter(tier=tier, kind=kind, label=label).exclude(key=key).update(delisted_at=now)


def delist_daily(daily, now):
    """A DailyFile row's version, delisted (retention, or replaced by a new version)."""
    return _delist_row(daily, DAILY, daily.date.isoformat(), daily.published_at, now)


def delist_bundle(bundle, now):
    """A MonthBundle row's version, delisted (replaced by a new version, or its month closed)."""
    return _delist_row(bundle, MTD, bundle.month_label, bundle.built_at, now)


def _delist_row(row, kind, label, listed_at, now):
    return delist(
        row.tier, kind, label, row.key, row.manifest_key, row.sha256, row.size_bytes, now, listed_at=listed_at
    )


def close_months_before(tier, first, now):
    """Delist the tier's bundles of months before ``first`` (its new newest month)."""
    label = f"{first:%Y-%m}"
    StoredVersion.objects.listed().filter(tier=tier, kind=MTD, label__lt=label).update(delisted_at=now)
    delisted = StoredVersion.objects.delisted().values("key")
    for bundle in MonthBundle.objects.for_tier(tier).filter(month__lt=first).exclude(key__in=delisted):
        delist_bundle(bundle, now)  # a bundle from before the ledger: its row starts here


def adopt_unledgered(now):
    """Give a ledger row to every file row whose version has none (published by an installation
    from before the ledger): listed when the row is shown, else delisted as of its ``deleted_at``
    (a daily file) or ``now`` (a bundle of a closed month: when it was closed is not known, so its
    grace starts now). Returns the number of rows added."""
    known = StoredVersion.objects.values("key")
    added = 0
    with transaction.atomic():
        ledger_lock()
        for daily in DailyFile.objects.exclude(key__in=known):
            if daily.deleted_at is None:
                _adopt_listed(daily, DAILY, daily.date.isoformat(), daily.published_at)
            else:
                delist_daily(daily, daily.deleted_at)
            added += 1
        for bundle in MonthBundle.objects.exclude(key__in=known):
            if is_closed_month(bundle.tier, bundle.month):
                delist_bundle(bundle, now)
            else:
                _adopt_listed(bundle, MTD, bundle.month_label, bundle.built_at)
            added += 1
    return added


def _adopt_listed(row, kind, label, listed_at):
    if StoredVersion.objects.listed().filter(tier=row.tier, kind=kind, label=label).exists():
        return  # the ledger already lists another version of it: that one wins
    _ledger_row(row.tier, kind, label, row.key, row.manifest_key, row.sha256, row.size_bytes, listed_at=listed_at)
