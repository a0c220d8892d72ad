"""Monitoring's rules: checks on assets, parents, maintenance windows, and incidents as tickets.

Other domains are reached through their services only: assets for devices and their (decrypted)
logins, tickets for incidents, core.auth for the monitoring account that files them.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from itops.assets import services as assets_services
from itops.core import audit, crypto
from itops.core.auth import services as auth_services
from itops.core.database import utcnow
from itops.core.errors import NotFound, ValidationFailed
from itops.extensions import db
from itops.monitoring.choices import CheckKind, Health
from itops.monitoring.health import Damping, in_window
from itops.monitoring.models import AssetHealth, Check, MaintenanceWindow
from itops.monitoring.probes import Credentials, ProbeTarget
from itops.tickets import services as tickets_services

MONITORING_ACCOUNT = "itops-monitoring"


def damping() -> Damping:
    config = current_app.config
    return Damping(down_after=config["ITOPS_MONITOR_DOWN_AFTER"], up_after=config["ITOPS_MONITOR_UP_AFTER"])


# --- reaching a device ----------------------------------------------------------------------------------

def probe_target(asset, kind: str, params: dict) -> ProbeTarget:
    """Where and how to reach the device: its management address (or the check's host), its netmiko
    type, and its stored login and SNMP community decrypted only now, for this poll."""
    login = assets_services.device_login(asset) if kind in (CheckKind.SSH, CheckKind.SNMP) else None
    community = params.get("community_encrypted")
    credentials = Credentials(
        username=login.username if login else None, password=login.password if login else None,
        enable_secret=login.enable_secret if login else None,
        snmp_community=crypto.decrypt(community) if community else None)
    host = params.get("host") or asset.management_address or asset.name
    return ProbeTarget(host=host, port=params.get("port"), device_type=asset.device_type, credentials=credentials)


# --- checks, parents, maintenance -------------------------------------------------------------------

def add_check(asset_id: int, kind: CheckKind | str, *, params: dict | None = None, interval_seconds: int = 60,
              timeout_seconds: float = 5.0, by) -> Check:
    asset = assets_services.get_asset(asset_id)
    try:
        kind = CheckKind(kind)
    except ValueError:
        raise ValidationFailed(f"Unknown check kind {kind!r}.", errors={"kind": [", ".join(CheckKind)]}) from None
    if not 5 <= interval_seconds <= 86400:
        raise ValidationFailed("The interval is 5 s to one day.", errors={"interval_seconds": ["5 to 86400"]})
    if not 0.1 <= timeout_seconds <= 120 or timeout_seconds >= interval_seconds:
        raise ValidationFailed("The timeout is 0.1 to 120 s and shorter than the interval.",
                               errors={"timeout_seconds": ["0.1 to 120, below the interval"]})
    check = Check(asset_id=asset.id, kind=kind.value, params=dict(params or {}), interval_seconds=interval_seconds,
                  timeout_seconds=timeout_seconds, enabled=True, next_due_at=utcnow())
    db.session.add(check)
    health_of(asset.id)
    db.session.flush()
    audit.record("monitoring.check_add", "asset", asset.id, summary=f"{kind.label} check added to {asset.tag}",
                 actor=by)
    return check


def health_of(asset_id: int) -> AssetHealth:
    """The asset's health row, created (unknown) when it is first monitored."""
    health = db.session.get(AssetHealth, asset_id)
    if health is None:
        health = AssetHealth(asset_id=asset_id, state=Health.UNKNOWN.value, state_rank=Health.UNKNOWN.rank,
                             changed_at=utcnow(), failures=0,
                             successes=0, recent_changes=[], flapping=False, incident_open=False, incidents_opened=0)
        db.session.add(health)
    return health


def get_check(check_id: int) -> Check:
    check = db.session.get(Check, check_id)
    if check is None:
        raise NotFound("No such check.")
    return check


def current_health(asset_id: int) -> AssetHealth | None:
    """The asset's health if it is monitored (None if not): for the device page and the ticket page."""
    return db.session.get(AssetHealth, asset_id)


def set_parent(asset_id: int, parent_id: int | None, *, by) -> AssetHealth:
    """The device this one is reached through; a loop (A behind B behind A) is refused."""
    health = health_of(assets_services.get_asset(asset_id).id)
    seen = {asset_id}
    cursor = parent_id
    while cursor is not None:
        if cursor in seen:
            raise ValidationFailed("That would make a loop of parents.", errors={"parent_id": ["A loop."]})
        seen.add(cursor)
        assets_services.get_asset(cursor)
        cursor = db.session.scalar(select(AssetHealth.parent_asset_id).where(AssetHealth.asset_id == cursor))
    health.parent_asset_id = parent_id
    db.session.flush()
    audit.record("monitoring.parent", "asset", asset_id, summary=f"parent set to {parent_id or 'none'}", actor=by)
    return health


def add_maintenance(asset_id: int, reason: str, *, starts_at: datetime | None = None, ends_at: datetime | None = None,
                    weekday: int | None = None, start_minute: int | None = None,
                    duration_minutes: int | None = None, by) -> MaintenanceWindow:
    assets_services.get_asset(asset_id)
    one_off = starts_at is not None and ends_at is not None and starts_at < ends_at
    weekly = weekday in range(7) and start_minute in range(1440) and (duration_minutes or 0) > 0
    if one_off == weekly or not (reason or "").strip():
        raise ValidationFailed("A maintenance window has a reason and either a start before its end or a "
                               "weekday, a start time and a duration.", errors={"window": ["Incomplete."]})
    window = MaintenanceWindow(asset_id=asset_id, reason=reason.strip()[:200], starts_at=starts_at, ends_at=ends_at,
                               weekday=weekday, start_minute=start_minute, duration_minutes=duration_minutes)
    db.session.add(window)
    db.session.flush()
    audit.record("monitoring.maintenance", "asset", asset_id, summary=f"maintenance window: {window.reason}", actor=by)
    return window


def assets_in_maintenance(asset_ids: set[int], now: datetime) -> set[int]:
    windows = db.session.scalars(select(MaintenanceWindow).where(MaintenanceWindow.asset_id.in_(asset_ids)))
    return {w.asset_id for w in windows
            if in_window(now, starts_at=w.starts_at, ends_at=w.ends_at, weekday=w.weekday,
                         start_minute=w.start_minute, duration_minutes=w.duration_minutes)}


# --- incidents ----------------------------------------------------------------------------------------

def monitoring_account():
    return auth_services.system_account(MONITORING_ACCOUNT, "itops monitoring")


def _incident_category_id() -> int | None:
    wanted = (current_app.config.get("ITOPS_MONITOR_CATEGORY") or "").strip().lower()
    return next((c.id for c in tickets_services.categories() if c.name.lower() == wanted), None)


def open_incident(health: AssetHealth, reason: str, now: datetime) -> None:
    """One ticket per outage, found again by its dedup key if this runs twice."""
    asset = assets_services.get_asset(health.asset_id)
    account = monitoring_account()
    key = f"monitoring:asset:{asset.id}:outage:{health.incidents_opened + 1}"
    ticket = tickets_services.find_by_dedup_key(key)
    if ticket is None:
        ticket = tickets_services.create_ticket(
            account, title=f"{asset.tag} {asset.name} is down"[:200],
            body=f"Monitoring marked {asset.tag} ({asset.name}) down at {now:%Y-%m-%d %H:%M:%S} UTC.\n\n{reason}",
            category_id=_incident_category_id(), impact="high", urgency="high", asset_id=asset.id, by=account,
            source="monitoring", dedup_key=key)
    health.incidents_opened += 1
    health.incident_ticket_id, health.incident_open = ticket.id, True


def reopen_incident(health: AssetHealth, reason: str, now: datetime) -> None:
    """Down again soon after recovering: the same ticket, reopened with a note (a closed one is final)."""
    account = monitoring_account()
    try:
        ticket = tickets_services.get_ticket(health.incident_ticket_id)
    except NotFound:
        ticket = None
    if ticket is None or ticket.status == "closed":
        open_incident(health, reason, now)
        return
    if not ticket.is_open:
        tickets_services.change_status(ticket, "open", by=account)
    tickets_services.add_comment(ticket, account, f"Down again at {now:%Y-%m-%d %H:%M:%S} UTC.\n\n{reason}")
    health.incident_open = True


def resolve_incident(health: AssetHealth, now: datetime, down_since: datetime | None) -> None:
    account = monitoring_account()
    try:
        ticket = tickets_services.get_ticket(health.incident_ticket_id)
    except NotFound:
        ticket = None
    if ticket is not None and ticket.is_open:
        lasted = f" after {int((now - down_since).total_seconds() // 60)} min" if down_since else ""
        tickets_services.add_comment(ticket, account, f"Recovered at {now:%Y-%m-%d %H:%M:%S} UTC{lasted}.")
        tickets_services.resolve_by_workflow(ticket, by=account, reason="the device answers again")
    health.incident_open, health.incident_resolved_at = False, now
