"""The build lock: one build at a time, and it dies with its holder.

A lock that is a row with an expiry outlives a killed holder until it expires, and every rerun in
between does nothing. This one is held by something the operating system or the database server
takes away the moment the holder is gone, so a rerun right after a crash proceeds at once:

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``), held on a connection
  of its own that lives exactly as long as the run. The server releases it when that session
  ends, which a killed process ends at once (its socket closes). It is not Django's connection:
  that one may be closed and reopened under a run (``CONN_MAX_AGE``, ``close_old_connections``,
  health checks), which would drop a lock held on it without anyone noticing. The session sets
  TCP keepalives, so a holder whose machine vanished is noticed within about two minutes, and
  turns ``idle_session_timeout`` off, so a long quiet build does not lose its lock. It needs a
  real session: a pooler in transaction mode (PgBouncer's default) cannot hold it.
- **SQLite** (one machine): ``flock`` on a file beside the database file, released by the kernel
  when the process dies. The file is never deleted; it holds the holder's id while locked.

Either way the holder's id (``host:pid:random``) can be read by the one refused, to say who holds
the lock (the PostgreSQL session's ``application_name``, the lock file's text).
"""

import fcntl
import os
import socket
import tempfile
import time
import uuid
import zlib
from contextlib import contextmanager
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections

# sysexits.h EX_TEMPFAIL: "a temporary failure; the user is invited to retry". What a build
# command exits with when another build holds the lock and it therefore did nothing.
EXIT_LOCKED = 75

# Two int4 keys (pg_locks shows them as classid/objid, objsubid 2): a namespace and the name.
PG_NAMESPACE = 0x494D51  # "IMQ"
BUILD_LOCK = "build"
HOLDER_WAIT_SECONDS = 1.0


class BuildLocked(Exception):
    """Another live process holds the build lock."""

    def __init__(self, holder):
        self.holder = holder
        self.run = None  # the BuildRun recorded for the refused attempt, when there is one
        who = f"held by {holder}" if holder else "held by another process"
        super().__init__(f"another build is running (the build lock is {who})")


class LockLost(Exception):
    """The lock went away under its holder (its database session ended, its file was removed)."""


def new_holder_id():
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _name_key(name):
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class _PostgresLock:
    def __init__(self, name, holder, alias):
        self.name, self.holder, self.alias = name, holder, alias
        self.key = (PG_NAMESPACE, _name_key(name))
        self.conn = None

    def _connect(self):
        """A connection of our own, with the settings Django would use, in autocommit."""
        import psycopg

        params = connections[self.alias].get_connection_params()
        for key in ("cursor_factory", "context", "prepare_threshold"):
            params.pop(key, None)
        params.setdefault("connect_timeout", 10)
        params["application_name"] = self.holder  # how a refused process learns who holds it
        conn = psycopg.connect(autocommit=True, **params)
        conn.execute("SET tcp_keepalives_idle = 60")
        conn.execute("SET tcp_keepalives_interval = 10")
        conn.execute("SET tcp_keepalives_count = 6")
        conn.execute("SET statement_timeout = 0")
        if conn.info.server_version >= 140000:
            conn.execute("SET idle_session_timeout = 0")
        return conn

    def acquire(self):
        self.conn = self._connect()
        try:
            (taken,) = self.conn.execute("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", self.key).fetchone()
            if taken:
                return True
            raise BuildLocked(self._holder_of_lock())
        except BaseException:
            self.conn.close()
            self.conn = None
            raise

    def _holder_of_lock(self):
        query = """
            SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = %s AND l.objid = %s
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        """
        row = self.conn.execute(query, self.key).fetchone()
        return row[0] if row else ""

    def is_held(self):
        """Our session is the one that took the lock: while it answers, the lock is ours."""
        import psycopg

        if self.conn is None or self.conn.closed:
            return False
        try:
            self.conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self):
        if self.conn is None:
            return
        import psycopg

        try:
            self.conn.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", self.key)
        except psycopg.Error:
            pass  # the session is gone, and the lock with it
        finally:
            self.conn.close()
            self.conn = None


class _FileLock:
    def __init__(self, name, holder, alias):
        self.name, self.holder = name, holder
        self.path = lock_file_path(name, alias)
        self.fd = None

    def acquire(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BuildLocked(self._holder_of_lock()) from None
        self.fd = fd
        if not self.is_held():  # the file was replaced between our open and our lock
            self.release()
            raise BuildLocked("") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.encode(), 0)
        return True

    def _holder_of_lock(self):
        """The id the holder wrote; it writes it right after locking, so wait a moment for it."""
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while True:
            try:
                text = self.path.read_text(errors="replace").strip()
            except OSError:
                text = ""
            if text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def is_held(self):
        """Our descriptor is still the file at the lock's path (nobody removed or replaced it)."""
        if self.fd is None:
            return False
        try:
            ours, there = os.fstat(self.fd), os.stat(self.path)
        except OSError:
            return False
        return (ours.st_dev, ours.st_ino) == (there.st_dev, there.st_ino)

    def release(self):
        if self.fd is None:
            return
        try:
            if self.is_held():
                os.ftruncate(self.fd, 0)  # the file no longer names a holder that has finished
        finally:
            os.close(self.fd)  # closing the last descriptor releases the flock
            self.fd = None


def lock_file_path(name=BUILD_LOCK, alias=DEFAULT_DB_ALIAS):
    """Beside the SQLite database file; for an in-memory database (tests), one per process."""
    connection = connections[alias]
    suffix = f".{name}-lock"
    if connection.is_in_memory_db():
        return Path(tempfile.gettempdir()) / f"instrumetriq-memorydb-{os.getpid()}{suffix}"
    return Path(f"{connection.settings_dict['NAME']}{suffix}")


BACKENDS = {"postgresql": _PostgresLock, "sqlite": _FileLock}


class HeldLock:
    """A lock this process holds: who it is, whether it still holds it, and how to let go."""

    def __init__(self, backend):
        self._backend = backend
        self.name = backend.name
        self.holder = backend.holder

    def is_held(self):
        return self._backend.is_held()

    def ensure_held(self):
        """Raise LockLost unless the lock is still ours: a run checks this before each next piece of
        work, so a run that lost its lock (and may now overlap another) stops."""
        if not self.is_held():
            raise LockLost(
                f"the {self.name} lock was lost (its database session ended or its lock file was removed); "
                "stopped so that two builds never overlap; a rerun continues"
            )

    def release(self):
        self._backend.release()


def acquire(name=BUILD_LOCK, holder=None, alias=DEFAULT_DB_ALIAS):
    """Take the lock now or raise BuildLocked (naming the holder). Never waits."""
    holder = holder or new_holder_id()
    vendor = connections[alias].vendor
    if vendor not in BACKENDS:
        raise ImproperlyConfigured(f"the build lock supports PostgreSQL and SQLite, not {vendor}")
    backend = BACKENDS[vendor](name, holder, alias)
    backend.acquire()
    return HeldLock(backend)


@contextmanager
def build_lock(holder=None):
    lock = acquire(BUILD_LOCK, holder)
    try:
        yield lock
    finally:
        lock.release()
