"""Monitoring's rules: checks on assets, parents, maintenance windows, and incidents as tickets.

Other domains are reached through their services only: assets for devices and their (decrypted)
logins, tickets for incidents, core.auth for the monitoring account that files them.
"""
from __future__ import annotations

import ipaddress
import logging
import re
from datetime import datetime

from flask import current_app
from sqlalchemy import select

from itops.assets import services as assets_services
from itops.core import audit, crypto
from itops.core.auth import services as auth_services
from itops.core.database import utcnow
from itops.core.errors import NotFound, ValidationFailed, found
from itops.extensions import db
from itops.monitoring.choices import CheckKind, Health
from itops.monitoring.health import Damping, in_window
from itops.monitoring.models import AssetHealth, Check, ConfigBackup, MaintenanceWindow
from itops.monitoring.probes import Credentials, ProbeTarget
from itops.tickets import services as tickets_services

MONITORING_ACCOUNT = "itops-monitoring"
log = logging.getLogger(__name__)


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

PORT_KINDS = (CheckKind.TCP, CheckKind.SSH, CheckKind.SNMP, CheckKind.SIP)
HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
NUMERIC_OID = re.compile(r"^[0-2](\.\d{1,10}){1,127}$")


def checked_params(asset, kind: CheckKind, params: dict) -> dict:
    """A check's parameters, validated for its kind; the SNMP community is stored encrypted."""
    params = {key: value for key, value in (params or {}).items() if value not in (None, "", [])}
    errors: dict[str, list[str]] = {}
    if "port" in params:
        try:
            params["port"] = int(params["port"])
            if not 1 <= params["port"] <= 65535:
                raise ValueError
        except (TypeError, ValueError):
            errors["port"] = ["A port is 1 to 65535."]
    elif kind == CheckKind.TCP:
        errors["port"] = ["A TCP check needs a port."]
    if "host" in params:
        host = str(params["host"]).strip()
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not HOSTNAME.match(host):
                errors["host"] = ["Not an IP address or host name."]
        params["host"] = host
    elif kind != CheckKind.AGENT and not asset.management_address:
        errors["host"] = ["This asset has no management address: give the check a host."]
    if kind == CheckKind.SSH and (not asset.device_type or asset.credential_id is None):
        errors["kind"] = ["An SSH check needs the asset's device type and a stored login."]
    if kind == CheckKind.SNMP:
        community = params.pop("community", None)
        if community:
            params["community_encrypted"] = crypto.encrypt(str(community))
        elif "community_encrypted" not in params:
            errors["community"] = ["An SNMP v2c check needs a community."]
        oids = params.get("oids") or {}
        bad = [f"{name}={oid}" for name, oid in oids.items() if not NUMERIC_OID.match(str(oid))]
        if bad:
            errors["oids"] = [f"Numeric OIDs only: {', '.join(bad)}"]
    if kind == CheckKind.AGENT and "stale_seconds" in params:
        try:
            params["stale_seconds"] = max(60, int(params["stale_seconds"]))
        except (TypeError, ValueError):
            errors["stale_seconds"] = ["A number of seconds."]
    if errors:
        raise ValidationFailed("The check's settings are not valid.", errors=errors)
    return params


def _checked_timing(interval_seconds, timeout_seconds) -> tuple[int, float]:
    try:
        interval, timeout = int(interval_seconds), float(timeout_seconds)
    except (TypeError, ValueError):
        raise ValidationFailed("Interval and timeout are numbers of seconds.",
                               errors={"interval_seconds": ["seconds"], "timeout_seconds": ["seconds"]}) from None
    if not 5 <= interval <= 86400:
        raise ValidationFailed("The interval is 5 s to one day.", errors={"interval_seconds": ["5 to 86400"]})
    if not 0.1 <= timeout <= 120 or timeout >= interval:
        raise ValidationFailed("The timeout is 0.1 to 120 s and shorter than the interval.",
                               errors={"timeout_seconds": ["0.1 to 120, below the interval"]})
    return interval, timeout


def _kind(kind) -> CheckKind:
    try:
        return CheckKind(kind)
    except ValueError:
        raise ValidationFailed(f"Unknown check kind {kind!r}.", errors={"kind": [", ".join(CheckKind)]}) from None


def add_check(asset_id: int, kind: CheckKind | str, *, params: dict | None = None, interval_seconds: int = 60,
              timeout_seconds: float = 5.0, by) -> Check:
    asset = assets_services.get_asset(asset_id)
    kind = _kind(kind)
    interval, timeout = _checked_timing(interval_seconds, timeout_seconds)
    check = Check(asset_id=asset.id, kind=kind.value, params=checked_params(asset, kind, params or {}),
                  interval_seconds=interval, timeout_seconds=timeout, enabled=True, next_due_at=utcnow())
    db.session.add(check)
    health_of(asset.id)
    db.session.flush()
    audit.record("monitoring.check_add", "asset", asset.id, summary=f"{kind.label} check added to {asset.tag}",
                 actor=by)
    return check


