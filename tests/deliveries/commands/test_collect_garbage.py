"""manage.py collect_garbage: thin over deliveries.collect; one summary line, --dry-run, errors as CommandError."""

import io
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.core.management import CommandError, call_command

from deliveries import locks, storage
from deliveries.models import BuildRun, StoredVersion
from deliveries.outcomes import Outcome
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 12, 1, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=8)  # past the default SIGNED_URL_EXPIRY of either value (580800 or 590400 s)


@pytest.fixture
def superseded():
    """A day rebuilt with new bytes at T0: its first version is delisted."""
    with time_machine.travel(T0, tick=False):
        old = publish_day("tier1", date(2026, 11, 11), rows=5)
        publish_day("tier1", date(2026, 11, 11), rows=6)
    return old


def run(*args, at=LATER):
    out = io.StringIO()
    with time_machine.travel(at, tick=False):
        call_command("collect_garbage", *args, stdout=out)
    return out.getvalue().splitlines()


def test_collects_what_is_due_and_says_so_in_one_line(superseded, settings):
    assert run() == [
        "collected 1 version and 0 orphans (2 objects); 0 delisted versions wait for SIGNED_URL_EXPIRY "
        f"({settings.SIGNED_URL_EXPIRY} s)"
    ]
    assert not storage.exists(superseded.key)
    assert BuildRun.objects.get(command="collect_garbage").outcome == Outcome.SUCCESS
    run()
    assert BuildRun.objects.filter(command="collect_garbage").latest("pk").outcome == Outcome.NOTHING_TO_DO


def test_a_version_within_its_grace_waits(superseded, settings):
    assert run(at=T0 + timedelta(hours=1))[0].startswith(
        "collected 0 versions and 0 orphans (0 objects); 1 delisted version waits"
    )
    assert storage.exists(superseded.key)


def test_dry_run_deletes_nothing(superseded):
    assert run("--dry-run")[0].startswith("would collect 1 version and 0 orphans (2 objects);")
    assert run("--dry-run")[0].endswith("(dry run: nothing deleted)")
    assert storage.exists(superseded.key)
    assert StoredVersion.objects.get(key=superseded.key).collected_at is None
    assert BuildRun.objects.filter(command="collect_garbage").first().outcome == Outcome.DRY_RUN


def test_verbose_lists_each_version(superseded):
    lines = run("-v", "2")
    assert (
        lines[0]
        == f"version tier1 daily 2026-11-11 {superseded.sha256[:16]}: {superseded.key}, {superseded.manifest_key}"
    )


def test_a_storage_failure_is_a_command_error_and_a_rerun_completes(superseded):
    with (
        mock.patch.object(storage, "delete", side_effect=storage.StorageError("storage delete of x failed: outage")),
        pytest.raises(CommandError, match=r"collection stopped \(a rerun completes it\): .*outage"),
    ):
        run()
    assert BuildRun.objects.get().outcome == Outcome.FAILED
    assert run()[0].startswith("collected 1 version and")


def test_a_held_lock_collects_nothing_and_exits_75(superseded):
    with locks.build_lock(holder="other-host:1"), pytest.raises(CommandError, match="nothing collected") as refused:
        run()
    assert refused.value.returncode == locks.EXIT_LOCKED
    assert storage.exists(superseded.key)
