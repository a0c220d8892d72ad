"""What the inventory agent sends: reading and checking a report, enrolling a machine, recording changes.

The report format is docs/agent-protocol.md. Checking is hand-written rather than a marshmallow schema
because a report carries thousands of packages and the server takes hundreds of reports a second;
the checks are the same kind (types, lengths, counts, unknown keys refused).
"""
from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, Callable

from sqlalchemy import bindparam, delete, func, insert, select, update

from itops.assets import services, validation
from itops.assets.choices import COMPUTER_KINDS, AssetKind, EventKind
from itops.assets.models import Asset, EnrollmentToken, InstalledSoftware
from itops.core import crypto
from itops.core.database import utcnow
from itops.core.errors import DomainError, ValidationFailed
from itops.extensions import db

AGENT_PREFIX = "itops_agt_"
AGENT_ACTOR = "agent"
MAX_COMPRESSED_BYTES = 2 * 1024 * 1024
MAX_REPORT_BYTES = 8 * 1024 * 1024
MAX_ERRORS = 50
REPORT_INTERVAL_SECONDS = 3600
DETAIL_NAMES = 50  # package names listed per change kind in a history event


class TokenRefused(DomainError):
    status = 401
    title = "Agent token refused"


class ReportTooLarge(DomainError):
    status = 413
    title = "Report too large"


class BadReport(DomainError):
    status = 400
    title = "Unreadable report"


# --- reading the body --------------------------------------------------------------------------

