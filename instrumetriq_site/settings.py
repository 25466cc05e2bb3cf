"""Settings: everything comes from the environment, with development defaults.

Development (the default, ``DEBUG=1``) runs on SQLite and local file storage under ``var/``.
Production (``DEBUG=0``) fails closed: it refuses to start without a real ``SECRET_KEY`` and
``ALLOWED_HOSTS`` and turns on the HTTPS settings that ``manage.py check --deploy`` asks for.
"""

import os
from pathlib import Path

from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from instrumetriq_site.utc import cron_line

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env(name, default=None):
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name, default):
    value = env(name)
    if value is None:
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name, default):
    value = env(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_list(name, default):
    value = env(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

DEV_SECRET_KEY = "dev-insecure-do-not-use-in-production-0123456789abcdefghijklmnop"  # noqa: S105
SECRET_KEY = env("SECRET_KEY", DEV_SECRET_KEY if DEBUG else None)
if not DEBUG and (not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DEBUG is off: set SECRET_KEY to a random string of at least 50 characters "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

# Tokens are sealed and digested with this secret. It defaults to SECRET_KEY; set it on its own
# so that rotating SECRET_KEY (sessions, signed local URLs) does not invalidate every Patreon link.
TOKEN_SECRET = env("TOKEN_SECRET", SECRET_KEY)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DEBUG is off: set ALLOWED_HOSTS (comma-separated host names).")


def demo_env(var_dir):
    """``make run``/``make demo`` write the demo's SITE_URL to ``var/demo.env``: read back in DEBUG
    only, so ``manage.py patreon_links`` run by hand prints links on the port the demo serves."""
    values = {}
    try:
        lines = (var_dir / "demo.env").read_text().splitlines()
    except OSError:
        return values
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and not name.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


SITE_URL = env("SITE_URL", (DEBUG and demo_env(VAR_DIR).get("SITE_URL")) or "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_crontab",
    "csp",
    "instrumetriq_site.apps.SiteConfig",
    "deliveries",
    "tokens",
]

MIDDLEWARE = [
    # Outermost: they set headers on every response, redirects and static files included.
    "csp.middleware.CSPMiddleware",
    "instrumetriq_site.middleware.TokenPageHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "instrumetriq_site.urls"
WSGI_APPLICATION = "instrumetriq_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# Database: DATABASE_URL, or a SQLite file under var/ tuned so cron and the web can write together.
def _database():
    url = env("DATABASE_URL")
    if url:
        import dj_database_url

        config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
        if config["ENGINE"] == "django.db.backends.sqlite3":
            config["OPTIONS"] = _SQLITE_OPTIONS
        return config
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        "OPTIONS": _SQLITE_OPTIONS,
        # Persistent per-thread connections: opening one (and its PRAGMAs) costs more than a page query.
        "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
    }


_SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
}

DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Every date and time the admin shows is UTC and says so ("2026-11-24 00:41 UTC").
FORMAT_MODULE_PATH = ["instrumetriq_site.formats"]
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Delivery -----------------------------------------------------------------------------------

ARCHIVE_ROOT = Path(env("ARCHIVE_ROOT", VAR_DIR / "archive"))
MIN_HOURS = env_int("MIN_HOURS", 20)
DAILY_RETENTION_DAYS = env_int("DAILY_RETENTION_DAYS", 7)
SIGNED_URL_EXPIRY = env_int("SIGNED_URL_EXPIRY", 590400)  # 6 days 20 hours, under R2's 7-day cap
SIGNED_URL_REUSE = env_int("SIGNED_URL_REUSE", 300)  # seconds a worker hands out the same signed URLs
DOWNLOAD_REDIRECT_EXPIRY = env_int("DOWNLOAD_REDIRECT_EXPIRY", 300)
BUILD_DEADLINE_UTC = env("BUILD_DEADLINE_UTC", "03:00")
HEALTHCHECK_PING_URL = env("HEALTHCHECK_PING_URL")
HEALTHZ_CACHE_SECONDS = env_int("HEALTHZ_CACHE_SECONDS", 30)  # /healthz is public; each run asks storage

# Django's cache holds each worker's rendered tier pages (keyed by the tier's listing version,
# which lives in the database and is read with every page: workers, hosts and the nightly jobs
# share nothing else) and /healthz's last result. Per process on purpose: nothing in it needs to
# be shared, so no cache server is needed (docs/architecture.md). A page is 40-70 KB; MAX_ENTRIES
# bounds a worker's share of memory to a few MB.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "instrumetriq",
        "OPTIONS": {"MAX_ENTRIES": 100},
    }
}
# Where builds on remote storage write their files before uploading them (local storage uses a
# folder beside its root instead, so files are renamed into place). Cleared by the next run.
BUILD_SCRATCH_DIR = Path(env("BUILD_SCRATCH_DIR", VAR_DIR / "scratch"))
# An archive line longer than this is skipped unread and counted (a real entry is about 100 KB).
MAX_LINE_BYTES = env_int("MAX_LINE_BYTES", 8 * 1024 * 1024)
# Parquet files assembled from other files' column chunks (deliveries/parquet/splice.py); 0 encodes every
# row with pyarrow instead (same rows, slower): the way back if a reader ever disagrees.
PARQUET_SPLICE = env_bool("PARQUET_SPLICE", True)
# How hour files are read: "fast" (Arrow's JSON reader, each hour it cannot prove right read
# strictly) or "strict" (Python's json for every hour). The files are the same either way.
ARCHIVE_READER = env("ARCHIVE_READER", "fast")

