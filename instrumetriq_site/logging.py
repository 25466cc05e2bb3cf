"""A logging filter that keeps tier tokens out of every log line.

Tokens travel in query strings (``?t=`` / ``?token=``), so any logger that prints a URL (the dev
server, ``django.request`` on a 4xx, our own views) would otherwise write a usable link to disk.
"""

import logging
import re
import time
from datetime import UTC

TOKEN_IN_TEXT = re.compile(r"(?i)(\b(?:t|token)=)[^&\s\"'#]+")
REDACTED = r"\1[redacted]"


def redact(text):
    return TOKEN_IN_TEXT.sub(REDACTED, text)


class RedactTokensFilter(logging.Filter):
    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        # Handlers may format an attached request given as text; request objects are left whole
        # (our formatter never prints them, and handlers such as mail_admins need the object).
        request = getattr(record, "request", None)
        if isinstance(request, str):
            record.request = redact(request)
        return True


def utc_stamp(moment=None):
    """How every log line and command line writes a moment: "2026-11-24 00:30:05 UTC"."""
    from django.utils import timezone

    return f"{(moment or timezone.now()).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


class UTCFormatter(logging.Formatter):
    """Timestamps in UTC, marked as such, whatever the process's TZ: cron logs read the same everywhere."""

    converter = time.gmtime
    default_time_format = "%Y-%m-%d %H:%M:%S"
    default_msec_format = "%s.%03d UTC"
