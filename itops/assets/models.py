"""Assets, their history, installed software, device credentials and agent enrollment tokens."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Index, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from itops.assets.choices import CHECKOUT_STATUS, HELD_STATUSES, AssetKind, EventKind, Family, Status
from itops.core.auth.models import User
from itops.core.database import UTCDateTime, utcnow
from itops.extensions import db


class DeviceCredential(db.Model):
    """A login for network devices. The password is Fernet-encrypted and never shown back."""
    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    username: Mapped[str] = mapped_column(String(100))
    password_encrypted: Mapped[str] = mapped_column(Text)
    enable_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Asset(db.Model):
    __tablename__ = "assets"
    __table_args__ = (
        # One index per list sort (ending in id for keyset paging) and per filter.
        Index("ix_assets_name_id", "name", "id"),
        Index("ix_assets_kind_id", "kind", "id"),
        Index("ix_assets_status_id", "status", "id"),
        Index("ix_assets_updated_id", "updated_at", "id"),
        Index("ix_assets_holder_tag", "holder_id", "tag"),
        # Filters combined with the default sort (tag), so a filtered first page is an index range.
        Index("ix_assets_kind_tag", "kind", "tag"),
        Index("ix_assets_status_tag", "status", "tag"),
        Index("ix_assets_location_tag", "location", "tag"),
        Index("ix_assets_warranty_end", "warranty_end"),
        Index("ix_assets_mac", "mac"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    serial: Mapped[str | None] = mapped_column(String(128), unique=True)
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=Status.IN_STOCK.value)
    location: Mapped[str | None] = mapped_column(String(128))
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expected_return: Mapped[date | None] = mapped_column(Date)
    purchase_date: Mapped[date | None] = mapped_column(Date)
    cost: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    supplier: Mapped[str | None] = mapped_column(String(128))
    warranty_end: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)

    # Mobile phones
    imei: Mapped[str | None] = mapped_column(String(15), unique=True)
    phone_number: Mapped[str | None] = mapped_column(String(16))
    iccid: Mapped[str | None] = mapped_column(String(22))
    carrier: Mapped[str | None] = mapped_column(String(64))
    # Desk IP phones
    mac: Mapped[str | None] = mapped_column(String(17))
    extension: Mapped[str | None] = mapped_column(String(16))
    # Network devices
    management_address: Mapped[str | None] = mapped_column(String(255))
    device_type: Mapped[str | None] = mapped_column(String(64))
    credential_id: Mapped[int | None] = mapped_column(ForeignKey("device_credentials.id"))
    # Computers: what the inventory agent last reported
    facts: Mapped[dict | None] = mapped_column(JSON)
    software_digest: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_user: Mapped[str | None] = mapped_column(String(64))
    agent_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    # Lower-cased tag, name, serial, IMEI, MAC and holder, searched with one LIKE.
    search_text: Mapped[str] = mapped_column(String(600), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id])
    credential: Mapped[DeviceCredential | None] = relationship()
    events: Mapped[list[AssetEvent]] = relationship(back_populates="asset", cascade="all, delete-orphan",
                                                    order_by="AssetEvent.id.desc()", lazy="dynamic")

    @property
    def kind_enum(self) -> AssetKind:
        return AssetKind(self.kind)

    @property
    def family(self) -> Family:
        return AssetKind(self.kind).family

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def status_moves(self) -> tuple[Status, ...]:
        """Plain status changes open now: a held asset stays held (check-in releases it), a free one
        is deployed only by checking it out."""
        if self.holder is not None:
            return tuple(s for s in Status(self.status).allowed_next if s in HELD_STATUSES)
        return tuple(s for s in Status(self.status).allowed_next if s != CHECKOUT_STATUS)

    @property
    def can_check_out(self) -> bool:
        return self.holder is None and Status(self.status).can_move_to(CHECKOUT_STATUS)

    def __repr__(self) -> str:
        return f"<Asset {self.tag} {self.kind} {self.status}>"


class AssetEvent(db.Model):
    """One line of an asset's history: who did what, when, with the details that changed."""
    __tablename__ = "asset_events"
    __table_args__ = (Index("ix_asset_events_asset_id", "asset_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(120))
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    summary: Mapped[str] = mapped_column(String(500))
    details: Mapped[dict | None] = mapped_column(JSON)

    asset: Mapped[Asset] = relationship(back_populates="events")
    holder: Mapped[User | None] = relationship(foreign_keys=[holder_id])

    @property
    def kind_enum(self) -> EventKind:
        return EventKind(self.kind)


class InstalledSoftware(db.Model):
    __tablename__ = "installed_software"
    __table_args__ = (
        UniqueConstraint("asset_id", "name", "arch", name="uq_installed_software_asset_package"),
        Index("ix_installed_software_name", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    arch: Mapped[str] = mapped_column(String(32), default="")


class EnrollmentToken(db.Model):
    """Lets agents register machines; shown once, stored hashed, expires, revocable."""
    __tablename__ = "enrollment_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    uses: Mapped[int] = mapped_column(default=0)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    created_by: Mapped[User | None] = relationship()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"