def read_body(raw: bytes, content_encoding: str | None) -> dict:
    """Decode a (possibly gzip'd) JSON body within the size limits; a gzip bomb stops at the limit."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        if len(raw) > MAX_COMPRESSED_BYTES:
            raise ReportTooLarge(f"The compressed report is over {MAX_COMPRESSED_BYTES // 1048576} MiB.")
        inflater = zlib.decompressobj(wbits=31)
        try:
            raw = inflater.decompress(raw, MAX_REPORT_BYTES + 1)
        except zlib.error:
            raise BadReport("The body is not valid gzip.") from None
        if len(raw) > MAX_REPORT_BYTES or inflater.unconsumed_tail:
            raise ReportTooLarge(f"The report is over {MAX_REPORT_BYTES // 1048576} MiB uncompressed.")
    elif encoding != "identity":
        raise BadReport(f"Content-Encoding {encoding!r} is not supported; send gzip or nothing.")
    elif len(raw) > MAX_REPORT_BYTES:
        raise ReportTooLarge(f"The report is over {MAX_REPORT_BYTES // 1048576} MiB.")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadReport("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise BadReport("The report must be a JSON object.")
    return body


# --- checking the report -----------------------------------------------------------------------

class _Errors(dict):
    def add(self, path: str, message: str) -> None:
        if len(self) < MAX_ERRORS:
            self.setdefault(path or "report", []).append(message)


Check = Callable[[Any, str, _Errors], Any]


def text(max_length: int = 255, *, nullable: bool = False) -> Check:
    def check(value, path, errors):
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            errors.add(path, "Must be a string.")
        elif len(value) > max_length:
            errors.add(path, f"At most {max_length} characters.")
        elif "\x00" in value:
            errors.add(path, "Must not contain NUL characters.")
        return value
    return check


def number(minimum: float = 0, maximum: float = 2 ** 63, *, integer: bool = False, nullable: bool = False) -> Check:
    def check(value, path, errors):
        if value is None and nullable:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            errors.add(path, "Must be an integer." if integer else "Must be a number.")
        elif not minimum <= value <= maximum:
            errors.add(path, f"Must be between {minimum} and {maximum}.")
        return value
    return check


def boolean(*, nullable: bool = False) -> Check:
    def check(value, path, errors):
        if not (isinstance(value, bool) or (value is None and nullable)):
            errors.add(path, "Must be true or false.")
        return value
    return check


def timestamp(*, nullable: bool = False) -> Check:
    def check(value, path, errors):
        if value is None and nullable:
            return None
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                raise ValueError
        except (TypeError, ValueError):
            errors.add(path, "Must be an ISO 8601 time with a UTC offset.")
        return value
    return check


def _list_within(value, path: str, errors: _Errors, max_items: int) -> bool:
    if not isinstance(value, list):
        errors.add(path, "Must be a list.")
        return False
    if len(value) > max_items:
        errors.add(path, f"At most {max_items} entries.")
        return False
    return True


def items(check_item: Check, max_items: int) -> Check:
    def check(value, path, errors):
        if not _list_within(value, path, errors, max_items):
            return []
        return [check_item(item, f"{path}[{i}]", errors) for i, item in enumerate(value)]
    return check


def obj(fields: dict[str, Check], *, optional: frozenset[str] = frozenset(), nullable: bool = False) -> Check:
    def check(value, path, errors):
        if value is None and nullable:
            return None
        if not isinstance(value, dict):
            errors.add(path, "Must be an object.")
            return {}
        prefix = f"{path}." if path else ""
        for key in value.keys() - fields.keys():
            errors.add(prefix + str(key)[:64], "Unknown field.")
        for key in fields.keys() - value.keys() - optional:
            errors.add(prefix + key, "Missing.")
        return {key: fields[key](value[key], prefix + key, errors) for key in fields.keys() & value.keys()}
    return check


@dataclass(frozen=True)
class Packages:
    """A checked package list, column by column (arch "" where the agent sent none).

    A report carries about 1,500 packages; checking, digesting and comparing them with whole-list
    operations (map, join, zip) costs a fraction of handling 1,500 dicts one by one."""
    names: list[str]
    archs: list[str]
    versions: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def versions_by_package(self) -> dict[tuple[str, str], str]:
        return dict(zip(zip(self.names, self.archs), self.versions))

    def digest(self) -> str:
        """SHA-256 of the sorted "name<TAB>arch<TAB>version" lines: any order of the same packages, one digest."""
        lines = sorted(map("\t".join, zip(self.names, self.archs, self.versions)))
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


NO_PACKAGES = Packages([], [], [])
_PACKAGE_FIELDS = (itemgetter("name"), itemgetter("arch"), itemgetter("version"))


def _plain_texts(column: list, max_length: int) -> bool:
    """Every entry a string of at most `max_length` characters without NUL."""
    try:
        joined = "".join(column)  # TypeError unless every entry is a string
    except TypeError:
        return False
    return "\x00" not in joined and max(map(len, column), default=0) <= max_length


def _plain_packages(entries: list) -> Packages | None:
    """The entries as Packages if every one is an object of exactly name, version and arch with plainly
    valid values, found with whole-list passes; None if anything is off."""
    try:
        names, archs, versions = (list(map(field, entries)) for field in _PACKAGE_FIELDS)
    except (KeyError, TypeError):  # a field missing, or an entry that is not an object
        return None
    if set(map(len, entries)) - {3}:  # an entry with more fields
        return None
    if None in archs:
        archs = ["" if arch is None else arch for arch in archs]
    if _plain_texts(names, 255) and _plain_texts(versions, 255) and _plain_texts(archs, 32):
        return Packages(names, archs, versions)
    return None


def packages(check_package: Check, max_items: int) -> Check:
    """A package list as Packages. Well-formed lists take the quick path; a list with an entry that is not
    plainly valid goes through the full check, entry by entry, for a precise error."""
    def check(value, path, errors):
        if not _list_within(value, path, errors, max_items):
            return NO_PACKAGES
        checked = _plain_packages(value)
        if checked is None:
            before = len(errors)
            for i, item in enumerate(value):
                check_package(item, f"{path}[{i}]", errors)
            if len(errors) == before:  # the two checks disagree: refuse rather than store a list unchecked
                errors.add(path, "Not a valid package list.")
            return NO_PACKAGES
        return checked
    return check


def _schema_version(value, path, errors):
    if value != 1:
        errors.add(path, "This server understands report schema 1.")
    return value


_NULLABLE = dict(nullable=True)
REPORT_PACKAGES = packages(obj({"name": text(), "version": text(), "arch": text(32, **_NULLABLE)}), 20000)
REPORT = obj({
    "schema": _schema_version,
    "agent_version": text(32),
    "collected_at": timestamp(),
    "hostname": text(253),
    "fqdn": text(**_NULLABLE),
    "os": obj({"system": text(**_NULLABLE), "name": text(**_NULLABLE), "version": text(**_NULLABLE),
               "kernel": text(**_NULLABLE), "arch": text(**_NULLABLE)}),
    "boot_time": timestamp(**_NULLABLE),
    "hardware": obj({"manufacturer": text(**_NULLABLE), "model": text(**_NULLABLE), "serial": text(**_NULLABLE)},
                    nullable=True),
    "cpu": obj({"model": text(255, **_NULLABLE), "cores_physical": number(0, 4096, integer=True, **_NULLABLE),
                "cores_logical": number(0, 8192, integer=True, **_NULLABLE),
                "frequency_mhz": number(0, 100000, **_NULLABLE)}, nullable=True),
    "memory": obj({"total_bytes": number(0, 2 ** 60, integer=True)}),
    "disks": items(obj({"device": text(), "mountpoint": text(), "fstype": text(),
                        "total_bytes": number(0, 2 ** 62, integer=True),
                        "used_bytes": number(0, 2 ** 62, integer=True)}), 64),
    "network": items(obj({"name": text(), "mac": text(**_NULLABLE), "addresses": items(text(), 32)}), 64),
    "users": items(obj({"name": text(), "terminal": text(**_NULLABLE), "host": text(**_NULLABLE),
                        "started": timestamp(**_NULLABLE)}), 64),
    "last_user": text(**_NULLABLE),
    "battery": obj({"percent": number(0, 100), "plugged": boolean(**_NULLABLE),
                    "seconds_left": number(0, 10 ** 7, integer=True, **_NULLABLE)}, nullable=True),
    "software": obj({"status": text(16), "manager": text(16, **_NULLABLE),
                     "packages": REPORT_PACKAGES,
                     "detail": text(2000, **_NULLABLE)}),
}, optional=frozenset({"fqdn", "boot_time", "hardware", "cpu", "users", "last_user", "battery"}))


def check_report(body: dict) -> dict:
    errors = _Errors()
    report = REPORT(body, "", errors)
    software = report.get("software") or {}
    if software.get("status") not in (None, "ok", "unsupported", "error"):
        errors.add("software.status", "One of ok, unsupported, error.")
    for i, interface in enumerate(report.get("network") or []):
        if isinstance(interface, dict) and interface.get("mac"):
            try:
                interface["mac"] = validation.mac(interface["mac"])
            except (TypeError, ValueError) as exc:
                errors.add(f"network[{i}].mac", str(exc))
    if errors:
        raise ValidationFailed("The inventory report does not match the agent protocol (schema 1).",
                               errors=dict(errors))
    return report


# --- tokens ------------------------------------------------------------------------------------

def usable_enrollment_token(secret: str) -> EnrollmentToken:
    token = db.session.scalar(select(EnrollmentToken).where(EnrollmentToken.token_hash == crypto.token_digest(secret)))
    if token is None or token.state != "active":
        raise TokenRefused("The enrollment token is unknown, revoked or expired; ask IT for a new one.")
    return token


# Built once: each report looks its machine up by token, and building the statement costs a tenth of a millisecond.
_ASSET_BY_TOKEN = select(Asset).where(Asset.agent_token_hash == bindparam("token_hash"))


def asset_for_agent_token(secret: str) -> Asset:
    asset = None
    if secret.startswith(AGENT_PREFIX):
        asset = db.session.scalar(_ASSET_BY_TOKEN, {"token_hash": crypto.token_digest(secret)})
    if asset is None:
        raise TokenRefused("The agent token is unknown or was replaced; enroll this machine again.")
    return asset


# --- matching and recording ---------------------------------------------------------------------

# Interfaces that containers, bridges and VPNs add: their MACs are not the machine's.
VIRTUAL_INTERFACE_PREFIXES = ("lo", "docker", "br-", "veth", "virbr", "vnet", "ifb", "tun", "tap", "wg", "vmnet",
                              "vboxnet", "zt", "tailscale", "cni", "flannel", "kube")


def _macs(report: dict) -> list[str]:
    """The machine's MAC addresses, physical-looking interfaces first (by name, as reported)."""
    found = [(n["name"].startswith(VIRTUAL_INTERFACE_PREFIXES), n["mac"]) for n in report.get("network") or []
             if n.get("mac") and n["mac"] != "00:00:00:00:00:00"]
    return [mac for _virtual, mac in sorted(found, key=lambda pair: pair[0])]