STORAGE_BACKEND = env("STORAGE_BACKEND", "local")
LOCAL_STORAGE_ROOT = Path(env("LOCAL_STORAGE_ROOT", VAR_DIR / "storage"))
R2_ENDPOINT = env("R2_ENDPOINT")
R2_ACCESS_KEY_ID = env("R2_ACCESS_KEY_ID")
R2_SECRET_ACCESS_KEY = env("R2_SECRET_ACCESS_KEY")
R2_BUCKET = env("R2_BUCKET")
R2_CUSTOM_DOMAIN = env("R2_CUSTOM_DOMAIN")  # refused by a system check: presigned links need the endpoint


def _delivery_storage():
    if STORAGE_BACKEND == "local":
        return {
            "BACKEND": "deliveries.storage.LocalDeliveryStorage",
            "OPTIONS": {"location": LOCAL_STORAGE_ROOT},
        }
    if STORAGE_BACKEND == "s3":
        missing = [
            name
            for name in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET")
            if not globals()[name]
        ]
        if missing:
            raise ImproperlyConfigured(f"STORAGE_BACKEND=s3 needs {', '.join(missing)}.")
        # R2's client options (SigV4, path-style, no default checksums, retries, timeouts) are the
        # class's own: deliveries.storage.R2_CLIENT_CONFIG.
        return {
            "BACKEND": "deliveries.storage.R2DeliveryStorage",
            "OPTIONS": {
                "bucket_name": R2_BUCKET,
                "endpoint_url": R2_ENDPOINT,
                "access_key": R2_ACCESS_KEY_ID,
                "secret_key": R2_SECRET_ACCESS_KEY,
                "querystring_expire": DOWNLOAD_REDIRECT_EXPIRY,
                "custom_domain": R2_CUSTOM_DOMAIN,
            },
        }
    raise ImproperlyConfigured(f"STORAGE_BACKEND must be 'local' or 's3', not {STORAGE_BACKEND!r}.")


STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
    "deliveries": _delivery_storage(),
}

# --- Token rotation schedule (UTC) and cron -----------------------------------------------------

# Weekday numbers as cron counts them: 0 = Sunday, 1 = Monday.
ROTATION_ANNOUNCE_WEEKDAY = env_int("ROTATION_ANNOUNCE_WEEKDAY", 0)
ROTATION_ANNOUNCE_TIME_UTC = env("ROTATION_ANNOUNCE_TIME_UTC", "00:00")
ROTATION_PROMOTE_WEEKDAY = env_int("ROTATION_PROMOTE_WEEKDAY", 1)
ROTATION_PROMOTE_TIME_UTC = env("ROTATION_PROMOTE_TIME_UTC", "00:00")
BUILD_TIME_UTC = env("BUILD_TIME_UTC", "00:30")


CRON_LOG_DIR = Path(env("CRON_LOG_DIR", VAR_DIR / "log"))
CRONJOBS = [
    (
        cron_line(BUILD_TIME_UTC),
        "instrumetriq_site.cron.run_command",
        ["build_daily"],
        {},
        f">> {CRON_LOG_DIR / 'build_daily.log'} 2>&1",
    ),
    (
        cron_line(ROTATION_ANNOUNCE_TIME_UTC, ROTATION_ANNOUNCE_WEEKDAY),
        "instrumetriq_site.cron.run_command",
        ["rotate_tokens"],
        {"mode": "announce"},
        f">> {CRON_LOG_DIR / 'rotate_tokens.log'} 2>&1",
    ),
    (
        cron_line(ROTATION_PROMOTE_TIME_UTC, ROTATION_PROMOTE_WEEKDAY),
        "instrumetriq_site.cron.run_command",
        ["rotate_tokens"],
        {"mode": "promote"},
        f">> {CRON_LOG_DIR / 'rotate_tokens.log'} 2>&1",
    ),
]
CRONTAB_LOCK_JOBS = True
CRONTAB_COMMAND_PREFIX = env("CRONTAB_COMMAND_PREFIX", "TZ=UTC")
CRONTAB_DJANGO_SETTINGS_MODULE = "instrumetriq_site.settings"

# --- Security -----------------------------------------------------------------------------------

# same-origin, not no-referrer: under no-referrer browsers send "Origin: null" with a form POST and
# Django's CSRF check (rightly) refuses it, so the admin could not log in. Pages whose URL carries
# a token get no-referrer from TokenPageHeadersMiddleware instead.
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# A strict Content-Security-Policy on every response (django-csp; Django's own CSP support needs
# Django 6, which needs Python 3.12). Nothing inline: scripts and styles are static files; a page
# that needs computed CSS (the tier page's chart geometry) puts it in a <style> with the nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "manifest-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
    },
}
SESSION_COOKIE_HTTPONLY = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [SITE_URL] if SITE_URL.startswith("https://") else [])

# --- Logging: tokens are redacted from every record, whatever logger emits it -------------------

LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "instrumetriq_site.logging.RedactTokensFilter"}},
    "formatters": {
        "plain": {
            "()": "instrumetriq_site.logging.UTCFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_tokens"], "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}
