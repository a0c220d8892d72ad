"""Helpdesk work that runs on a clock: the SLA breach sweep and auto-close. Each commits at its end.

`flask itops tickets sweep` runs them now; the monitoring issue's scheduler runs them periodically.
"""
from __future__ import annotations

from datetime import datetime

from itops.extensions import db
from itops.tickets import services


def sweep_sla(now: datetime | None = None) -> int:
    flagged = services.sweep_breaches(now)
    db.session.commit()
    return flagged


def close_resolved(now: datetime | None = None) -> int:
    closed = services.auto_close(now)
    db.session.commit()
    return closed
