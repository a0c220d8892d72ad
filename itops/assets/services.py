"""The assets domain's operations; the only module other domains import. Services add and flush, never commit.

Callers hand over values already parsed by a form, schema or CSV row (see validation.py); the rules
that span fields and rows (kind-specific fields, uniqueness, the lifecycle, holders) live here.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field as dataclass_field
from datetime import date, timedelta
from typing import Any

from blinker import Namespace
from sqlalchemy import func, select

from itops.assets.choices import (
    CHECKIN_STATUS, CHECKIN_TARGETS, CHECKOUT_STATUS, DEVICE_TYPE_NAMES, FAMILY_FIELDS, HELD_STATUSES, KIND_SPECIFIC_FIELDS,
    AssetKind, EventKind, Status,
)
from itops.assets.models import Asset, AssetEvent, DeviceCredential, EnrollmentToken, InstalledSoftware
from itops.core import audit, crypto
from itops.core.auth import services as auth_services
from itops.core.auth.models import User
from itops.core.database import utcnow
from itops.core.errors import Conflict, DomainError, NotFound, ValidationFailed, found
from itops.core.policy import Role, has_role
from itops.extensions import db

TAG_PREFIX = "IT-"
ENROLLMENT_PREFIX = "itops_enr_"

# Fields a person edits; kind, status and holder change through their own operations.
EDITABLE_FIELDS = (
    "tag", "name", "serial", "manufacturer", "model", "location", "purchase_date", "cost", "supplier",
    "warranty_end", "notes", "imei", "phone_number", "iccid", "carrier", "mac", "extension",
    "management_address", "device_type", "credential_id",
)
# Unique columns checked up front, so a clash is a clear 409 and not a database error.
UNIQUE_FIELDS = {"tag": "tag", "serial": "serial number", "imei": "IMEI"}


class InvalidTransition(DomainError):
    status = 409
    title = "Status change not allowed"


# Sent after a check-in, in the same transaction, so other domains can react (a leaver's return ticket
# resolves when their last asset is back). Receivers are connected by the app factory.
asset_checked_in = Namespace().signal("asset-checked-in")


# --- reading -----------------------------------------------------------------------------------

def get_asset(asset_id: int) -> Asset:
    return found(db.session.get(Asset, asset_id), "asset")


def get_asset_for(user: User, asset_id: int) -> Asset:
    """An asset the user may see: IT staff see all; anyone else only what they hold (others are 404)."""
    asset = db.session.get(Asset, asset_id)
    if asset is None or not (can_manage(user) or asset.holder_id == user.id):
        raise NotFound("No such asset.")
    return asset


def can_manage(user: User) -> bool:
    return has_role(user, {Role.IT_STAFF})


def visible_to(user: User, filters):
    """The filters narrowed to what `user` may list: everything for IT staff, what they hold otherwise."""
    return filters if can_manage(user) else filters.only_held_by(user)


def find_by_tag(tag: str) -> Asset | None:
    return db.session.scalar(select(Asset).where(Asset.tag == tag.strip().upper()))


def find_by_serial(serial: str) -> Asset | None:
    return db.session.scalar(select(Asset).where(Asset.serial == serial))


def assets_held_by(user: User) -> list[Asset]:
    return list(db.session.scalars(select(Asset).where(Asset.holder_id == user.id).order_by(Asset.tag)))


def get_assets(asset_ids: list[int]) -> list[Asset]:
    """The assets with these ids, in tag order; an unknown id is a 404, not a silent gap."""
    assets = list(db.session.scalars(select(Asset).where(Asset.id.in_(set(asset_ids))).order_by(Asset.tag)))
    if len(assets) != len(set(asset_ids)):
        raise NotFound("Some of the selected assets no longer exist.")
    return assets


def software_of(asset: Asset) -> list[InstalledSoftware]:
    return list(db.session.scalars(select(InstalledSoftware).where(InstalledSoftware.asset_id == asset.id)
                                   .order_by(InstalledSoftware.name, InstalledSoftware.arch)))


def suggested_holder(asset: Asset) -> User | None:
    """The person the agent saw signed in, offered as holder when the asset has none."""
    if asset.holder is not None or not asset.last_user:
        return None
    user = auth_services.find_user(asset.last_user)
    return user if user is not None and user.active else None


def last_user_account(asset: Asset) -> User | None:
    return auth_services.find_user(asset.last_user) if asset.last_user else None


def people_to_hold(limit: int = 500) -> list:
    """(username, display_name) of active people offered in the checkout box; a datalist, so typing any
    username still works beyond the first `limit`."""
    return list(db.session.execute(select(User.username, User.display_name).where(User.active.is_(True))
                                   .order_by(User.username).limit(limit)))


def history(asset: Asset, limit: int = 200) -> list[AssetEvent]:
    return list(db.session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id)
                                   .order_by(AssetEvent.id.desc()).limit(limit)))


def asset_summary(asset: Asset) -> dict[str, Any]:
    """The editable fields as plain values, for audit entries and history details."""
    values = {field: getattr(asset, field) for field in EDITABLE_FIELDS}
    values.update(kind=asset.kind, status=asset.status, holder=asset.holder.username if asset.holder else None)
    return {key: (str(value) if isinstance(value, (date,)) or hasattr(value, "quantize") else value)
            for key, value in values.items()}


# --- events ------------------------------------------------------------------------------------

def record_event(asset: Asset, kind: EventKind, *, by, summary: str, details: dict | None = None,
                 holder: User | None = None) -> AssetEvent:
    event = AssetEvent(asset=asset, kind=kind.value, actor_id=getattr(by, "id", None), actor_label=audit.actor_label(by),
                       holder_id=holder.id if holder else None, summary=summary[:500], details=details)
    db.session.add(event)
    asset.updated_at = utcnow()
    return event


def _audit(action: str, asset: Asset, summary: str, *, by, before=None, after=None) -> None:
    if isinstance(by, User):
        audit.record(f"asset.{action}", "asset", asset.id, summary=summary, before=before, after=after, actor=by)


# --- creating and editing ----------------------------------------------------------------------

def check_kind_fields(kind: AssetKind, values: dict[str, Any]) -> None:
    """Refuse kind-specific fields set on another kind; public for CSV import's dry run."""
    allowed = set(FAMILY_FIELDS.get(kind.family, ()))
    wrong = sorted(f for f in KIND_SPECIFIC_FIELDS - allowed if values.get(f) not in (None, ""))
    if wrong:
        raise ValidationFailed(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to a "
                               f"{kind.label.lower()}.", errors={f: ["Not used for this kind."] for f in wrong})
    if values.get("device_type") and values["device_type"] not in DEVICE_TYPE_NAMES:
        raise ValidationFailed("Unknown device type.", errors={"device_type": ["Choose a listed device type."]})
    if values.get("credential_id") and db.session.get(DeviceCredential, values["credential_id"]) is None:
        raise ValidationFailed("No such credential.", errors={"credential_id": ["Choose a stored credential."]})


