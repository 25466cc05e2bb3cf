"""manage.py doctor: every broken state it must name in plain words, and a clean bill on a good setup.

The happy path runs on moto's S3 server over HTTP (a real presigned download, a real Date header);
the crontab is always injected, never the machine's own.
"""

import io
import re
import stat
from datetime import timedelta
from types import SimpleNamespace

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone

from deliveries import doctor, sample, storage
from tests.support.servers import free_port
from tokens import rotation

pytestmark = pytest.mark.django_db

SECRET_KEY = "k" * 20 + "A1b2C3d4E5f6G7h8I9j0" + "x" * 30
TOKEN_SECRET = "t0ken-secret-" + "z" * 40


@pytest.fixture
def production(settings, monkeypatch):
    """Settings as a real deployment has them (the security ones DEBUG=0 would turn on)."""
    # The browser tests set this for the whole session; a deployment never has it (async.E001).
    monkeypatch.delenv("DJANGO_ALLOW_ASYNC_UNSAFE", raising=False)
    settings.DEBUG = False
    settings.SECRET_KEY = SECRET_KEY
    settings.TOKEN_SECRET = TOKEN_SECRET
    settings.SITE_URL = "https://downloads.example.com"
    settings.ALLOWED_HOSTS = ["downloads.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = True
    settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return settings


@pytest.fixture
def archive_day(settings):
    return sample.write_day(settings.ARCHIVE_ROOT, sample.yesterday_utc())


@pytest.fixture
def issued():
    rotation.init()


def installed_crontab():
    return "MAILTO=ops@example.com\n" + "\n".join(doctor.cron.expected_cron_lines()) + "\n"


def by_name(results):
    found = {}
    for result in results:
        found.setdefault(result.name, []).append(result)
    return found


def one(results, name):
    matches = by_name(results)[name]
    assert len(matches) == 1, matches
    return matches[0]


def failures(results):
    return {r.name: r.message for r in results if not r.ok}


# --- the good setup -------------------------------------------------------------------------------


@pytest.mark.s3
def test_a_good_s3_deployment_passes_every_check(production, s3_storage, archive_day, issued, on_postgres):
    results = doctor.run_doctor(read_crontab=installed_crontab)
    sqlite = "checks.instrumetriq.W104"  # SQLite is a deploy warning, never an error
    assert set(failures(results)) == (set() if on_postgres else {sqlite}), failures(results)
    if on_postgres:
        assert one(results, "checks").message == "manage.py check --deploy finds nothing."
    else:
        assert one(results, sqlite).status == "WARN"
    names = [r.name for r in results]
    for name in (
        "database.migrations",
        "storage.round_trip",
        "storage.presigned",
        "archive.recent",
        "tokens.tier1",
        "tokens.tier2",
        "tokens.tier3",
        "tokens.rotation",
        "cron.installed",
        "clock.skew",
    ):
        assert name in names
    assert "presigned link downloads the scratch object" in one(results, "storage.presigned").message
    assert one(results, "clock.skew").message.startswith("clock within")
    # The scratch object is gone again, and nothing of it is under a tier prefix.
    assert storage.list_keys(doctor.probes.SCRATCH_PREFIX) == []


@pytest.mark.s3
def test_no_message_carries_a_secret(production, s3_storage, archive_day, issued):
    from tokens.links import tier_links

    results = doctor.run_doctor(read_crontab=installed_crontab)
    text = "\n".join(r.message for r in results)
    urls = [item.current_url for item in tier_links()]
    for secret in (SECRET_KEY, TOKEN_SECRET, "testing", *urls, "X-Amz-Signature", "?t="):
        assert secret not in text


def test_scrub_removes_configured_secrets_and_tokens(production):
    production.R2_SECRET_ACCESS_KEY = "r2-secret-value"
    text = doctor.scrub(f"boom {SECRET_KEY} r2-secret-value /downloads/tier1?t=abcdef\nsecond line")
    assert text == "boom [redacted] [redacted] /downloads/tier1?t=[redacted] second line"


def test_local_storage_checks_signed_links_and_has_no_remote_clock(production, archive_day, issued):
    results = doctor.run_doctor(read_crontab=installed_crontab)
    assert one(results, "storage.presigned").ok
    assert "signed local links verify" in one(results, "storage.presigned").message
    assert one(results, "clock.skew").message == "local storage: no remote clock."
    warning = one(results, "checks.instrumetriq.W103")
    assert (warning.ok, warning.level) == (False, "warning")
    assert warning.message.startswith("STORAGE_BACKEND is local")


# --- settings: the system checks of check --deploy, as they are --------------------------------


def test_development_settings_are_named_by_their_system_check_ids(settings):
    settings.DEBUG = True
    settings.SECRET_KEY = settings.DEV_SECRET_KEY
    settings.TOKEN_SECRET = "short-token-secret"
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["localhost"]
    results = doctor.run_doctor(skip={"database", "storage", "archive", "tokens", "cron", "clock"})
    found = {r.name: r for r in results}
    assert found["checks.instrumetriq.E101"].failed and "Set DEBUG=0" in found["checks.instrumetriq.E101"].message
    assert (
        found["checks.instrumetriq.E102"].failed
        and "50+ random characters" in found["checks.instrumetriq.E102"].message
    )
    assert found["checks.instrumetriq.W101"].status == "WARN"
    assert found["checks.instrumetriq.E103"].failed
    assert "127.0.0.1 is not in ALLOWED_HOSTS" in found["checks.instrumetriq.E103"].message
    assert found["checks.security.W018"].status == "WARN"  # Django's own, reported as it is
    assert settings.SECRET_KEY not in "\n".join(r.message for r in results)


def test_the_doctor_reports_exactly_what_check_deploy_finds(production):
    """No settings check of the doctor's own: its lines are check --deploy's messages, one each."""
    production.ALLOWED_HOSTS = ["*"]
    production.TOKEN_SECRET = production.SECRET_KEY
    out, err = io.StringIO(), io.StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    said = set(re.findall(r"\(([a-z_]+\.[CEWID]\d{3})\)", out.getvalue() + err.getvalue()))
    assert {"instrumetriq.W002", "instrumetriq.W102"} <= said
    assert {r.name for r in doctor.check_system()} == {f"checks.{check_id}" for check_id in said}


def test_system_check_errors_are_failures_and_warnings_are_not(production):
    production.R2_CUSTOM_DOMAIN = "files.example.com"
    production.STORAGE_BACKEND = "s3"
    production.ALLOWED_HOSTS = ["*"]
    results = by_name(doctor.check_system())
    assert results["checks.instrumetriq.E002"][0].failed
    assert results["checks.instrumetriq.W102"][0].status == "WARN"


def test_a_system_check_skipped_by_its_id_is_left_out(production):
    production.ALLOWED_HOSTS = ["*"]
    assert "checks.instrumetriq.W102" not in by_name(
        doctor.run_doctor(skip={"instrumetriq.W102", "database", "storage", "archive", "tokens", "cron", "clock"})
    )


# --- database -------------------------------------------------------------------------------------


def test_unreachable_database(production, monkeypatch):
    def refuse():
        raise OperationalError('connection to server at "db.internal", port 5432 failed: Connection refused')

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    results = doctor.run_doctor(skip={"checks", "storage", "archive", "cron", "clock"})
    assert failures(results)["database.reachable"].startswith("cannot connect to the database (OperationalError")
    assert not any(r.name.startswith("tokens.") for r in results)  # not checked without a database


def test_unapplied_migrations(production, monkeypatch, issued):
    pending = [(SimpleNamespace(app_label="deliveries", name="0099_future"), False)]
    monkeypatch.setattr(doctor.probes.MigrationExecutor, "migration_plan", lambda self, targets: pending)
    results = doctor.run_doctor(skip={"checks", "storage", "archive", "cron", "clock"})
    assert failures(results)["database.migrations"] == (
        "1 migration(s) not applied (deliveries.0099_future): run manage.py migrate."
    )
    assert not any(r.name.startswith("tokens.") for r in results)


# --- storage --------------------------------------------------------------------------------------


@pytest.mark.s3
def test_unreachable_storage(production, s3_storage):
    port = free_port()  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    options = {
        **production.STORAGES["deliveries"]["OPTIONS"],
        "endpoint_url": endpoint,
        "client_config": Config(retries={"max_attempts": 1}, connect_timeout=2),
    }
    production.STORAGES = {
        **production.STORAGES,
        "deliveries": {**production.STORAGES["deliveries"], "OPTIONS": options},
    }
    production.R2_ENDPOINT = endpoint
    results = doctor.run_doctor(skip={"checks", "archive", "tokens", "cron"})
    assert [r.name for r in results] == ["database.reachable", "database.migrations", "storage.reachable"]
    message = failures(results)["storage.reachable"]
    assert message.startswith(f"storage (s3) is unreachable: cannot reach {endpoint}")
    assert "round-trip, presigned-link and clock checks need it" in message


@pytest.mark.s3
def test_missing_bucket(production, s3_storage):
    production.R2_BUCKET = "no-such-bucket"
    options = {**production.STORAGES["deliveries"]["OPTIONS"], "bucket_name": "no-such-bucket"}
    production.STORAGES = {
        **production.STORAGES,
        "deliveries": {**production.STORAGES["deliveries"], "OPTIONS": options},
    }
    results = doctor.check_storage()[0]
    assert "the bucket 'no-such-bucket' does not exist" in failures(results)["storage.reachable"]


def test_storage_that_refuses_deletes(production, monkeypatch):
    def denied(key):
        error = ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "DeleteObject")
        raise storage.StorageError(f"storage delete of {key} failed") from error

    monkeypatch.setattr(storage, "delete", denied)
    results, reachable = doctor.check_storage()
    assert reachable
    message = failures(results)["storage.round_trip"]
    assert message.startswith("cannot delete a scratch object (doctor/scratch-")
    assert "access denied: the API token needs Object Read & Write on this bucket" in message
    assert one(results, "storage.presigned").ok  # checked before the delete