def add_check_to_many(filters, kind: CheckKind | str, *, params: dict | None = None, interval_seconds: int = 60,
                      timeout_seconds: float = 5.0, by, dry_run: bool = False) -> dict:
    """The same check on every asset an asset-list filter matches (e.g. every switch in Berlin). Assets
    that already have a check of this kind (on the same port) or cannot take it are reported, not changed."""
    kind = _kind(kind)
    interval, timeout = _checked_timing(interval_seconds, timeout_seconds)
    existing = {(c.asset_id, (c.params or {}).get("port")) for c in db.session.scalars(
        select(Check).where(Check.kind == kind.value))}
    port = str((params or {}).get("port") or "")
    port = int(port) if port.isdigit() else None
    added, skipped, refused = [], [], {}
    for asset in assets_services.assets_matching(filters):
        if (asset.id, port) in existing:
            skipped.append(asset.tag)
            continue
        try:
            checked = checked_params(asset, kind, params or {})
        except ValidationFailed as exc:
            refused[asset.tag] = "; ".join(m for messages in (exc.errors or {}).values() for m in messages)
            continue
        added.append(asset.tag)
        if not dry_run:
            db.session.add(Check(asset_id=asset.id, kind=kind.value, params=checked, interval_seconds=interval,
                                 timeout_seconds=timeout, enabled=True, next_due_at=utcnow()))
            health_of(asset.id)
    if added and not dry_run:
        db.session.flush()
        audit.record("monitoring.check_add_many", "check", None,
                     summary=f"{kind.label} check added to {len(added)} assets", actor=by)
    return {"added": added, "skipped": skipped, "refused": refused}


def set_check_enabled(check: Check, enabled: bool, *, by) -> Check:
    """Pause a check (it is not polled; the device's health stays as it was) or resume it now."""
    check.enabled = enabled
    if enabled:
        check.next_due_at = utcnow()
    audit.record("monitoring.check_" + ("resume" if enabled else "pause"), "asset", check.asset_id,
                 summary=f"check {check.id} ({check.kind}) {'resumed' if enabled else 'paused'}", actor=by)
    return check


def delete_check(check: Check, *, by) -> None:
    audit.record("monitoring.check_delete", "asset", check.asset_id, summary=f"check {check.id} ({check.kind}) removed",
                 actor=by)
    db.session.delete(check)
    db.session.flush()


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
    return found(db.session.get(Check, check_id), "check")


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
    return tickets_services.category_named(current_app.config.get("ITOPS_MONITOR_CATEGORY"))


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


# --- configuration backups ------------------------------------------------------------------------------

def backup_configs(now: datetime | None = None) -> dict:
    """Fetch the running configuration of every network device with an enabled SSH check whose type has a
    known command, and store it when it changed since the last version. A device that cannot be read is
    counted and logged (without secrets); the others go on."""
    from itops.monitoring.probes import ProbeError
    from itops.monitoring.probes.config_backup import RUNNING_CONFIG_COMMANDS, fetch_running_config

    now = now or utcnow()
    asset_ids = sorted(set(db.session.scalars(select(Check.asset_id).where(
        Check.kind == CheckKind.SSH.value, Check.enabled.is_(True)))))
    counts = {"devices": 0, "changed": 0, "unchanged": 0, "failed": 0}
    for asset in assets_services.get_assets(asset_ids):
        if asset.device_type not in RUNNING_CONFIG_COMMANDS:
            continue
        counts["devices"] += 1
        check = db.session.scalar(select(Check).where(Check.asset_id == asset.id, Check.kind == CheckKind.SSH.value,
                                                      Check.enabled.is_(True)).limit(1))
        try:
            snapshot = fetch_running_config(probe_target(asset, CheckKind.SSH, check.params or {}),
                                            max(check.timeout_seconds, 30.0))
        except ProbeError as exc:
            log.warning("configuration backup of %s failed: %s", asset.tag, exc)
            counts["failed"] += 1
            continue
        latest = latest_config(asset.id)
        if latest is not None and latest.sha256 == snapshot.sha256:
            counts["unchanged"] += 1
            continue
        db.session.add(ConfigBackup(asset_id=asset.id, taken_at=now, sha256=snapshot.sha256,
                                    command=snapshot.command, text=snapshot.text))
        counts["changed"] += 1
    db.session.flush()
    return counts


def latest_config(asset_id: int) -> ConfigBackup | None:
    return db.session.scalar(select(ConfigBackup).where(ConfigBackup.asset_id == asset_id)
                             .order_by(ConfigBackup.taken_at.desc(), ConfigBackup.id.desc()).limit(1))


def config_versions(asset_id: int) -> list[ConfigBackup]:
    return list(db.session.scalars(select(ConfigBackup).where(ConfigBackup.asset_id == asset_id)
                                   .order_by(ConfigBackup.taken_at.desc(), ConfigBackup.id.desc())))


def get_config(asset_id: int, backup_id: int) -> ConfigBackup:
    backup = db.session.get(ConfigBackup, backup_id)
    if backup is None or backup.asset_id != asset_id:
        raise NotFound("No such configuration version.")
    return backup


def tidy_ssh_sessions() -> dict:
    """Close pooled SSH sessions idle longer than the pool's limit (checks removed or paused)."""
    from itops.monitoring.probes.ssh_pool import shared_pool

    pool = shared_pool()
    before = pool.open_sessions
    pool.close_idle()
    return {"closed": before - pool.open_sessions, "open": pool.open_sessions}
