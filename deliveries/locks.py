"""Expiring leases: one build at a time, across processes and hosts sharing one database."""

import os
import socket
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Lease

BUILD_LEASE = "build"


class LeaseHeld(Exception):
    """Another process holds the lease."""

    def __init__(self, lease):
        self.lease = lease
        super().__init__(f"{lease.name} is held by {lease.holder} until {lease.expires_at:%Y-%m-%d %H:%M:%S} UTC")


def new_holder_id():
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(name, holder, ttl):
    """Take the lease or raise LeaseHeld. Insert if absent; else take it over only if expired."""
    now = timezone.now()
    expires = now + timedelta(seconds=ttl)
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, acquired_at=now, expires_at=expires)
            return
    except IntegrityError:
        pass
    taken = Lease.objects.filter(name=name, expires_at__lt=now).update(
        holder=holder, acquired_at=now, expires_at=expires
    )
    if not taken:
        raise LeaseHeld(Lease.objects.get(name=name))


def renew(name, holder, ttl):
    """Extend a lease we hold; False means we lost it (it expired and someone else took it)."""
    expires = timezone.now() + timedelta(seconds=ttl)
    return bool(Lease.objects.filter(name=name, holder=holder).update(expires_at=expires))


def release(name, holder):
    Lease.objects.filter(name=name, holder=holder).delete()


class HeldLease:
    def __init__(self, name, holder, ttl):
        self.name, self.holder, self.ttl = name, holder, ttl

    def renew(self):
        return renew(self.name, self.holder, self.ttl)


@contextmanager
def lease(name=BUILD_LEASE, ttl=None, holder=None):
    ttl = ttl or settings.BUILD_LOCK_TTL_SECONDS
    holder = holder or new_holder_id()
    acquire(name, holder, ttl)
    try:
        yield HeldLease(name, holder, ttl)
    finally:
        release(name, holder)
