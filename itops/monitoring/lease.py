"""The scheduler's leader lease: a row in the app database that one process holds and renews.

Taking or renewing is one conditional UPDATE (or the first INSERT), so two schedulers can never both
believe they hold it: the database decides. Each call is its own short transaction, committed here:
the lease is the boundary, it must not wait for anyone else's work.
"""
from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring.models import SchedulerLease

LEASE_NAME = "scheduler"


def new_holder_id() -> str:
    """Readable in the table (which host and pid) and unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(holder: str, ttl_seconds: int, *, name: str = LEASE_NAME, now: datetime | None = None) -> bool:
    """Take the lease if it is free or expired, or renew it if `holder` has it. True when held afterwards."""
    now = now or utcnow()
    expires = now + timedelta(seconds=ttl_seconds)
    try:
        taken = db.session.execute(
            update(SchedulerLease)
            .where(SchedulerLease.name == name,
                   or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
            .values(holder=holder, expires_at=expires,
                    acquired_at=case((SchedulerLease.holder == holder, SchedulerLease.acquired_at), else_=now))
            .execution_options(synchronize_session=False)).rowcount
        if not taken and db.session.get(SchedulerLease, name) is None:
            db.session.add(SchedulerLease(name=name, holder=holder, expires_at=expires, acquired_at=now))
            db.session.flush()
            taken = 1
        db.session.commit()
        return bool(taken)
    except (IntegrityError, OperationalError):
        # Another process inserted first, or the database is busy/unreachable: not ours this round.
        db.session.rollback()
        return False


def holds(holder: str, *, name: str = LEASE_NAME) -> bool:
    """Whether `holder` has the lease right now (checked before each task run, so that a leader that was
    stalled past its lease never runs a slot its successor also runs)."""
    return db.session.scalar(select(SchedulerLease.name).where(
        SchedulerLease.name == name, SchedulerLease.holder == holder, SchedulerLease.expires_at > utcnow())) is not None


def release(holder: str, *, name: str = LEASE_NAME) -> None:
    """Give the lease up at a clean stop, so a standby takes over at once instead of after the TTL."""
    try:
        db.session.execute(update(SchedulerLease)
                           .where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                           .values(expires_at=utcnow() - timedelta(seconds=1))
                           .execution_options(synchronize_session=False))
        db.session.commit()
    except OperationalError:
        db.session.rollback()


def current(name: str = LEASE_NAME) -> SchedulerLease | None:
    return db.session.get(SchedulerLease, name)
