"""The build lock in one process (each test runs on the leg's database: PostgreSQL or SQLite).

The kill tests with real processes are in test_locks_killed.py, the two-process race in
test_locks_race.py.
"""

import time

import pytest
from django.db import close_old_connections, connection

from deliveries import locks
from tests.support.databases import lose_the_lock


@pytest.mark.django_db
def test_a_second_holder_is_refused_and_told_who_holds_it():
    with locks.build_lock(holder="host-a:11:cafe0001") as held:
        with pytest.raises(locks.BuildLocked) as refused:
            locks.acquire(locks.BUILD_LOCK, holder="host-b:22:cafe0002")
        assert refused.value.holder == "host-a:11:cafe0001"
        assert str(refused.value) == "another build is running (the build lock is held by host-a:11:cafe0001)"
        assert held.is_held()
    with locks.build_lock(holder="host-b:22:cafe0002") as taken:  # released: the next one takes it
        assert taken.is_held()


@pytest.mark.django_db(transaction=True)
def test_the_lock_is_not_djangos_connection_closing_that_one_keeps_it():
    """Django may close and reopen its connection under a run (CONN_MAX_AGE, close_old_connections,
    a failed health check): a lock held on it would silently go. Ours lives on its own session."""
    with locks.build_lock() as held:
        connection.close()
        close_old_connections()
        connection.ensure_connection()
        assert held.is_held()
        with pytest.raises(locks.BuildLocked):
            locks.acquire(locks.BUILD_LOCK)
        held.ensure_held()


@pytest.mark.django_db(transaction=True)
def test_an_idle_holder_keeps_the_lock_through_the_servers_idle_session_timeout():
    """A long build may not touch its lock for hours; a server set to end idle sessions must not end
    the lock's (on PostgreSQL it would release the lock under a live run). SQLite's flock has no
    such timeout: there the test shows an idle holder keeps it too."""
    if connection.vendor == "postgresql":
        name = connection.settings_dict["NAME"]
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER DATABASE "{name}" SET idle_session_timeout = 500')  # ms, for new sessions
    try:
        with locks.build_lock() as held:
            time.sleep(1.2)
            assert held.is_held()
            with pytest.raises(locks.BuildLocked):
                locks.acquire(locks.BUILD_LOCK)
    finally:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f'ALTER DATABASE "{name}" RESET idle_session_timeout')


@pytest.mark.django_db
def test_a_lock_whose_session_or_file_is_gone_says_so_before_the_next_piece_of_work():
    with locks.build_lock() as held:
        lose_the_lock()
        assert not held.is_held()
        with pytest.raises(locks.LockLost, match="the build lock was lost"):
            held.ensure_held()