def _hardware(report: dict) -> dict:
    return report.get("hardware") or {}


def match_asset(report: dict) -> Asset | None:
    """The computer this report describes: by serial number, then any MAC address, then hostname."""
    computers = select(Asset).where(Asset.kind.in_(COMPUTER_KINDS)).order_by(Asset.id).limit(1)
    serial = _hardware(report).get("serial")
    if serial:
        asset = db.session.scalar(select(Asset).where(Asset.serial == serial))
        if asset is not None:
            return asset
    macs = _macs(report)
    if macs:
        asset = db.session.scalar(computers.where(Asset.mac.in_(macs)))
        if asset is not None:
            return asset
    return db.session.scalar(computers.where(func.lower(Asset.name) == report["hostname"].lower()))


def enroll(token: EnrollmentToken, report: dict) -> tuple[Asset, str]:
    """Register the machine (matched or new) and give it its own agent token; an older one stops working."""
    asset = match_asset(report)
    if asset is None:
        kind = AssetKind.LAPTOP if report.get("battery") else AssetKind.DESKTOP
        macs = _macs(report)
        asset = services.create_asset(kind, {"name": report["hostname"], "mac": macs[0] if macs else None},
                                      by=AGENT_ACTOR, event=EventKind.ENROLLED)
    secret = crypto.new_secret_token(AGENT_PREFIX)
    asset.agent_token_hash = crypto.token_digest(secret)
    token.uses += 1
    token.last_used_at = utcnow()
    services.record_event(asset, EventKind.ENROLLED, by=AGENT_ACTOR,
                          summary=f"agent enrolled from {report['hostname']} with token {token.name!r}")
    apply_report(asset, report)
    return asset, secret