@pytest.mark.s3
def test_presigned_link_that_does_not_download(production, s3_storage, monkeypatch):
    real = storage.download_url
    monkeypatch.setattr(storage, "download_url", lambda key, *args: real("doctor/not-there.txt", *args))
    results, _ = doctor.check_storage()
    assert failures(results)["storage.presigned"].startswith("a presigned link answered HTTP 403")
    assert one(results, "storage.round_trip").ok
    assert storage.list_keys(doctor.probes.SCRATCH_PREFIX) == []


@pytest.mark.s3
def test_no_fetch_makes_no_presigned_download_and_no_clock_check(production, s3_storage):
    results = doctor.run_doctor(fetch=False, skip={"checks", "archive", "tokens", "cron"})
    names = [r.name for r in results]
    assert "storage.round_trip" in names
    assert "storage.presigned" not in names and "clock.skew" not in names


# --- clock ----------------------------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize("offset", [timedelta(minutes=5), timedelta(minutes=-3)])
def test_a_wrong_clock_fails(production, s3_storage, offset):
    result = one(doctor.check_clock(clock=lambda: timezone.now() + offset), "clock.skew")
    assert result.failed
    direction = "ahead of" if offset > timedelta(0) else "behind"
    assert f"s {direction} the storage server's" in result.message
    assert "timedatectl set-ntp true" in result.message