def _check_unique(values: dict[str, Any], *, exclude_id: int | None = None) -> None:
    for field, label in UNIQUE_FIELDS.items():
        value = values.get(field)
        if not value:
            continue
        query = select(Asset.tag).where(getattr(Asset, field) == value)
        if exclude_id is not None:
            query = query.where(Asset.id != exclude_id)
        clash = db.session.scalar(query)
        if clash:
            raise Conflict(f"Another asset ({clash}) already has {label} {value}.")


def _search_text(asset: Asset) -> str:
    parts = [asset.tag, asset.name, asset.serial, asset.imei, asset.mac, asset.phone_number]
    if asset.holder is not None:
        parts += [asset.holder.username, asset.holder.display_name]
    return " ".join(p.lower() for p in parts if p)[:600]


def refresh_search_text(asset: Asset) -> None:
    asset.search_text = _search_text(asset)


def _blank_to_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: (None if isinstance(value, str) and not value.strip() else value) for key, value in values.items()}


def _assign_tag(asset: Asset) -> None:
    """IT-000042 from the row id; a hand-made tag that took that name pushes the new one to a suffix."""
    candidate, suffix = f"{TAG_PREFIX}{asset.id:06d}", 1
    while db.session.scalar(select(Asset.id).where(Asset.tag == candidate, Asset.id != asset.id)):
        suffix += 1
        candidate = f"{TAG_PREFIX}{asset.id:06d}-{suffix}"
    asset.tag = candidate