def _gib(size: int | None) -> str:
    return f"{(size or 0) / 1073741824:.1f} GiB"


def _facts_of(report: dict) -> dict:
    software = report["software"]
    facts = {key: report.get(key) for key in ("hostname", "fqdn", "os", "boot_time", "hardware", "cpu", "memory",
                                                "disks", "network", "users", "battery", "agent_version",
                                                "collected_at")}
    facts.update(software_status=software["status"], software_manager=software.get("manager"),
                 software_detail=software.get("detail"), software_count=len(software["packages"]))
    return facts


def _hardware_changes(old: dict, new: dict) -> list[str]:
    changes = []
    if old.get("hostname") != new.get("hostname"):
        changes.append(f"hostname {old.get('hostname')} → {new.get('hostname')}")
    old_os, new_os = old.get("os") or {}, new.get("os") or {}
    for key, label in (("name", "OS"), ("version", "OS version"), ("kernel", "kernel")):
        if old_os.get(key) != new_os.get(key):
            changes.append(f"{label} {old_os.get(key)} → {new_os.get(key)}")
    old_memory, new_memory = (old.get("memory") or {}).get("total_bytes"), new["memory"]["total_bytes"]
    if old_memory != new_memory:
        changes.append(f"memory {_gib(old_memory)} → {_gib(new_memory)}")
    if (old.get("cpu") or {}).get("model") != (new.get("cpu") or {}).get("model"):
        changes.append(f"CPU {(old.get('cpu') or {}).get('model')} → {(new.get('cpu') or {}).get('model')}")
    old_disks = {(d["device"], d["mountpoint"]): d for d in old.get("disks") or []}
    new_disks = {(d["device"], d["mountpoint"]): d for d in new.get("disks") or []}
    changes += [f"disk added: {m} ({d}, {_gib(new_disks[(d, m)]['total_bytes'])})"
                for d, m in new_disks.keys() - old_disks.keys()]
    changes += [f"disk removed: {m} ({d})" for d, m in old_disks.keys() - new_disks.keys()]
    changes += [f"disk {m} resized {_gib(old_disks[(d, m)]['total_bytes'])} → {_gib(new_disks[(d, m)]['total_bytes'])}"
                for d, m in old_disks.keys() & new_disks.keys()
                if old_disks[(d, m)]["total_bytes"] != new_disks[(d, m)]["total_bytes"]]
    old_nics = {n["name"]: n.get("mac") for n in old.get("network") or []}
    new_nics = {n["name"]: n.get("mac") for n in new.get("network") or []}
    changes += [f"network interface added: {name}" for name in new_nics.keys() - old_nics.keys()]
    changes += [f"network interface removed: {name}" for name in old_nics.keys() - new_nics.keys()]
    return sorted(changes)


