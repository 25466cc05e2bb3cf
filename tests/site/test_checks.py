"""System checks catch configuration mistakes before cron does, with stable ids."""

import pytest
from django.core.checks import run_checks
from django.db import connection


def ids():
    return {message.id for message in run_checks() if message.id.startswith("instrumetriq.")}


def test_development_defaults_have_no_issues(settings):
    settings.DEBUG = True  # pytest-django runs tests with DEBUG off; the defaults are for development
    assert ids() == set()


def test_production_with_https_and_own_token_secret_has_no_issues(settings):
    settings.DEBUG = False
    settings.SITE_URL = "https://data.example.com"
    settings.TOKEN_SECRET = "a-separate-secret-" + "x" * 40
    assert ids() == set()


def test_non_utc_time_zone_is_an_error(settings):
    settings.TIME_ZONE = "Europe/Paris"
    assert "instrumetriq.E001" in ids()


def test_custom_domain_on_the_private_bucket_is_an_error(settings):
    settings.STORAGE_BACKEND = "s3"
    settings.R2_CUSTOM_DOMAIN = "files.example.com"
    assert "instrumetriq.E002" in ids()


def test_site_url_without_scheme_is_an_error(settings):
    settings.SITE_URL = "example.com"
    assert "instrumetriq.E003" in ids()


def test_plain_http_site_url_in_production_is_a_warning(settings):
    settings.DEBUG = False
    settings.SITE_URL = "http://example.com"
    assert "instrumetriq.W001" in ids()


def test_impossible_delivery_settings_are_errors(settings):
    settings.MIN_HOURS = 30
    settings.DAILY_RETENTION_DAYS = 0
    settings.SIGNED_URL_EXPIRY = 8 * 24 * 3600
    settings.MAX_LINE_BYTES = 100_000  # would skip real entries (about 100 KB each)
    assert {"instrumetriq.E004", "instrumetriq.E005", "instrumetriq.E006", "instrumetriq.E009"} <= ids()


@pytest.mark.parametrize("reuse", [-1, 3601, 301])
def test_signed_url_reuse_past_its_bounds_is_an_error(settings, reuse):
    settings.SIGNED_URL_EXPIRY = 600  # reuse may be at most half of it: 301 is too much here
    settings.SIGNED_URL_REUSE = reuse
    assert "instrumetriq.E011" in ids()


def test_signed_url_reuse_of_zero_signs_each_request_and_is_allowed(settings):
    settings.SIGNED_URL_REUSE = 0
    assert "instrumetriq.E011" not in ids()


def test_malformed_schedule_is_an_error(settings):
    settings.BUILD_DEADLINE_UTC = "3am"
    settings.ROTATION_PROMOTE_WEEKDAY = 7
    assert {"instrumetriq.E007", "instrumetriq.E008"} <= ids()


def test_token_secret_falling_back_to_secret_key_in_production_is_a_warning(settings):
    settings.DEBUG = False
    settings.TOKEN_SECRET = settings.SECRET_KEY
    assert "instrumetriq.W002" in ids()


# --- check --deploy: what a real deployment needs of its settings (manage.py doctor reports them) --


def deploy_ids():
    return {
        message.id for message in run_checks(include_deployment_checks=True) if message.id.startswith("instrumetriq.")
    }


@pytest.fixture
def deployment(settings):
    """Production settings on R2: nothing for the deploy checks to say but SQLite (W104)."""
    settings.DEBUG = False
    settings.SITE_URL = "https://data.example.com"
    settings.ALLOWED_HOSTS = ["data.example.com"]
    settings.SECRET_KEY = "a-real-secret-key-" + "s" * 40
    settings.TOKEN_SECRET = "a-separate-secret-" + "x" * 40
    settings.STORAGE_BACKEND = "s3"
    return settings


def test_a_production_deployment_has_no_deploy_issues_but_sqlite(deployment):
    assert deploy_ids() == ({"instrumetriq.W104"} if connection.vendor == "sqlite" else set())


def test_deploy_checks_run_only_with_deploy(settings):
    settings.DEBUG = True
    assert "instrumetriq.E101" in deploy_ids()
    assert ids() == set()


def test_debug_on_is_a_deploy_error_not_only_djangos_warning(deployment):
    deployment.DEBUG = True
    assert "instrumetriq.E101" in deploy_ids()


def test_the_development_secret_key_is_a_deploy_error(deployment):
    deployment.SECRET_KEY = deployment.DEV_SECRET_KEY
    assert "instrumetriq.E102" in deploy_ids()


def test_a_short_token_secret_of_its_own_is_a_deploy_warning(deployment):
    deployment.TOKEN_SECRET = "t" * 31
    assert "instrumetriq.W101" in deploy_ids()
    deployment.TOKEN_SECRET = deployment.SECRET_KEY  # falling back is W002, not also W101
    assert {"instrumetriq.W002"} <= deploy_ids() and "instrumetriq.W101" not in deploy_ids()


def test_wildcard_allowed_hosts_is_a_deploy_warning(deployment):
    deployment.ALLOWED_HOSTS = ["*"]
    assert "instrumetriq.W102" in deploy_ids()


@pytest.mark.parametrize("hosts", [[], ["other.example.com"], ["localhost"]])
def test_allowed_hosts_without_the_site_urls_host_is_a_deploy_error(deployment, hosts):
    deployment.ALLOWED_HOSTS = hosts
    assert "instrumetriq.E103" in deploy_ids()


def test_a_subdomain_pattern_covering_the_site_url_is_enough(deployment):
    deployment.ALLOWED_HOSTS = [".example.com"]
    assert "instrumetriq.E103" not in deploy_ids()


def test_local_storage_is_a_deploy_warning(deployment):
    deployment.STORAGE_BACKEND = "local"
    assert "instrumetriq.W103" in deploy_ids()


def test_sqlite_is_a_deploy_warning_exactly_when_the_database_is_sqlite(deployment):
    assert ("instrumetriq.W104" in deploy_ids()) == (connection.vendor == "sqlite")
