"""SCIM's own records: the HR systems' bearer tokens, and what SCIM knows of a person beyond HR's record."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from itops.core.database import UTCDateTime, utcnow
from itops.directory.models import Person
from itops.extensions import db


class ScimToken(db.Model):
    """A bearer token for one HR system; separate from people's API tokens, which /scim/ refuses."""
    __tablename__ = "scim_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)   # the audit actor, e.g. "workday"
    prefix: Mapped[str] = mapped_column(String(16))               # shown in lists to tell tokens apart
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScimUser(db.Model):
    """The SCIM userName an HR system chose for a person (itops derives its own login username), and
    whether the HR system deleted the resource: a deleted one answers 404 while the leaver flow runs."""
    __tablename__ = "scim_users"

    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), primary_key=True)
    user_name: Mapped[str | None] = mapped_column(String(255))
    # userName is case-insensitive (RFC 7643 §4.1.1): the casefolded copy carries the unique key.
    user_name_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    person: Mapped[Person] = relationship()
