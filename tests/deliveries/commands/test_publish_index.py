"""manage.py publish_index: writes index/tierN.json, one line per file and a summary."""

import io
import json
from datetime import date
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from deliveries import storage
from tests.support.factories import publish_day

pytestmark = pytest.mark.django_db


def test_writes_every_tier_by_default_and_chosen_tiers_on_request():
    publish_day("tier1", date(2026, 11, 3))
    out = io.StringIO()
    call_command("publish_index", stdout=out)
    assert out.getvalue().splitlines() == [
        "wrote index/tier1.json",
        "wrote index/tier2.json",
        "wrote index/tier3.json",
        "3 index files written",
    ]
    assert json.loads(storage.read_bytes("index/tier1.json"))["daily"][0]["date"] == "2026-11-03"
    out = io.StringIO()
    call_command("publish_index", "--tier", "tier2", stdout=out)
    assert out.getvalue().splitlines() == ["wrote index/tier2.json", "1 index file written"]


def test_a_storage_failure_is_a_command_error():
    with (
        mock.patch.object(storage, "put_bytes", side_effect=storage.StorageError("storage upload failed")),
        pytest.raises(CommandError, match="index not published: storage upload failed"),
    ):
        call_command("publish_index", stdout=io.StringIO())
