"""The doctor's findings: one ``Check`` each, in plain words and one line, never carrying a secret
(every message goes through ``scrub``: no keys, no tokens, no presigned URL)."""

from dataclasses import dataclass

from django.conf import settings

from instrumetriq_site.logging import redact

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Check:
    name: str  # "group.item": the group is what --skip takes
    ok: bool
    level: str  # ERROR or WARNING: how bad it is when not ok
    message: str

    @property
    def group(self):
        return self.name.split(".", 1)[0]

    @property
    def status(self):
        if self.ok:
            return "OK"
        return "FAIL" if self.level == ERROR else "WARN"

    @property
    def failed(self):
        return not self.ok and self.level == ERROR


def ok(name, message):
    return Check(name, True, ERROR, message)


def fail(name, message, level=ERROR):
    return Check(name, False, level, message)


def _secrets():
    database = settings.DATABASES["default"]
    values = [
        settings.SECRET_KEY,
        getattr(settings, "TOKEN_SECRET", ""),
        settings.R2_SECRET_ACCESS_KEY,
        settings.R2_ACCESS_KEY_ID,
        database.get("PASSWORD"),
    ]
    return sorted((v for v in values if v and len(str(v)) >= 4), key=len, reverse=True)


def scrub(text):
    """Remove anything secret from a message: configured secrets, tokens, signatures."""
    text = redact(str(text))
    for value in _secrets():
        text = text.replace(str(value), "[redacted]")
    return " ".join(text.split())  # one line


def short(exc):
    """An exception in a few words: its type and first line, scrubbed."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
