"""Configuration mistakes caught at start-up, not at 00:30 by cron. Ids are stable: E001...,
W001... for every run; E101..., W101... for ``check --deploy`` only (and ``manage.py doctor``)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.http.request import validate_host

from .utc import parse_hhmm


@register()
def check_time_zone(app_configs, **kwargs):
    if settings.TIME_ZONE != "UTC" or not settings.USE_TZ:
        return [
            Error("TIME_ZONE must be 'UTC' with USE_TZ on: every date in the product is UTC.", id="instrumetriq.E001")
        ]
    return []


@register()
def check_no_custom_domain(app_configs, **kwargs):
    if settings.STORAGE_BACKEND == "s3" and settings.R2_CUSTOM_DOMAIN:
        return [
            Error(
                "R2_CUSTOM_DOMAIN is set on the private delivery bucket.",
                hint="Presigned links must use the R2 endpoint; a custom domain makes django-storages "
                "hand out unsigned public URLs. Unset R2_CUSTOM_DOMAIN.",
                id="instrumetriq.E002",
            )
        ]
    return []


@register()
def check_site_url(app_configs, **kwargs):
    messages = []
    if not settings.SITE_URL.startswith(("http://", "https://")):
        messages.append(Error("SITE_URL must start with http:// or https://.", id="instrumetriq.E003"))
    elif not settings.DEBUG and not settings.SITE_URL.startswith("https://"):
        messages.append(
            Warning("SITE_URL is not https: Patreon links would send tokens in clear text.", id="instrumetriq.W001")
        )
    return messages


@register()
def check_delivery_settings(app_configs, **kwargs):
    messages = []
    if not 0 < settings.MIN_HOURS <= 24:
        messages.append(Error("MIN_HOURS must be between 1 and 24.", id="instrumetriq.E004"))
    if settings.DAILY_RETENTION_DAYS < 1:
        messages.append(Error("DAILY_RETENTION_DAYS must be at least 1.", id="instrumetriq.E005"))
    if not 0 < settings.SIGNED_URL_EXPIRY <= 7 * 24 * 3600:
        messages.append(
            Error("SIGNED_URL_EXPIRY must be between 1 second and 7 days (the S3/R2 limit).", id="instrumetriq.E006")
        )
    if not 0 <= settings.SIGNED_URL_REUSE <= min(3600, settings.SIGNED_URL_EXPIRY // 2):
        messages.append(
            Error(
                "SIGNED_URL_REUSE must be between 0 (sign each request) and 3600 seconds, and at most half of "
                "SIGNED_URL_EXPIRY: a script is handed signed URLs that old.",
                id="instrumetriq.E011",
            )
        )
    if settings.MAX_LINE_BYTES < 1024 * 1024:
        messages.append(
            Error(
                "MAX_LINE_BYTES must be at least 1048576 (1 MiB): a real archive entry is about 100 KB, and a "
                "longer line is skipped.",
                id="instrumetriq.E009",
            )
        )
    if settings.ARCHIVE_READER not in ("fast", "strict"):
        messages.append(
            Error(
                f"ARCHIVE_READER must be 'fast' or 'strict', not {settings.ARCHIVE_READER!r}.", id="instrumetriq.E010"
            )
        )
    for name in ("BUILD_DEADLINE_UTC", "BUILD_TIME_UTC", "ROTATION_ANNOUNCE_TIME_UTC", "ROTATION_PROMOTE_TIME_UTC"):
        value = getattr(settings, name)
        try:
            parse_hhmm(value)
        except ValueError:
            messages.append(Error(f"{name} must be HH:MM (UTC), not {value!r}.", id="instrumetriq.E007"))
    for name in ("ROTATION_ANNOUNCE_WEEKDAY", "ROTATION_PROMOTE_WEEKDAY"):
        if not 0 <= getattr(settings, name) <= 6:
            messages.append(Error(f"{name} must be 0 (Sunday) to 6 (Saturday).", id="instrumetriq.E008"))
    if settings.TOKEN_SECRET == settings.SECRET_KEY and not settings.DEBUG:
        messages.append(
            Warning(
                "TOKEN_SECRET is not set and falls back to SECRET_KEY.",
                hint="Set TOKEN_SECRET on its own so that rotating SECRET_KEY does not break every Patreon link.",
                id="instrumetriq.W002",
            )
        )
    return messages


# --- Deployment checks (``check --deploy``; ``manage.py doctor`` reports them): ids from 101 -----
# What a real deployment needs of its settings. Django's own deploy checks already say what they
# cover (security.W009 a weak SECRET_KEY, W020 empty ALLOWED_HOSTS, the HTTPS settings); these
# add what is particular to this site.


@register(deploy=True)
def check_debug_off(app_configs, **kwargs):
    if settings.DEBUG:
        # An error, where Django's security.W018 only warns: DEBUG also leaves off every HTTPS
        # setting (settings.py turns them on with DEBUG=0), so nothing else here is meaningful.
        return [
            Error(
                "DEBUG is on.",
                hint="Set DEBUG=0: DEBUG shows tracebacks to anyone and turns off HTTPS-only cookies, HSTS and "
                "the redirect to https.",
                id="instrumetriq.E101",
            )
        ]
    return []


@register(deploy=True)
def check_secret_key_not_development(app_configs, **kwargs):
    if settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the development key written in settings.py.",
                hint="Set SECRET_KEY to 50+ random characters "
                "(python3 -c 'import secrets; print(secrets.token_urlsafe(50))').",
                id="instrumetriq.E102",
            )
        ]
    return []


@register(deploy=True)
def check_token_secret_length(app_configs, **kwargs):
    # Falling back to SECRET_KEY is instrumetriq.W002; a short one of its own is this.
    if settings.TOKEN_SECRET != settings.SECRET_KEY and len(settings.TOKEN_SECRET) < 32:
        return [
            Warning(
                "TOKEN_SECRET is shorter than 32 characters.",
                hint="Tokens are sealed and digested with it; it can be changed only with an emergency rotation "
                "of every tier, so choose a long one now.",
                id="instrumetriq.W101",
            )
        ]
    return []


@register(deploy=True)
def check_allowed_hosts_take_site_url(app_configs, **kwargs):
    hosts = list(settings.ALLOWED_HOSTS)
    if "*" in hosts:
        return [Warning("ALLOWED_HOSTS contains '*'.", hint="List the site's host names.", id="instrumetriq.W102")]
    host = urlsplit(settings.SITE_URL).hostname
    if host and not validate_host(host, hosts):
        return [
            Error(
                f"SITE_URL's host {host} is not in ALLOWED_HOSTS ({', '.join(hosts) or 'empty'}).",
                hint="The links handed to Patreon would get a 400: add the host to ALLOWED_HOSTS.",
                id="instrumetriq.E103",
            )
        ]
    return []


@register(deploy=True)
def check_storage_backend(app_configs, **kwargs):
    if settings.STORAGE_BACKEND != "s3":
        return [
            Warning(
                f"STORAGE_BACKEND is {settings.STORAGE_BACKEND}: files are served by this machine from "
                f"{settings.LOCAL_STORAGE_ROOT}.",
                hint="Use s3 (R2) for presigned downloads and more than one web host.",
                id="instrumetriq.W103",
            )
        ]
    return []


@register(deploy=True)
def check_database_engine(app_configs, **kwargs):
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return [
            Warning(
                "The database is SQLite.",
                hint="Fine for one machine with the file on local disk, not for several hosts or a network "
                "filesystem; PostgreSQL is recommended.",
                id="instrumetriq.W104",
            )
        ]
    return []
