"""The token-checked links of the site, as the page, the API and the feed hand them out."""

from secrets import token_hex
from urllib.parse import quote

from django.conf import settings
from django.urls import reverse

TOKEN_MARK = f"tkn{token_hex(12)}"  # where the request's token goes in a cached page or API body


def with_token(text, token):
    """A cached text built with ``TOKEN_MARK`` for the token, given this request's token."""
    return text.replace(TOKEN_MARK, quote(token, safe=""))


def token_query(token):
    return f"?t={quote(token, safe='')}"


def tier_url(name, tier, token, *, absolute=False):
    """A tier-wide link (``tier_page``, ``api_tier``, ``feed``) carrying the token."""
    prefix = settings.SITE_URL if absolute else ""
    return f"{prefix}{reverse(f'deliveries:{name}', args=[tier.value])}{token_query(token)}"


def file_links(tier, token, kind, label, *, absolute=False, version=None):
    """The token-checked links of one file: data, manifest view, manifest download. With
    ``version`` (the listed one's, as the page, feed and API give) they fetch that version, even
    after a rebuild listed another, so the bytes match the SHA-256 shown beside the link."""
    prefix = settings.SITE_URL if absolute else ""
    query = token_query(token) + (f"&v={version}" if version else "")
    kwargs = {"tier": tier.value, "label": label}
    data = reverse(f"deliveries:{kind}_file", kwargs=kwargs)
    manifest = reverse(f"deliveries:{kind}_manifest", kwargs=kwargs)
    return {
        "url": f"{prefix}{data}{query}",
        "manifest_url": f"{prefix}{manifest}{query}",
        "manifest_download_url": f"{prefix}{manifest}{query}&download=1",
    }