@pytest.mark.s3
def test_a_clock_within_a_minute_passes(production, s3_storage):
    result = one(doctor.check_clock(clock=lambda: timezone.now() - timedelta(seconds=30)), "clock.skew")
    assert result.ok, result.message


# --- archive --------------------------------------------------------------------------------------


def test_missing_archive_root(production, tmp_path):
    production.ARCHIVE_ROOT = tmp_path / "nowhere"
    assert failures(doctor.check_archive()) == {
        "archive.root": f"ARCHIVE_ROOT {tmp_path / 'nowhere'} does not exist or is not a folder."
    }


def test_archive_without_day_folders(production):
    (production.ARCHIVE_ROOT / "notes").mkdir()
    message = failures(doctor.check_archive())["archive.recent"]
    assert message.startswith("no day folders (YYYYMMDD) in")


def test_archive_that_stopped(production):
    old = sample.yesterday_utc() - timedelta(days=4)
    sample.write_day(production.ARCHIVE_ROOT, old, entries_per_hour=1, samples_per_entry=1)
    message = failures(doctor.check_archive())["archive.recent"]
    assert message.startswith(f"the newest day folder is {old} (5 days old)")


def test_yesterday_short_of_hours_is_a_warning(production):
    day = sample.yesterday_utc()
    sample.write_day(production.ARCHIVE_ROOT, day, entries_per_hour=1, samples_per_entry=1, missing_hours=range(10))
    result = one(doctor.check_archive(), "archive.recent")
    assert result.status == "WARN"
    assert f"yesterday ({day}) has 14 hour files, fewer than MIN_HOURS=20" in result.message


def test_unreadable_hour_file(production, archive_day):
    hour = archive_day.path / "00.jsonl.gz"
    hour.write_bytes(b"not gzip")
    assert "is not gzip" in failures(doctor.check_archive())["archive.recent"]


def test_today_folder_alone_is_recent_enough(production):
    sample.write_day(production.ARCHIVE_ROOT, sample.today_utc(), entries_per_hour=1, samples_per_entry=1)
    assert one(doctor.check_archive(), "archive.recent").ok


# --- tokens ---------------------------------------------------------------------------------------


def test_tiers_without_tokens(production):
    results = doctor.check_tokens()
    assert failures(results) == {
        f"tokens.{tier}": f"{tier} ({plan}): No token has been issued: run rotate_tokens --mode init."
        for tier, plan in (("tier1", "Explorer"), ("tier2", "Analyst"), ("tier3", "Researcher"))
    }
    assert "tokens.rotation" not in by_name(results)


def test_tokens_sealed_with_another_secret(production, issued):
    production.TOKEN_SECRET = "another-token-secret-" + "q" * 30
    message = failures(doctor.check_tokens())["tokens.tier2"]
    assert "TOKEN_SECRET changed" in message and "rotate_tokens --mode emergency --tier tier2" in message