def create_asset(kind: AssetKind | str, values: dict[str, Any], *, by, status: Status | str = Status.IN_STOCK,
                 event: EventKind = EventKind.CREATED) -> Asset:
    kind = AssetKind(kind)
    status = Status(status)
    values = _blank_to_none({k: v for k, v in values.items() if k in EDITABLE_FIELDS})
    if not values.get("name"):
        raise ValidationFailed("Give the asset a name or hostname.", errors={"name": ["Required."]})
    if status in HELD_STATUSES:
        raise ValidationFailed(f"A new asset starts without a holder, so not as {status.label.lower()}; "
                               "create it, then check it out.", errors={"status": ["Not for a new asset."]})
    check_kind_fields(kind, values)
    _check_unique(values)
    asset = Asset(kind=kind.value, status=status.value, **values)
    if not asset.tag:
        asset.tag = f"pending-{crypto.new_secret_token('')[:20]}"  # replaced below, once the id is known
    db.session.add(asset)
    db.session.flush()
    if asset.tag.startswith("pending-"):
        _assign_tag(asset)
    refresh_search_text(asset)
    record_event(asset, event, by=by, summary=f"{kind.label} {asset.tag} created ({status.label.lower()})")
    _audit("create", asset, f"created {kind.label.lower()} {asset.tag} {asset.name}", by=by,
           after=asset_summary(asset))
    return asset


def update_asset(asset: Asset, values: dict[str, Any], *, by, event: EventKind = EventKind.EDITED) -> dict:
    """Apply edits; returns {field: [old, new]} for what changed (nothing recorded if nothing did)."""
    values = _blank_to_none({k: v for k, v in values.items() if k in EDITABLE_FIELDS})
    if "name" in values and not values["name"]:
        raise ValidationFailed("Give the asset a name or hostname.", errors={"name": ["Required."]})
    merged = {field: getattr(asset, field) for field in KIND_SPECIFIC_FIELDS} | values
    check_kind_fields(asset.kind_enum, merged)
    _check_unique(values, exclude_id=asset.id)
    before = asset_summary(asset)
    for field, value in values.items():
        setattr(asset, field, value)
    after = asset_summary(asset)
    old, new = audit.changes(before, after)
    if not new:
        return {}
    refresh_search_text(asset)
    changed = {field: [old[field], new[field]] for field in new}
    record_event(asset, event, by=by, summary="changed " + ", ".join(sorted(changed)), details=changed)
    _audit("edit", asset, f"edited {asset.tag}: {', '.join(sorted(changed))}", by=by, before=old, after=new)
    return changed


# --- lifecycle ---------------------------------------------------------------------------------

def _refuse_move(asset: Asset, target: Status) -> None:
    allowed = asset.status_enum.allowed_next
    moves = ", ".join(s.label.lower() for s in allowed) if allowed else "none (this is final)"
    hint = " To take it back from its holder, check it in first." if asset.holder is not None and target in CHECKIN_TARGETS else ""
    raise InvalidTransition(f"{asset.tag} cannot go from {asset.status_enum.label.lower()} to "
                            f"{target.label.lower()}. Allowed next: {moves}.{hint}")


def change_status(asset: Asset, target: Status | str, *, by, note: str | None = None) -> Asset:
    """A plain status change. Moves that hand an asset over or take it back go through checkout/checkin."""
    target = Status(target)
    current = asset.status_enum
    if target == current:
        raise InvalidTransition(f"{asset.tag} is already {current.label.lower()}.")
    if not current.can_move_to(target):
        _refuse_move(asset, target)
    if target == CHECKOUT_STATUS and asset.holder is None:
        raise InvalidTransition(f"To deploy {asset.tag}, check it out to someone.")
    if target not in HELD_STATUSES and asset.holder is not None:
        raise InvalidTransition(f"{asset.tag} is held by {asset.holder.display_name}; check it in first.")
    asset.status = target.value
    summary = f"{current.label} → {target.label}" + (f": {note.strip()}" if note and note.strip() else "")
    record_event(asset, EventKind.STATUS, by=by, summary=summary,
                 details={"from": current.value, "to": target.value, "note": note or None})
    _audit("status", asset, f"{asset.tag}: {summary}", by=by, before={"status": current.value},
           after={"status": target.value})
    return asset


