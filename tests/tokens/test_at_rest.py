"""No usable token at rest: not in any column, not in any SQL statement, not in any log line."""

import base64
import io
import logging

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from deliveries.tiers import Tier
from tokens import crypto, links, rotation
from tokens.models import TierToken
from tokens.validation import validate

pytestmark = pytest.mark.django_db


def every_token():
    return [crypto.unseal_row(row) for row in TierToken.objects.all()]


def forms_of(token):
    """Every way a token could sit in a column: as issued, raw bytes, hex, standard base64."""
    raw = base64.urlsafe_b64decode(token + "=")
    return {token, raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode().rstrip("="), raw}


def every_stored_value():
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from introspection
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    if isinstance(value, str | bytes):
                        yield table, value


def rotate_through_every_mode():
    rotation.init()
    rotation.announce()
    rotation.promote()
    rotation.announce()
    rotation.emergency(["tier2"])


def test_no_column_of_any_table_holds_a_token_in_any_form():
    rotate_through_every_mode()
    issued = every_token()
    assert len(issued) == 10
    forms = [form for token in issued for form in forms_of(token)]
    for table, value in every_stored_value():
        for form in forms:
            if isinstance(form, bytes) == isinstance(value, bytes):
                assert form not in value, f"a token is stored in {table}"


def test_a_copy_of_the_database_without_the_secret_opens_nothing(settings):
    rotate_through_every_mode()
    candidates = set()
    for row in TierToken.objects.values("digest", "salt", "sealed"):
        for value in row.values():
            candidates.add(value[:43])
            candidates.add(base64.urlsafe_b64encode(bytes.fromhex(value)[:32]).rstrip(b"=").decode())
    for candidate in candidates:
        for tier in Tier.values:
            assert not validate(tier, candidate)
    settings.TOKEN_SECRET = "a guess at the secret " * 3
    for row in TierToken.objects.all():
        with pytest.raises(crypto.SealError):
            crypto.unseal_row(row)


def test_no_sql_statement_carries_a_token():
    with CaptureQueriesContext(connection) as queries:
        rotate_through_every_mode()
        issued = every_token()
        for token in issued:
            for tier in Tier.values:
                validate(tier, token)
        links.render(links.tier_links())
    sql = "\n".join(query["sql"] for query in queries.captured_queries)
    assert "INSERT" in sql.upper()
    for token in issued:
        assert token not in sql


def test_no_log_record_carries_a_token(caplog):
    caplog.set_level(logging.DEBUG)
    for mode in ("init", "announce", "promote", "announce"):
        call_command("rotate_tokens", mode=mode, stdout=io.StringIO(), stderr=io.StringIO())
    call_command("rotate_tokens", mode="emergency", all=True, stdout=io.StringIO(), stderr=io.StringIO())
    for token in every_token():
        validate("tier1", token)
    call_command("patreon_links", stdout=io.StringIO())
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for token in every_token():
        assert token not in logged
