"""The audit log: one record per change, with who, when, which object and a before/after summary.

Services call record() in the same transaction as the change, so a rolled-back change leaves no
audit entry and a committed one always has its entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import JSON, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, mapped_column

from itops.core.database import UTCDateTime, utcnow
from itops.extensions import db

# Never copied into before/after, whatever a caller passes.
SECRET_FIELDS = frozenset({"password", "password_hash", "token", "token_hash", "secret", "bind_password"})


class AuditEntry(db.Model):
    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_object", "object_type", "object_id"),
        Index("ix_audit_entries_actor_at", "actor_label", "at"),
        Index("ix_audit_entries_action_at", "action", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Kept as text too, so the entry still reads right after the user is deleted or renamed.
    actor_label: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(500))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


def _scrub(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {key: ("***" if key in SECRET_FIELDS else value) for key, value in values.items()}


def actor_label(actor) -> str:
    """How an actor is named in logs: a user's username, a given name such as "agent", or "system"."""
    return getattr(actor, "username", None) or (actor if isinstance(actor, str) else "system")


def record(action: str, object_type: str, object_id=None, *, summary: str, before: dict | None = None,
           after: dict | None = None, actor=None) -> AuditEntry:
    """Add an audit entry to the current transaction. `actor` defaults to the signed-in user."""
    entry = AuditEntry(**values(action, object_type, object_id, summary=summary, before=before, after=after,
                                actor=actor))
    db.session.add(entry)
    return entry


def values(action: str, object_type: str, object_id=None, *, summary: str, before: dict | None = None,
           after: dict | None = None, actor=None) -> dict:
    """An audit entry's row, for `record` or, in a batch, `record_many`."""
    if actor is None and has_request_context() and current_user and current_user.is_authenticated:
        actor = current_user
    return dict(
        at=utcnow(),
        actor_id=getattr(actor, "id", None),
        actor_label=actor_label(actor),
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        summary=summary[:500],
        before=_scrub(before),
        after=_scrub(after),
        remote_addr=request.remote_addr if has_request_context() else None,
    )


def record_many(rows: list[dict]) -> None:
    """Write audit rows made by `values` now, in one statement, in the current transaction (a batch's
    entries; whatever they name must be written already)."""
    if rows:
        db.session.connection().execute(AuditEntry.__table__.insert(), rows)


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields that changed, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def audit_query(filters: AuditFilters):
    """Newest first; the admin page and the API both page through this."""
    query = select(AuditEntry)
    if filters.actor:
        query = query.where(AuditEntry.actor_label == filters.actor)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.object_type:
        query = query.where(AuditEntry.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEntry.object_id == filters.object_id)
    if filters.since:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.at < filters.until)
    return query
