"""Collection: delete from storage what no subscriber can be sent to any more.

Retention and new versions only delist. A delisted version's objects stay until ``SIGNED_URL_EXPIRY``
has passed since it was delisted: until then an API ``signed_url`` handed out while it was listed
still works, and must fetch the bytes it was listed with. Orphans (objects no row knows, such as
the uploads of a run killed before it listed them) get the same grace, counted from when they
were last written.

Nothing listed is ever deleted: each deletion happens under ``versions.ledger_lock`` after checking
again, just then, that no row lists the object (see ``deliveries.versions``).
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import pluralize
from django.utils import timezone

from . import storage, versions
from .models import DailyFile, MonthBundle, StoredVersion
from .tiers import Tier


@dataclass
class CollectionReport:
    dry_run: bool
    cutoff: object  # delisted (or written, for orphans) at or before this: due
    versions: list = field(default_factory=list)  # StoredVersion collected (or due, in a dry run)
    orphans: list = field(default_factory=list)  # keys deleted (or due)
    kept: list = field(default_factory=list)  # due when listed, but listed again or known by then
    waiting: int = 0  # delisted versions still within their grace
    adopted: int = 0  # rows of versions from before the ledger, added to it

    @property
    def objects(self):
        return 2 * len(self.versions) + len(self.orphans)

    def summary(self):
        verb = "would collect" if self.dry_run else "collected"
        versions, orphans, waiting = len(self.versions), len(self.orphans), self.waiting
        line = (
            f"{verb} {versions} version{pluralize(versions)} and {orphans} orphan{pluralize(orphans)} "
            f"({self.objects} object{pluralize(self.objects)}); {waiting} delisted version{pluralize(waiting)} "
            f"{'waits' if waiting == 1 else 'wait'} for SIGNED_URL_EXPIRY ({grace_seconds()} s)"
        )
        if self.kept:
            line += f"; {len(self.kept)} left alone (listed or written again meanwhile)"
        return line + (" (dry run: nothing deleted)" if self.dry_run else "")


def grace_seconds():
    """How long a delisted version (or an orphan) is kept: ``SIGNED_URL_EXPIRY``, the life of the
    API's signed URLs, or the page's download redirects if those were set to last longer."""
    return max(settings.SIGNED_URL_EXPIRY, settings.DOWNLOAD_REDIRECT_EXPIRY)


def is_temporary(key):
    """Upload leftovers (``.incoming-*``, ``*.part``, dot files) are not orphans: a writer may own them."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") or name.endswith((".part", ".tmp"))


def collect_garbage(*, dry_run=False, now=None):
    """Delete the objects of versions delisted ``SIGNED_URL_EXPIRY`` ago or more, then orphans
    written that long ago. Returns a CollectionReport; a storage error propagates (a rerun
    finishes the job: deleting what is already gone is fine)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=grace_seconds())
    report = CollectionReport(dry_run=dry_run, cutoff=cutoff)
    if not dry_run:
        report.adopted = versions.adopt_unledgered(now)
    report.waiting = StoredVersion.objects.uncollected().filter(delisted_at__gt=cutoff).count()
    for version in StoredVersion.objects.due(cutoff).order_by("delisted_at", "pk"):
        if dry_run or collect_version(version.pk, cutoff, now):
            report.versions.append(version)
        else:
            report.kept.append(version.key)
    for key in _orphan_candidates(cutoff, dry_run=dry_run):
        if dry_run or collect_orphan(key, cutoff):
            report.orphans.append(key)
        else:
            report.kept.append(key)
    return report


def collect_version(pk, cutoff, now):
    """Delete one delisted version's objects, if it is still due: under the lock, the row is read
    again and every row that could list its keys is asked. True when deleted."""
    with transaction.atomic():
        versions.ledger_lock()
        version = StoredVersion.objects.filter(pk=pk).first()
        if version is None or version.collected_at is not None:
            return False
        if version.delisted_at is None or version.delisted_at > cutoff:
            return False  # listed again (or delisted again, later) since it was found due
        if versions.is_listed_key(version.key) or versions.is_listed_key(version.manifest_key):
            return False
        for key in (version.key, version.manifest_key):
            storage.delete(key)
        version.collected_at = now
        version.save(update_fields=["collected_at"])
    for key in (version.key, version.manifest_key):
        storage.prune_empty_folders(key)
    return True


def collect_orphan(key, cutoff):
    """Delete one orphan, if it still is one: under the lock, no row knows the key and the object
    was last written at or before ``cutoff``. True when deleted."""
    with transaction.atomic():
        versions.ledger_lock()
        if _is_known(key):
            return False
        modified = storage.modified_time(key)
        if modified is None or modified > cutoff:
            return False  # gone already, or written again (an upload under way) since it was listed
        storage.delete(key)
    storage.prune_empty_folders(key)
    return True


def _orphan_candidates(cutoff, *, dry_run):
    """Keys of objects under the tier prefixes that no row knows and that were last written at or
    before ``cutoff``. ``index/`` and anything outside the tier prefixes is never
    touched."""
    known = _known_keys(every_row=dry_run)
    candidates = []
    for tier in Tier.values:
        for key, modified in storage.list_objects(f"{tier}/"):
            if key not in known and not is_temporary(key) and modified <= cutoff:
                candidates.append(key)
    return candidates


def _known_keys(*, every_row=False):
    """Keys a row knows: ledger versions not collected yet, and the daily and month rows' current
    keys (all of them in a dry run, which adopts nothing: rows from before the ledger are then
    only known there)."""
    known = set()
    for key, manifest_key in StoredVersion.objects.uncollected().values_list("key", "manifest_key"):
        known.update((key, manifest_key))
    dailies = DailyFile.objects.all() if every_row else DailyFile.objects.published()
    for rows in (dailies, MonthBundle.objects.all()):
        for key, manifest_key in rows.values_list("key", "manifest_key"):
            known.update((key, manifest_key))
    return known


def _is_known(key):
    """Under the lock: a ledger version not collected has the key, or a row lists it."""
    uncollected = StoredVersion.objects.uncollected()
    if uncollected.filter(key=key).exists() or uncollected.filter(manifest_key=key).exists():
        return True
    return versions.is_listed_key(key)
