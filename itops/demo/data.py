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
