"""A nightly run stopped at every step boundary in turn: what subscribers are shown stays true.

The run rebuilds a day from changed input (a new version replaces a listed one), publishes a new
day, rebuilds the month bundle, delists a day (retention) and collects a version and an orphan past
their grace. A first, clean run records every boundary it crosses: after each upload, before and
after each database switch (and retention's delisting), before each index rewrite, after each
deletion of the collection. Then, for each boundary, the run starts again from the same state and
is killed there (an exception no code catches, as a SIGKILL would be), and a subscriber looks:
every entry the API and the index list downloads (token link and signed URL, or the key the
index names) with its listed size and SHA-256. Then a rerun, and the state must equal the clean
run's: rows, ledger, objects in storage, index files and the API's answer.
"""

import hashlib
import json
import os
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
import time_machine
from django.db import transaction
from django.urls import reverse

from deliveries import index, pipeline, publish, sample, storage, versions
from deliveries.models import DailyFile, MonthBundle, StoredVersion
from tests.support.servers import fetch as fetch_over_http
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 4, 0, 30, tzinfo=UTC)  # the first night: Nov 1-3 published
T1 = T0 + timedelta(days=8)  # the run under test, past SIGNED_URL_EXPIRY since T0
DAYS = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)]
REBUILT, NEW_DAY = date(2026, 11, 3), date(2026, 11, 4)
KILLED_RUN_UPLOAD = "tier1/daily/2026-11-02/00000000deadbeef/data.parquet"


class Killed(BaseException):
    """Stops the run where it stands: no ``except Exception`` in the pipeline catches it."""


class Boundaries:
    """Counts the step boundaries a run crosses; raises Killed at the one numbered ``stop_at``."""

    def __init__(self, stop_at=None):
        self.stop_at = stop_at
        self.names = []

    def cross(self, name):
        self.names.append(name)
        if len(self.names) - 1 == self.stop_at:
            raise Killed(name)

    def patches(self):
        real_put, real_delete = storage.put_file, storage.delete
        real_verify, real_publish_index = versions.verify_present, index.publish_index
        real_delist_day = publish.delist_day

        def put_file(key, *args, **kwargs):
            real_put(key, *args, **kwargs)
            if key not in ("index/tier2.json", "index/tier3.json"):  # they list nothing in this run
                self.cross(f"after upload {key}")

        def delete(key):
            real_delete(key)
            self.cross(f"collecting: after delete {key}")

        def verify_present(key, *args):
            self.cross(f"before switch to {key}")  # inside the switch's transaction: it rolls back
            real_verify(key, *args)

        def publish_index(tiers=None, **kwargs):
            self.cross(f"after switch, before index of {tiers}")
            return real_publish_index(tiers, **kwargs)

        def delist_day(daily, now):
            self.cross(f"before delisting {daily}")
            return real_delist_day(daily, now)

        return [
            mock.patch.object(storage, "put_file", put_file),
            mock.patch.object(storage, "delete", delete),
            mock.patch.object(versions, "verify_present", verify_present),
            mock.patch.object(index, "publish_index", publish_index),
            mock.patch.object(publish, "delist_day", delist_day),
        ]


def run_night(boundaries=None):
    with time_machine.travel(T1, tick=False):
        if boundaries is None:
            return pipeline.run_nightly(days=[REBUILT, NEW_DAY], tiers=["tier1"])
        patches = boundaries.patches()
        for patch in patches:
            patch.start()
        try:
            return pipeline.run_nightly(days=[REBUILT, NEW_DAY], tiers=["tier1"])
        finally:
            for patch in patches:
                patch.stop()


def write_archive(day, seed=1):
    """A tiny day: 2 hour files of 2 entries (MIN_HOURS is lowered to match), so the 2 x 27 runs stay fast."""
    sample.write_day(sample_root(), day, entries_per_hour=2, samples_per_entry=2, seed=seed, missing_hours=range(2, 24))


def sample_root():
    from django.conf import settings

    return settings.ARCHIVE_ROOT


def set_written(key, moment, s3):
    """Make ``key`` look written at ``moment`` (for the collector's orphan grace)."""
    if s3:
        with time_machine.travel(moment, tick=False):  # moto stamps LastModified with the clock
            storage.put_bytes(key, storage.read_bytes(key), storage.PARQUET_CONTENT_TYPE)
    else:
        os.utime(storage.local_path(key), (moment.timestamp(), moment.timestamp()))


def initial_state(s3):
    """Nov 1-3 published and bundled on the night of T0 (retention keeps 2 days, so Nov 1 is
    delisted then), an upload a killed run left, then new input for Nov 3 and a new day Nov 4."""
    for day in DAYS:
        write_archive(day)
    with time_machine.travel(T0, tick=False):
        token = issue_current("tier1")
        assert pipeline.run_nightly(tiers=["tier1"]).ok
        storage.put_bytes(KILLED_RUN_UPLOAD, b"PAR1 half a file", storage.PARQUET_CONTENT_TYPE)
    set_written(KILLED_RUN_UPLOAD, T0, s3)
    write_archive(REBUILT, seed=2)
    write_archive(NEW_DAY)
    return token


def stored_objects():
    return {key: storage.read_bytes(key) for key in storage.list_keys()}


