"""System checks catch configuration mistakes before cron does, with stable ids."""

from django.core.checks import run_checks


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


def test_malformed_schedule_is_an_error(settings):
    settings.BUILD_DEADLINE_UTC = "3am"
    settings.ROTATION_PROMOTE_WEEKDAY = 7
    assert {"instrumetriq.E007", "instrumetriq.E008"} <= ids()


def test_token_secret_falling_back_to_secret_key_in_production_is_a_warning(settings):
    settings.DEBUG = False
    settings.TOKEN_SECRET = settings.SECRET_KEY
    assert "instrumetriq.W002" in ids()