def _sync_software(asset: Asset, packages: Packages) -> dict[str, list[str]]:
    """Make the stored rows match the report; what was installed, removed or upgraded."""
    reported = packages.versions_by_package()
    # Rows unpacked rather than read by attribute: a machine has ~1,500 and attribute reads cost twice the fetch.
    stored = {(name, arch): (row_id, version) for row_id, name, arch, version in db.session.execute(
        select(InstalledSoftware.id, InstalledSoftware.name, InstalledSoftware.arch, InstalledSoftware.version)
        .where(InstalledSoftware.asset_id == asset.id))}
    added = reported.keys() - stored.keys()
    removed = stored.keys() - reported.keys()
    upgraded = [key for key in reported.keys() & stored.keys() if reported[key] != stored[key][1]]
    if added:  # into the table, not through the ORM's bulk insert: a first report adds ~1,500 rows
        db.session.execute(insert(InstalledSoftware.__table__), [
            {"asset_id": asset.id, "name": name, "arch": arch, "version": reported[(name, arch)]}
            for name, arch in added])
    if removed:
        db.session.execute(delete(InstalledSoftware).where(InstalledSoftware.id.in_([stored[k][0] for k in removed])))
    if upgraded:  # one executemany, by primary key
        db.session.execute(update(InstalledSoftware), [{"id": stored[key][0], "version": reported[key]}
                                                       for key in upgraded])
    return {"installed": sorted(f"{n} {reported[(n, a)]}" for n, a in added),
            "removed": sorted(f"{n} {stored[(n, a)][1]}" for n, a in removed),
            "upgraded": sorted(f"{n} {stored[(n, a)][1]} → {reported[(n, a)]}" for n, a in upgraded)}


def _adopt_hardware(asset: Asset, report: dict, changes: list[str]) -> None:
    """Fill in what the machine knows about itself; a serial owned by another asset is reported, not taken."""
    hardware = _hardware(report)
    for field in ("manufacturer", "model"):
        if hardware.get(field) and not getattr(asset, field):
            setattr(asset, field, hardware[field][:128])
    serial = hardware.get("serial")
    if serial and len(serial) <= 128 and asset.serial != serial:
        owner = db.session.scalar(select(Asset.tag).where(Asset.serial == serial, Asset.id != asset.id))
        if owner:
            changes.append(f"reported serial {serial} belongs to {owner}; not changed")
        else:
            changes.append(f"serial {asset.serial} → {serial}")
            asset.serial = serial
    macs = _macs(report)
    if macs and not asset.mac:
        asset.mac = macs[0]


# Facts that change on every report (clock, uptime, disk use, sessions, battery) are stored without an
# event; a report that differs from the last only in these is not written again within this time.
VOLATILE_FACTS = frozenset({"collected_at", "boot_time", "disks", "users", "battery"})
SEEN_RESOLUTION = timedelta(seconds=60)


def _only_volatile_changes(asset: Asset, new_facts: dict, report: dict, now: datetime) -> bool:
    if asset.last_seen_at is None or now - asset.last_seen_at >= SEEN_RESOLUTION:
        return False
    if (report.get("last_user") or None) != asset.last_user:
        return False
    old = asset.facts
    return all(old.get(key) == value for key, value in new_facts.items() if key not in VOLATILE_FACTS)


def apply_report(asset: Asset, report: dict) -> list[str]:
    """Store the report on the asset; record one history event listing what changed, if anything did."""
    first = asset.facts is None
    new_facts = _facts_of(report)
    changes = [] if first else _hardware_changes(asset.facts, new_facts)
    _adopt_hardware(asset, report, changes)
    packages = report["software"]["packages"]
    digest = packages.digest()
    software = {"installed": [], "removed": [], "upgraded": []}
    if digest != asset.software_digest:
        software = _sync_software(asset, packages)
        asset.software_digest = digest
    if not first:
        changes += [f"software {kind}: {len(names)}" for kind, names in software.items() if names]
    now = utcnow()
    if not changes and not first and _only_volatile_changes(asset, new_facts, report, now):
        return changes  # nothing worth a write: last seen is kept to the minute (SEEN_RESOLUTION)
    asset.facts = new_facts
    asset.last_user = (report.get("last_user") or "")[:64] or None  # usernames longer than 64 match nobody
    asset.last_seen_at = now
    services.refresh_search_text(asset)
    if changes:
        details = {"changes": changes} | {kind: names[:DETAIL_NAMES] for kind, names in software.items() if names}
        services.record_event(asset, EventKind.INVENTORY, by=AGENT_ACTOR, details=details,
                              summary="; ".join(changes)[:500])
    elif first:
        services.record_event(asset, EventKind.INVENTORY, by=AGENT_ACTOR,
                              summary=f"first inventory: {len(packages)} packages, {_gib(new_facts['memory']['total_bytes'])} memory")
    return changes