def retire(asset: Asset, *, by, note: str | None = None) -> Asset:
    return change_status(asset, Status.RETIRED, by=by, note=note)


def resolve_holder(username: str) -> User:
    user = auth_services.find_user(username or "")
    if user is None or not user.active:
        raise ValidationFailed(f"No active person with username {username!r}.",
                               errors={"holder": ["Unknown or disabled username."]})
    return user


def checkout(asset: Asset, holder: User, *, by, expected_return: date | None = None,
             condition: str | None = None) -> Asset:
    if asset.holder is not None:
        raise Conflict(f"{asset.tag} is already checked out to {asset.holder.display_name}; check it in first.")
    if not asset.status_enum.can_move_to(CHECKOUT_STATUS):
        _refuse_move(asset, CHECKOUT_STATUS)
    if not holder.active:
        raise ValidationFailed(f"{holder.username} is disabled and cannot receive assets.")
    if expected_return is not None and expected_return < date.today():
        raise ValidationFailed("The expected return date is in the past.",
                               errors={"expected_return": ["Must be today or later."]})
    previous = asset.status_enum
    asset.holder = holder
    asset.status = CHECKOUT_STATUS.value
    asset.expected_return = expected_return
    refresh_search_text(asset)
    details = {"from": previous.value, "expected_return": expected_return.isoformat() if expected_return else None,
               "condition": (condition or "").strip() or None}
    record_event(asset, EventKind.CHECKOUT, by=by, holder=holder, details=details,
                 summary=f"checked out to {holder.display_name} ({holder.username})")
    _audit("checkout", asset, f"{asset.tag} checked out to {holder.username}", by=by,
           before={"holder": None, "status": previous.value}, after={"holder": holder.username, "status": "deployed"})
    return asset


def checkin(asset: Asset, *, by, condition: str | None = None, status: Status | str = CHECKIN_STATUS) -> Asset:
    """Take an asset back from its holder, into stock (default), repair or retirement."""
    status = Status(status)
    if asset.holder is None:
        raise Conflict(f"{asset.tag} is not checked out.")
    if status not in CHECKIN_TARGETS:
        raise ValidationFailed("After check-in an asset is in stock, in repair or retired.",
                               errors={"status": ["One of in_stock, in_repair, retired."]})
    if not asset.status_enum.can_move_to(status) and status != CHECKIN_STATUS:
        _refuse_move(asset, status)
    holder, previous = asset.holder, asset.status_enum
    asset.holder = None
    asset.expected_return = None
    asset.status = status.value
    refresh_search_text(asset)
    details = {"from": previous.value, "to": status.value, "condition": (condition or "").strip() or None}
    record_event(asset, EventKind.CHECKIN, by=by, holder=holder, details=details,
                 summary=f"checked in from {holder.display_name} ({holder.username}) to {status.label.lower()}")
    _audit("checkin", asset, f"{asset.tag} checked in from {holder.username}", by=by,
           before={"holder": holder.username, "status": previous.value},
           after={"holder": None, "status": status.value})
    asset_checked_in.send(asset, holder=holder, by=by)
    return asset


def first_in_stock(kind: str, *, model: str | None = None, excluding=None) -> Asset | None:
    """The longest-stocked free asset of a kind (and model), for a joiner's kit; `excluding` is a
    select of asset ids already set aside."""
    query = select(Asset).where(Asset.kind == kind, Asset.status == Status.IN_STOCK.value, Asset.holder_id.is_(None))
    if model:
        query = query.where(func.lower(Asset.model) == model.lower())
    if excluding is not None:
        query = query.where(Asset.id.not_in(excluding))
    return db.session.scalar(query.order_by(Asset.id).limit(1))


