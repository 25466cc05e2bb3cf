"""The logging filter keeps tokens out of every record, whatever logger emits it."""

import logging

import pytest

from instrumetriq_site.logging import RedactTokensFilter, redact

TOKEN = "9GKCHFvLoXs_rpKDYXK6hG5JzmMI_WilW7h_yGCQWEA"


@pytest.mark.parametrize(
    "text",
    [
        f"GET /downloads/tier1?t={TOKEN} HTTP/1.1",
        f"GET /api/downloads/tier2?token={TOKEN}&x=1",
        f"/downloads/tier1/daily/2026-11-20.parquet?download=1&t={TOKEN}",
        f"Forbidden: /downloads/tier1?T={TOKEN}",
    ],
)
def test_token_values_are_redacted(text):
    cleaned = redact(text)
    assert TOKEN not in cleaned
    assert "[redacted]" in cleaned


def test_other_query_values_are_kept():
    assert redact("/downloads/tier1?download=1&at=5") == "/downloads/tier1?download=1&at=5"


def test_filter_rewrites_formatted_message_and_attached_request(caplog):
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactTokensFilter())
    try:
        with caplog.at_level(logging.INFO):
            logger.info("request %s failed", f"/downloads/tier1?t={TOKEN}", extra={"request": f"<GET ?t={TOKEN}>"})
    finally:
        logger.filters.clear()
    record = caplog.records[-1]
    assert TOKEN not in record.getMessage()
    assert TOKEN not in str(record.request)
