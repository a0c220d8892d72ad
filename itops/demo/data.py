"""The demo organisation that `make run` starts with: one login per role, passwords made on first start.

The passwords live in var/demo-logins.json (mode 0600) and are printed at every start, so the demo
can be tried at once without shipping well-known passwords.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from itops.demo.slapd import DirectoryPerson

# username -> (given name, family name, directory groups); directory sign-in maps the groups to roles.
DIRECTORY_STAFF = {
    "ivy": ("Ivy", "Tech", ("itops-it", "staff")),
    "hannah": ("Hannah", "Human", ("itops-hr", "staff")),
    "eve": ("Eve", "Employee", ("staff",)),
    "omar": ("Omar", "Okafor", ("staff",)),
    "zoe": ("Zoë", "Ødegård", ("staff",)),
}
DIRECTORY_GROUPS = {
    "itops-admins": "itops administrators",
    "itops-it": "IT staff",
    "itops-hr": "Human resources",
    "staff": "Everyone employed",
}
LOCAL_ADMIN = "admin"
# The roles printed at start-up, one login each.
LOGIN_ROLES = {"admin": "admin (local account)", "ivy": "it_staff (directory)", "hannah": "hr (directory)",
               "eve": "employee (directory)"}


def demo_logins(instance_dir: str | Path) -> dict[str, str]:
    """username -> password, created once with mode 0600."""
    path = Path(instance_dir) / "demo-logins.json"
    if path.exists():
        return json.loads(path.read_text())
    logins = {name: secrets.token_urlsafe(12) for name in (LOCAL_ADMIN, *DIRECTORY_STAFF)}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(logins, handle, indent=1)
    return logins


def directory_people(logins: dict[str, str]) -> list[DirectoryPerson]:
    people = [DirectoryPerson(uid=uid, given_name=given, family_name=family, mail=f"{uid}@example.org",
                              password=logins[uid], groups=groups)
              for uid, (given, family, groups) in DIRECTORY_STAFF.items()]
    people.append(DirectoryPerson(uid="lee", given_name="Lee", family_name="Leaver", mail="lee@example.org",
                                  password=secrets.token_urlsafe(12), disabled=True))
    return people


def load_local_users(logins: dict[str, str]) -> list[str]:
    """The local administrator (directory accounts are created at their first sign-in)."""
    from itops.core.auth import services
    from itops.core.policy import Role

    if services.find_user(LOCAL_ADMIN) is not None:
        return []
    services.create_local_user(LOCAL_ADMIN, logins[LOCAL_ADMIN],
                               role=Role.ADMIN, display_name="Demo Administrator", email="admin@example.org",
                               by="demo")
    return [LOCAL_ADMIN]


def login_lines(logins: dict[str, str]) -> list[str]:
    return [f"  {name:8} {logins[name]:18} {role}" for name, role in LOGIN_ROLES.items()]


# (kind, name, fields, holder username or None)
DEMO_ASSETS = [
    ("laptop", "eve-thinkpad", {"serial": "PF3DEMO01", "manufacturer": "Lenovo", "model": "ThinkPad T14 Gen 4",
                                "location": "Berlin HQ, 2nd floor", "cost": "1349.00", "supplier": "Bechtle"}, "eve"),
    ("mobile_phone", "Eve's phone", {"imei": "490154203237518", "phone_number": "+4915112345678",
                                     "carrier": "Telekom", "manufacturer": "Google", "model": "Pixel 8"}, "eve"),
    ("laptop", "omar-macbook", {"serial": "C02DEMO0002", "manufacturer": "Apple", "model": "MacBook Air M3",
                                "location": "Berlin HQ, 3rd floor", "cost": "1499.00"}, "omar"),
    ("desk_phone", "Reception phone", {"mac": "00:04:f2:aa:10:01", "extension": "100", "manufacturer": "Polycom",
                                       "model": "VVX 450", "location": "Berlin HQ, reception"}, None),
    ("desk_phone", "Meeting room Spree", {"mac": "00:04:f2:aa:10:02", "extension": "210", "manufacturer": "Polycom",
                                          "model": "Trio 8500", "location": "Berlin HQ, 2nd floor"}, None),
    ("laptop", "spare-laptop-1", {"serial": "PF3DEMO03", "manufacturer": "Lenovo", "model": "ThinkPad T14 Gen 4",
                                  "location": "IT store room"}, None),
    ("desktop", "design-workstation", {"serial": "DEMO-WS-01", "manufacturer": "Dell", "model": "Precision 3680",
                                       "location": "Hamburg office"}, "zoe"),
    ("server", "files-01", {"serial": "DEMO-SRV-01", "manufacturer": "HPE", "model": "ProLiant DL380 Gen11",
                            "location": "Berlin HQ, server room"}, None),
    ("switch", "core-sw-1", {"management_address": "127.0.0.1", "device_type": "cisco_ios", "manufacturer": "Cisco",
                             "model": "Catalyst 9300", "location": "Berlin HQ, server room"}, None),
    ("router", "edge-router", {"management_address": "127.0.0.2", "device_type": "cisco_xe", "manufacturer": "Cisco",
                               "model": "ISR 1100", "location": "Berlin HQ, server room"}, None),
    ("access_point", "ap-2nd-floor", {"management_address": "127.0.0.3", "manufacturer": "Ubiquiti",
                                      "model": "U6 Pro", "location": "Berlin HQ, 2nd floor"}, None),
    ("printer", "printer-2nd-floor", {"manufacturer": "Brother", "model": "HL-L6400DW",
                                      "location": "Berlin HQ, 2nd floor"}, None),
]


def load_demo_assets() -> int:
    """A small inventory on first start, some of it held by the directory's demo staff."""
    from decimal import Decimal

    from itops.assets import services as assets
    from itops.assets.models import Asset
    from itops.core.auth import services as auth
    from itops.extensions import db

    if db.session.scalar(db.select(Asset.id).limit(1)) is not None:
        return 0
    for kind, name, fields, holder in DEMO_ASSETS:
        values = {"name": name, **fields}
        if "cost" in values:
            values["cost"] = Decimal(values["cost"])
        asset = assets.create_asset(kind, values, by="demo")
        person = auth.import_directory_user(holder) if holder else None
        if person is not None:
            assets.checkout(asset, person, by="demo")
    return len(DEMO_ASSETS)