def overdue_returns(today: date | None = None) -> list[Asset]:
    today = today or date.today()
    return list(db.session.scalars(select(Asset).where(Asset.expected_return < today, Asset.holder_id.is_not(None))
                                   .order_by(Asset.expected_return)))


# --- device credentials ------------------------------------------------------------------------

def create_credential(name: str, username: str, password: str, *, enable_secret: str | None = None,
                      by) -> DeviceCredential:
    name = (name or "").strip()
    if not name or not (username or "").strip() or not password:
        raise ValidationFailed("A credential needs a name, a username and a password.")
    if db.session.scalar(select(DeviceCredential.id).where(DeviceCredential.name == name)):
        raise Conflict(f"A credential named {name!r} already exists.")
    credential = DeviceCredential(name=name, username=username.strip(), password_encrypted=crypto.encrypt(password),
                                  enable_secret_encrypted=crypto.encrypt(enable_secret) if enable_secret else None)
    db.session.add(credential)
    db.session.flush()
    audit.record("credential.create", "device_credential", credential.id,
                 summary=f"device credential {name!r} ({credential.username}) stored", actor=by)
    return credential


def credentials() -> list[DeviceCredential]:
    return list(db.session.scalars(select(DeviceCredential).order_by(DeviceCredential.name)))


@dataclass(frozen=True)
class DeviceLogin:
    username: str
    password: str = dataclass_field(repr=False)          # never in a repr, a log line or a traceback's locals
    enable_secret: str | None = dataclass_field(repr=False)


def device_login(asset: Asset) -> DeviceLogin | None:
    """The decrypted login for a network device, for the poller only; never rendered or logged."""
    credential = asset.credential
    if credential is None:
        return None
    return DeviceLogin(credential.username, crypto.decrypt(credential.password_encrypted),
                       crypto.decrypt(credential.enable_secret_encrypted) if credential.enable_secret_encrypted
                       else None)


# --- agent enrollment tokens -------------------------------------------------------------------

@dataclass(frozen=True)
class IssuedEnrollmentToken:
    token: EnrollmentToken
    secret: str


def issue_enrollment_token(name: str, *, days: int = 30, by) -> IssuedEnrollmentToken:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("Give the enrollment token a name of 1 to 100 characters.",
                               errors={"name": ["Required."]})
    if not 1 <= days <= 365:
        raise ValidationFailed("An enrollment token lasts 1 to 365 days.", errors={"days": ["1 to 365."]})
    secret = crypto.new_secret_token(ENROLLMENT_PREFIX)
    token = EnrollmentToken(name=name, prefix=secret[:len(ENROLLMENT_PREFIX) + 6], token_hash=crypto.token_digest(secret),
                            created_by_id=getattr(by, "id", None), expires_at=utcnow() + timedelta(days=days))
    db.session.add(token)
    db.session.flush()
    audit.record("enrollment_token.create", "enrollment_token", token.id,
                 summary=f"agent enrollment token {name!r} created, valid {days} days", actor=by)
    return IssuedEnrollmentToken(token, secret)


def enrollment_tokens() -> list[EnrollmentToken]:
    return list(db.session.scalars(select(EnrollmentToken).order_by(EnrollmentToken.id.desc())))


def revoke_enrollment_token(token_id: int, *, by) -> EnrollmentToken:
    token = found(db.session.get(EnrollmentToken, token_id), "enrollment token")
    if token.revoked_at is not None:
        raise Conflict("This enrollment token is already revoked.")
    token.revoked_at = utcnow()
    audit.record("enrollment_token.revoke", "enrollment_token", token.id,
                 summary=f"agent enrollment token {token.name!r} revoked", actor=by)
    return token


def counts_by_status() -> dict[str, int]:
    rows = db.session.execute(select(Asset.status, func.count()).group_by(Asset.status))
    return {status: count for status, count in rows}


def assets_matching(filters) -> Iterator[Asset]:
    """Every asset an asset-list filter matches (AssetFilters or a dict of its fields), a page at a time:
    for other domains acting on a selection (monitoring adds a check to each)."""
    from itops.assets import queries

    if isinstance(filters, dict):
        filters = queries.AssetFilters(**{k: v for k, v in filters.items() if v not in (None, "")})
    return queries.iter_assets(filters.validated())