def test_no_rotation_for_over_a_week_is_a_warning(production, issued):
    later = timezone.now() + timedelta(days=9)
    result = one(doctor.check_tokens(now=later), "tokens.rotation")
    assert result.status == "WARN" and "cron jobs are not running" in result.message


# --- cron -----------------------------------------------------------------------------------------


def test_crontab_binary_missing(production, tmp_path):
    production.CRONTAB_EXECUTABLE = str(tmp_path / "no-crontab-here")
    result = one(doctor.check_cron(), "cron.installed")
    assert result.failed
    assert "is not installed (apt install cron)" in result.message
    assert "manage.py crontab add" in result.message


def fake_crontab(tmp_path, script):
    path = tmp_path / "crontab"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_user_without_a_crontab(production, tmp_path):
    production.CRONTAB_EXECUTABLE = fake_crontab(tmp_path, 'echo "no crontab for instrumetriq" >&2; exit 1')
    assert doctor.cron.read_user_crontab() == ""
    result = one(doctor.check_cron(), "cron.installed")
    assert result.message.startswith("3 of 3 cron jobs are not installed (build_daily at '30 0 * * *'; ")
    assert result.message.endswith("run `manage.py crontab add` as the user that runs the site.")


def test_crontab_that_cannot_be_read(production, tmp_path):
    production.CRONTAB_EXECUTABLE = fake_crontab(tmp_path, 'echo "crontab: permission denied" >&2; exit 1')
    assert "crontab -l failed: crontab: permission denied" in one(doctor.check_cron(), "cron.installed").message


def test_installed_crontab_read_through_the_binary(production, tmp_path):
    listing = tmp_path / "listing"
    listing.write_text(installed_crontab())
    production.CRONTAB_EXECUTABLE = fake_crontab(tmp_path, f'cat "{listing}"')
    assert one(doctor.check_cron(), "cron.installed").ok


def test_one_job_missing(production):
    lines = doctor.cron.expected_cron_lines()
    result = one(doctor.check_cron(lambda: "\n".join(lines[:2])), "cron.installed")
    assert result.message.startswith("1 of 3 cron jobs are not installed (rotate_tokens --mode promote at '0 0 * * 1')")


def test_lines_of_an_older_schedule(production):
    old = installed_crontab()
    production.BUILD_TIME_UTC = "01:15"
    production.CRONJOBS = [("15 1 * * *", *production.CRONJOBS[0][1:]), *production.CRONJOBS[1:]]
    messages = [r.message for r in doctor.check_cron(lambda: old)]
    assert messages[0].startswith("1 of 3 cron jobs are not installed (build_daily at '15 1 * * *')")
    assert messages[1].startswith("1 django-crontab line(s) no longer match CRONJOBS")


def test_jobs_installed_from_another_python_are_a_warning(production):
    moved = installed_crontab().replace(" /", " /old/venv/", 1)
    result = one(doctor.check_cron(lambda: moved), "cron.installed")
    assert result.status == "WARN" and "another python or manage.py path" in result.message


# --- the command ----------------------------------------------------------------------------------


def test_command_prints_a_line_per_check_and_fails_on_errors(production, monkeypatch):
    monkeypatch.setattr(doctor.cron, "read_user_crontab", lambda: "")
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"^doctor: \d+ ok, \d+ warning\(s\), \d+ failure\(s\); skipped: checks$"):
        call_command("doctor", "--skip", "checks", stdout=out)
    lines = out.getvalue().splitlines()
    assert "OK   database.migrations: every migration is applied." in lines
    assert any(line.startswith("FAIL tokens.tier1: tier1 (Explorer): No token has been issued") for line in lines)
    assert any(line.startswith("FAIL cron.installed: 3 of 3 cron jobs") for line in lines)
    assert any(line.startswith("FAIL archive.recent: no day folders") for line in lines)


@pytest.mark.s3
def test_command_exits_zero_when_only_warnings_remain(production, s3_storage, archive_day, issued):
    out = io.StringIO()
    call_command("doctor", "--skip", "cron,instrumetriq.W104", stdout=out)  # W104: SQLite
    lines = out.getvalue().splitlines()
    assert all(line.startswith("OK   ") for line in lines[:-1]), lines
    assert "OK   checks: manage.py check --deploy finds nothing." in lines
    assert lines[-1].startswith("doctor: ") and lines[-1].endswith(
        "ok, 0 warning(s), 0 failure(s); skipped: cron, instrumetriq.W104"
    )


@pytest.mark.parametrize("name", ["crontab", "settings", "settings.debug", "instrumetriq.X104", "W104"])
def test_command_refuses_unknown_skip_names(name):
    with pytest.raises(CommandError, match="unknown check"):
        call_command("doctor", "--skip", name)