DEMO_SWITCH_NAMES = ("core-sw-1", "access-sw-2f", "access-sw-3f")


def load_demo_monitoring(switch_ports: list[int], username: str, password: str, enable_secret: str) -> int:
    """Checks on the demo's simulated switches (SSH and TCP) on first start; the access switches hang off
    the core switch, so stopping it shows them unreachable rather than down. Returns the checks made."""
    from itops.assets import services as assets
    from itops.assets.models import Asset
    from itops.extensions import db
    from itops.monitoring import services as monitoring
    from itops.monitoring.models import Check

    if not switch_ports or db.session.scalar(db.select(Check.id).limit(1)) is not None:
        return 0
    credential = assets.create_credential("demo switches", username, password, enable_secret=enable_secret,
                                          by="demo")
    switches = []
    for name, port in zip(DEMO_SWITCH_NAMES, switch_ports):
        asset = db.session.scalar(db.select(Asset).where(Asset.name == name))
        values = {"management_address": "127.0.0.1", "device_type": "cisco_ios", "credential_id": credential.id}
        if asset is None:
            asset = assets.create_asset("switch", {"name": name, "manufacturer": "Cisco", "model": "Catalyst 9200",
                                                   "location": "Berlin HQ, " + name.split("-")[-1], **values}, by="demo")
        else:
            assets.update_asset(asset, values, by="demo")
        monitoring.add_check(asset.id, "ssh", params={"port": port}, interval_seconds=60, timeout_seconds=15,
                             by="demo")
        monitoring.add_check(asset.id, "tcp", params={"port": port}, interval_seconds=30, timeout_seconds=3,
                             by="demo")
        switches.append(asset)
    for access in switches[1:]:
        monitoring.set_parent(access.id, switches[0].id, by="demo")
    return 2 * len(switches)


def demo_enrollment_token(instance_dir: str | Path) -> str:
    """The enrollment token `make run` uses to enroll this machine's own agent (kept 0600 in var/)."""
    from itops.assets import inventory, services as assets

    path = Path(instance_dir) / "demo-enrollment-token"
    if path.exists():
        try:
            inventory.usable_enrollment_token(path.read_text().strip())
            return path.read_text().strip()
        except inventory.TokenRefused:  # the database was reset or the token revoked: make another
            path.unlink()
    secret = assets.issue_enrollment_token("make run: this machine", days=365, by="demo").secret
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


DEMO_CATEGORIES = ("Hardware", "Software", "Access and accounts", "Network and VPN", "Phones")
DEMO_CANNED = {
    "Restart first": "Hello {requester_first_name},\n\nplease restart the device and tell us whether the problem "
                     "is still there.\n\n{agent_name}, IT service desk",
    "Waiting for you": "Hello {requester_first_name},\n\nwe need a little more from you to go on with "
                       "{ticket_number}: when did it start, and what exactly do you see?\n\n{agent_name}",
}
# (requester, title, body, category, impact, urgency, asset name or None)
DEMO_TICKETS = [
    ("eve", "Laptop fan is very loud", "Since Monday the fan of my ThinkPad runs at full speed all the time, even "
     "with only the browser open.", "Hardware", "low", "medium", "eve-thinkpad"),
    ("eve", "Cannot reach the VPN from home", "The VPN client says 'authentication failed' since this morning. "
     "I changed my password yesterday.", "Network and VPN", "medium", "high", None),
    ("omar", "Need access to the finance share", "Please give me read access to \\\\files-01\\finance for the "
     "quarterly report.", "Access and accounts", "low", "low", None),
]


def load_demo_tickets() -> int:
    """Helpdesk settings and a few tickets on first start, filed by the directory's demo staff."""
    from itops.assets import services as assets
    from itops.core.auth import services as auth
    from itops.extensions import db
    from itops.tickets import services as tickets
    from itops.tickets.models import Ticket

    if db.session.scalar(db.select(Ticket.id).limit(1)) is not None:
        return 0
    ivy = auth.import_directory_user("ivy")
    desk = tickets.save_team("Service desk", email=None, member_ids=[ivy.id] if ivy else [], by="demo")
    for name in DEMO_CATEGORIES:
        tickets.save_category(name, default_team_id=desk.id, default_assignee_id=None, by="demo")
    for title, body in DEMO_CANNED.items():
        tickets.save_canned_response(title, body, by="demo")
    categories = {c.name: c.id for c in tickets.categories()}
    filed = 0
    for username, title, body, category, impact, urgency, asset_name in DEMO_TICKETS:
        requester = auth.import_directory_user(username)
        if requester is None:
            continue
        held = {a.name: a.id for a in assets.assets_held_by(requester)}
        tickets.create_ticket(requester, title=title, body=body, category_id=categories[category], impact=impact,
                              urgency=urgency, asset_id=held.get(asset_name), by=requester)
        filed += 1
    return filed
