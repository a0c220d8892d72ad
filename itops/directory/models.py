"""HR's people, their dated directory actions, group mappings, kit templates and the safety records."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from itops.core.auth.models import User
from itops.core.database import UTCDateTime, utcnow
from itops.directory.choices import ActionKind, ActionState, PersonState
from itops.extensions import db


class Person(db.Model):
    """A member of staff as HR knows them; `username` and `dn` once an account exists."""
    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_state_family", "state", "family_name", "id"),
        Index("ix_people_department_family", "department", "family_name", "id"),
        Index("ix_people_family_given", "family_name", "given_name", "id"),
        Index("ix_people_username", "username"),
        Index("ix_people_manager", "manager_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    employee_number: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # the HR system's id (SCIM)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    preferred_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    department: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    location: Mapped[str | None] = mapped_column(String(100))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default=PersonState.PENDING.value)
    # Not unique here: a deleted person keeps theirs for history; usernames_in_use guards reuse.
    username: Mapped[str | None] = mapped_column(String(64))
    dn: Mapped[str | None] = mapped_column(String(512))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provisioning_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    return_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    manager: Mapped[Person | None] = relationship(remote_side=[id])
    user: Mapped[User | None] = relationship()

    @property
    def state_enum(self) -> PersonState:
        return PersonState(self.state)

    @property
    def display_name(self) -> str:
        return f"{self.preferred_name or self.given_name} {self.family_name}"

    def __repr__(self) -> str:
        return f"<Person {self.employee_number} {self.username} {self.state}>"


class UsernameInUse(db.Model):
    """Every username itops has given out; a deleted person's stays taken until `reserved_until`.

    The unique key is what makes two onboardings at once pick different usernames.
    """
    __tablename__ = "usernames_in_use"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    reserved_until: Mapped[date | None] = mapped_column(Date)  # None while the person has the account

    person: Mapped[Person | None] = relationship()


class Batch(db.Model):
    """A set of changes submitted together; over the mass-change guard it waits for an admin's approval."""
    __tablename__ = "directory_batches"
    __table_args__ = (Index("ix_directory_batches_state_created", "state", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(20))
    summary: Mapped[str] = mapped_column(String(500))
    removals: Mapped[int] = mapped_column(Integer, default=0)  # accounts it would disable or delete
    payload: Mapped[dict | None] = mapped_column(JSON)        # e.g. the checked CSV rows, to apply on approval
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_by_label: Mapped[str | None] = mapped_column(String(120))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DirectoryAction(db.Model):
    """One dated joiner, mover or leaver step. Running it converges the directory; running it again changes nothing."""
    __tablename__ = "directory_actions"
    __table_args__ = (
        Index("ix_directory_actions_due", "state", "effective_date", "id"),  # in run-due's order
        Index("ix_directory_actions_person", "person_id", "id"),
        Index("ix_directory_actions_batch", "batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    # An orphan account (in the directory, unknown to HR) has no person; its DN says which account.
    target_dn: Mapped[str | None] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[date] = mapped_column(Date)
    state: Mapped[str] = mapped_column(String(16), default=ActionState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    planned: Mapped[dict | None] = mapped_column(JSON)   # what the step changes in HR's record (a mover's new title)
    result: Mapped[dict | None] = mapped_column(JSON)    # the LDAP operations and itops changes it made
    # The initial password until the account is created, Fernet-encrypted; then cleared.
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("directory_batches.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by_label: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    person: Mapped[Person | None] = relationship()
    batch: Mapped[Batch | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def kind_enum(self) -> ActionKind:
        return ActionKind(self.kind)

    @property
    def state_enum(self) -> ActionState:
        return ActionState(self.state)

    def __repr__(self) -> str:
        return f"<DirectoryAction {self.id} {self.kind} {self.effective_date} {self.state}>"


class GroupMapping(db.Model):
    """Admin-managed: people in `department` (and/or with `title`) belong to these directory groups."""
    __tablename__ = "directory_group_mappings"
    __table_args__ = (UniqueConstraint("department", "title", name="uq_directory_group_mappings_department_title"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    groups: Mapped[list] = mapped_column(JSON)


class KitTemplate(db.Model):
    """Admin-managed: the standard equipment of a department, listed on a joiner's provisioning ticket."""
    __tablename__ = "directory_kit_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    department: Mapped[str] = mapped_column(String(100), unique=True)
    items: Mapped[list] = mapped_column(JSON)  # [{"kind": "laptop", "model": "ThinkPad T14" | null}, ...]


class KitReservation(db.Model):
    """An in-stock asset set aside for a joiner; an asset is reserved for one joiner at most."""
    __tablename__ = "directory_kit_reservations"

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