def restore(objects, s3):
    """Storage as it was before the run: what it added deleted, what it deleted or rewrote (the
    index files; the run rewrites no other object) put back as written at T0."""
    present = set(storage.list_keys())
    with time_machine.travel(T0, tick=False):
        for key in present - set(objects):
            storage.delete(key)
        for key, data in objects.items():
            if key not in present or key.startswith("index/"):
                storage.put_bytes(key, data, storage.JSON_CONTENT_TYPE)
                if not s3:
                    os.utime(storage.local_path(key), (T0.timestamp(), T0.timestamp()))


def object_digests(s3):
    """{key: digest} of every object: the bucket's ETags (MD5) on S3, SHA-256 of the files locally."""
    if s3:
        bucket = storage.backend()
        return {obj.key: obj.e_tag for obj in bucket.bucket.objects.all()}
    return {key: sha256(data) for key, data in stored_objects().items()}


def snapshot(client, token, s3):
    """Everything a subscriber or the collector could tell apart."""
    with time_machine.travel(T1 + timedelta(hours=1), tick=False):
        api = client.get(reverse("deliveries:api_tier", args=["tier1"]), {"t": token}).json()
    return {
        "api": api,
        "index": {key: storage.read_bytes(key) for key in storage.list_keys("index/")},
        "objects": object_digests(s3),
        "dailies": sorted(DailyFile.objects.values_list("tier", "date", "key", "sha256", "deleted_at")),
        "bundles": sorted(MonthBundle.objects.values_list("tier", "month", "key", "sha256", "days_included")),
        "ledger": sorted(StoredVersion.objects.values_list("key", "listed_at", "delisted_at", "collected_at")),
    }


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def fetch(client, url, settings):
    """(status, body) of a link a subscriber was given: through the site, then (S3) the bucket."""
    if url.startswith(settings.SITE_URL):
        response = client.get(url.removeprefix(settings.SITE_URL))
        if response.status_code != 302:
            body = b"".join(response.streaming_content) if response.streaming else response.content
            return response.status_code, body
        url = response["Location"]  # a presigned URL of the bucket
    status, _, body = fetch_over_http(url, timeout=10)
    return status, body


def listed_by_api(api):
    entries = ([api["mtd"]] if api["mtd"] else []) + api["daily"]
    return [(entry["filename"], entry["sha256"], entry["size_bytes"]) for entry in entries]


def listed_by_index(tier="tier1"):
    listed = json.loads(storage.read_bytes(storage.index_key(tier)))
    entries = ([listed["mtd"]] if listed["mtd"] else []) + listed["daily"]
    return [(entry["filename"], entry["sha256"], entry["size_bytes"]) for entry in entries]


def subscriber_problems(client, token, settings):
    """What a subscriber would find wrong: a listed file that does not download as listed."""
    problems = []
    with time_machine.travel(T1 + timedelta(minutes=30), tick=False):
        listing = client.get(reverse("deliveries:api_tier", args=["tier1"]), {"t": token}).json()
        for entry in ([listing["mtd"]] if listing["mtd"] else []) + listing["daily"]:
            for link in ("url", "signed_url"):
                status, body = fetch(client, entry[link], settings)
                if status != 200 or len(body) != entry["size_bytes"] or sha256(body) != entry["sha256"]:
                    problems.append(f"API {entry['filename']} {link}: {status}, {len(body)} bytes")
    for tier in ("tier1", "tier2", "tier3"):
        listed = json.loads(storage.read_bytes(storage.index_key(tier)))
        for entry in ([listed["mtd"]] if listed["mtd"] else []) + listed["daily"]:
            size = storage.size(entry["key"])
            if size != entry["size_bytes"] or sha256(storage.read_bytes(entry["key"])) != entry["sha256"]:
                problems.append(f"index {entry['key']}: {size} bytes")
            if not storage.exists(entry["manifest_key"]):
                problems.append(f"index {entry['manifest_key']} missing")
    return problems


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_a_run_killed_at_any_step_boundary_shows_subscribers_only_true_entries_and_a_rerun_ends_as_a_clean_run(
    backend, request, settings, client
):
    s3 = backend == "s3"
    if s3:
        request.getfixturevalue("s3_storage")
    settings.DAILY_RETENTION_DAYS = 2
    settings.MIN_HOURS = 2
    settings.SIGNED_URL_EXPIRY = 590400
    settings.SITE_URL = "https://data.example.test"
    token = initial_state(s3)
    objects = stored_objects()
    start = transaction.savepoint()

    boundaries = Boundaries()
    assert run_night(boundaries).ok
    clean = snapshot(client, token, s3)
    assert subscriber_problems(client, token, settings) == []
    listed = {entry["sha256"] for entry in clean["api"]["daily"]}
    assert len(listed) == 2 and clean["api"]["mtd"]["days_included"] == [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
    ]
    assert KILLED_RUN_UPLOAD not in clean["objects"], "the orphan was collected"
    assert listed_by_index() == listed_by_api(clean["api"]), "the index lists exactly what the API lists"
    assert sum(name.startswith("collecting") for name in boundaries.names) == 3, "a version's 2 objects and the orphan"
    kinds = {name.split(" ")[0] for name in boundaries.names}
    assert kinds == {"after", "before", "collecting:"}, boundaries.names

    for stop_at, name in enumerate(boundaries.names):
        transaction.savepoint_rollback(start)
        restore(objects, s3)
        with pytest.raises(Killed):
            run_night(Boundaries(stop_at))
        assert subscriber_problems(client, token, settings) == [], f"killed {name}"
        rerun = run_night()
        assert rerun.ok, f"rerun after being killed {name}: {rerun.summary()}"
        assert snapshot(client, token, s3) == clean, f"killed {name}"
    transaction.savepoint_rollback(start)
