"""Databases beyond pytest-django's own test database, which other processes cannot reach and
other threads reach only through an in-memory shared cache on SQLite."""

import os
import secrets
from contextlib import contextmanager
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from deliveries import locks

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def postgres_params():
    """Connection parameters of the PostgreSQL server to make scratch databases on: the test
    database's server on the PostgreSQL leg, else TEST_POSTGRES_URL (default postgres@127.0.0.1)."""
    if connection.vendor == "postgresql":
        db = settings.DATABASES["default"]
        return {
            "host": db["HOST"] or "127.0.0.1",
            "port": db["PORT"] or 5432,
            "user": db["USER"],
            "password": db["PASSWORD"],
        }
    import dj_database_url

    db = dj_database_url.parse(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    return {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}


@contextmanager
def scratch_postgres(prefix):
    """A new, empty PostgreSQL database for child processes; dropped afterwards whatever happens."""
    import psycopg
    from psycopg import sql

    params = postgres_params()
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **params)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"this test needs PostgreSQL at {params['host']}:{params['port']} (CI starts it; elsewhere set "
            f"TEST_POSTGRES_URL): {exc}"
        )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    credentials = quote(params["user"] or "", safe="")
    if params["password"]:
        credentials += ":" + quote(params["password"], safe="")
    try:
        yield f"postgres://{credentials}@{params['host']}:{params['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=10, **params) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def shared_database(tmp_path):
    """The database URL child processes share: scratch PostgreSQL on that leg, a SQLite file on the other."""
    if connection.vendor == "postgresql":
        with scratch_postgres("instrumetriq_lock") as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'lock.sqlite3'}"


@contextmanager
def on_disk_copy(tmp_path):
    """The test database, reachable from other threads with production's locking behaviour.

    pytest-django's SQLite test database is in memory with a shared cache, where a second writer
    gets "database table is locked" at once instead of waiting (busy_timeout does not apply to
    shared-cache locks). Production SQLite is a file in WAL mode, so on SQLite the connection moves
    to an on-disk copy of the schema for the duration. PostgreSQL needs nothing.
    """
    if connection.vendor != "sqlite":
        yield
        return
    settings_dict = connection.settings_dict  # shared by the wrappers each thread creates
    saved_name, saved_connection = settings_dict["NAME"], connection.connection
    connection.connection = None  # keep the in-memory database alive for the tests after this one
    settings_dict["NAME"] = str(tmp_path / "contended.sqlite3")
    try:
        call_command("migrate", verbosity=0)
        yield
    finally:
        connection.close()
        settings_dict["NAME"] = saved_name
        connection.connection = saved_connection


def lose_the_lock():
    """What an outage does to the build lock: the PostgreSQL session ends, or the lock file goes."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [locks.PG_NAMESPACE],
            )
    else:
        locks.lock_file_path().unlink()
