"""Settings: development works with no environment; production refuses to start unsafe."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
REAL_KEY = "k" * 20 + "-production-secret-key-0123456789-abcdefghij"


def load_settings(tmp_path, **env):
    """Import the settings in a fresh interpreter with exactly this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "SECRET", "DEBUG", "R2_"))}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="instrumetriq_site.settings", **env)
    code = "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.STORAGE_BACKEND)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)


def test_development_defaults_need_no_environment(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "local"]


def test_production_refuses_to_start_without_a_real_secret_key(tmp_path):
    result = load_settings(tmp_path, DEBUG="0", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "set SECRET_KEY" in result.stderr


def test_production_refuses_a_short_secret_key(tmp_path):
    result = load_settings(tmp_path, DEBUG="0", SECRET_KEY="short", ALLOWED_HOSTS="example.com")
    assert result.returncode != 0
    assert "at least 50 characters" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts(tmp_path):
    result = load_settings(tmp_path, DEBUG="0", SECRET_KEY=REAL_KEY)
    assert result.returncode != 0
    assert "ALLOWED_HOSTS" in result.stderr


def test_production_with_real_settings_starts(tmp_path):
    result = load_settings(tmp_path, DEBUG="0", SECRET_KEY=REAL_KEY, ALLOWED_HOSTS="example.com")
    assert result.returncode == 0, result.stderr


def test_s3_backend_without_credentials_is_refused_by_name(tmp_path):
    result = load_settings(tmp_path, STORAGE_BACKEND="s3", R2_BUCKET="b")
    assert result.returncode != 0
    assert "R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"), [("DEBUG", "maybe"), ("MIN_HOURS", "twenty"), ("PARQUET_SPLICE", "perhaps")]
)
def test_malformed_values_are_refused_with_the_setting_name(tmp_path, name, value):
    result = load_settings(tmp_path, **{name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE", "DEBUG", "SECRET"))}
    env.update(
        VAR_DIR=str(tmp_path),
        DEBUG="0",
        SECRET_KEY=REAL_KEY,
        TOKEN_SECRET="t" * 64,
        ALLOWED_HOSTS="data.example.com",
        SITE_URL="https://data.example.com",
        # As deployed: PostgreSQL and R2 (SQLite and local storage are deploy warnings, W104/W103).
        # check --deploy connects to neither.
        DATABASE_URL="postgres://instrumetriq@db.invalid:5432/instrumetriq",
        STORAGE_BACKEND="s3",
        R2_ENDPOINT="https://account.r2.cloudflarestorage.com",
        R2_ACCESS_KEY_ID="key-id",
        R2_SECRET_ACCESS_KEY="secret-access-key",
        R2_BUCKET="deliveries",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_signed_url_expiry_default_is_6_days_20_hours_under_the_7_day_cap(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k != "SIGNED_URL_EXPIRY"}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="instrumetriq_site.settings")
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SIGNED_URL_EXPIRY)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert int(result.stdout) == 6 * 86400 + 20 * 3600 == 590400 < 7 * 86400


def test_the_demo_site_url_is_read_back_with_debug_on_only(tmp_path):
    (tmp_path / "demo.env").write_text("# written by make demo\nSITE_URL=http://127.0.0.1:8200\n")
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SITE_URL)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SITE_URL", "DEBUG", "SECRET"))}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="instrumetriq_site.settings")
    run = lambda **env: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True
    ).stdout.strip()
    assert run() == "http://127.0.0.1:8200"
    assert run(SITE_URL="https://data.example.com") == "https://data.example.com"  # the environment wins
    assert run(DEBUG="0", SECRET_KEY=REAL_KEY, ALLOWED_HOSTS="example.com") == "http://127.0.0.1:8000"


def test_the_s3_backend_is_the_r2_class_with_its_client_options_in_effect(tmp_path):
    """settings only say where the bucket is; SigV4, path-style and R2's checksum rule are the
    class's, in the botocore config that the client really uses."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE", "SECRET", "DEBUG", "R2_"))}
    clean.update(VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="instrumetriq_site.settings", STORAGE_BACKEND="s3")
    clean.update(
        R2_ENDPOINT="https://a.r2.cloudflarestorage.com", R2_ACCESS_KEY_ID="k", R2_SECRET_ACCESS_KEY="s", R2_BUCKET="b"
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s; from deliveries import storage; "
        "store = storage.backend(); config = store.connection.meta.client.meta.config; "
        "print(type(store).__name__, sorted(s.STORAGES['deliveries']['OPTIONS']), config.signature_version, "
        "config.s3['addressing_style'], config.request_checksum_calculation)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(" ", 1)[0] == "R2DeliveryStorage"
    assert "client_config" not in result.stdout and "signature_version" not in result.stdout
    assert result.stdout.rstrip().endswith("s3v4 path when_required")
