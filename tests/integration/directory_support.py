"""Fixtures for the directory domain's tests: a private slapd per test module, emptied after each test."""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from ldap3 import LEVEL, SUBTREE

from itops.config import LdapSettings, parse_role_groups
from itops.demo.slapd import SlapdError, free_port, start_slapd
from itops.directory import services
from itops.directory.ldap import gateway
from itops.extensions import db
from tests.peers import peer_unavailable

ADMIN_PASSWORD = "directory-admin-pass"
TODAY = date.today()
YESTERDAY = TODAY - timedelta(days=1)


@pytest.fixture(scope="module")
def own_slapd(tmp_path_factory):
    """A slapd of this module's own, so tests can fill and empty it freely (a free port, never a fixed one)."""
    try:
        instance = start_slapd(tmp_path_factory.mktemp("directory-slapd"), port=free_port(),
                               admin_password=ADMIN_PASSWORD)
    except (SlapdError, OSError) as exc:
        peer_unavailable("slapd", str(exc))
    yield instance
    instance.stop()


def ldap_settings(instance) -> LdapSettings:
    return LdapSettings(url=instance.url, base_dn=instance.base_dn, people_dn=instance.people_dn,
                        groups_dn=instance.groups_dn, bind_dn=instance.admin_dn,
                        bind_password=instance.admin_password, user_attribute="uid",
                        role_groups=parse_role_groups("admin=itops-admins,it_staff=itops-it,hr=itops-hr"),
                        default_role="employee", timeout=3)


@pytest.fixture
def hr(app, own_slapd):
    """Point itops at the module's slapd (guard at its defaults); empty the directory afterwards."""
    saved = app.config["ITOPS_LDAP"], app.config["ITOPS_DIRECTORY"]
    app.config["ITOPS_LDAP"] = ldap_settings(own_slapd)
    yield own_slapd
    gateway().close()
    app.config["ITOPS_LDAP"], app.config["ITOPS_DIRECTORY"] = saved
    empty_directory(own_slapd)


def configure(app, **changes) -> None:
    app.config["ITOPS_DIRECTORY"] = dataclasses.replace(app.config["ITOPS_DIRECTORY"], **changes)


def empty_directory(instance) -> None:
    connection = instance.admin_connection()
    try:
        for branch in (instance.people_dn, instance.disabled_dn, instance.groups_dn):
            connection.search(branch, "(objectClass=*)", LEVEL, attributes=[])
            for entry in list(connection.entries):
                connection.delete(entry.entry_dn)
    finally:
        connection.unbind()


def entry(instance, username: str) -> dict | None:
    """The account's DN and attributes (with memberOf and the lock time), or None."""
    connection = instance.admin_connection()
    try:
        connection.search(instance.base_dn, f"(uid={username})", SUBTREE,
                          attributes=["*", "memberOf", "pwdAccountLockedTime"])
        if not connection.entries:
            return None
        assert len(connection.entries) == 1
        found = connection.entries[0]
        return {"dn": found.entry_dn, **{k: v for k, v in found.entry_attributes_as_dict.items()}}
    finally:
        connection.unbind()


def group_members(instance, name: str) -> list[str]:
    connection = instance.admin_connection()
    try:
        connection.search(f"cn={name},{instance.groups_dn}", "(objectClass=*)", attributes=["member"])
        return [m.lower() for m in connection.entries[0].member.values] if connection.entries else []
    finally:
        connection.unbind()


def joiner(number: str = "E1", given: str = "John", family: str = "Doe", **values) -> dict:
    return {"employee_number": number, "given_name": given, "family_name": family, "email": f"{number}@example.org",
            "department": "Sales", "title": "Account manager", "location": "Berlin", "start_date": TODAY, **values}


def onboard(values: dict | None = None, **kwargs) -> services.OnboardResult:
    result = services.onboard(values or joiner(), by="hr-test", **kwargs)
    db.session.commit()
    return result
