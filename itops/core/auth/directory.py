"""Directory sign-in: find the account with a service bind, then bind as the user with their password.

This is the foundation's read-only use of LDAP; itops/directory/ldap.py (the directory domain's
gateway) is the one that writes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from ldap3 import NONE, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from itops.config import LdapSettings
from itops.core.errors import Unavailable
from itops.core.policy import Role

log = logging.getLogger(__name__)

# When someone is in several mapped groups, the broadest role wins.
ROLE_PRECEDENCE = (Role.ADMIN, Role.IT_STAFF, Role.HR, Role.EMPLOYEE)


@dataclass(frozen=True)
class DirectoryAccount:
    dn: str
    username: str
    display_name: str
    email: str | None
    groups: frozenset[str]
    locked: bool

    def role(self, settings: LdapSettings) -> Role | None:
        """The itops role the account's groups map to, or the default role, or None (refused)."""
        mapped = {Role(settings.role_groups[g]) for g in self.groups if g in settings.role_groups}
        for role in ROLE_PRECEDENCE:
            if role in mapped:
                return role
        return Role(settings.default_role) if settings.default_role else None


def _server(settings: LdapSettings) -> Server:
    # get_info=NONE: reading the schema on every bind costs ~20 ms and sign-in needs none of it.
    return Server(settings.url, get_info=NONE, connect_timeout=settings.timeout)


def _service_connection(settings: LdapSettings) -> Connection:
    try:
        return Connection(_server(settings), settings.bind_dn, settings.bind_password, auto_bind=True,
                          receive_timeout=settings.timeout, read_only=True)
    except LDAPSocketOpenError as exc:
        log.warning("directory %s unreachable: %s", settings.url, type(exc).__name__)
        raise Unavailable("The directory is unreachable, so directory sign-in is unavailable. Try again shortly.")
    except LDAPException as exc:
        log.error("directory service bind as %s failed: %s", settings.bind_dn, type(exc).__name__)
        raise Unavailable("itops cannot search the directory (service bind failed). Tell your administrator.")


def _first(entry_attributes: dict, name: str) -> str | None:
    value = entry_attributes.get(name)
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _group_name(dn: str) -> str:
    rdn_attribute, rdn_value, _ = parse_dn(dn)[0]
    return rdn_value.lower()


def find_account(settings: LdapSettings, username: str) -> DirectoryAccount | None:
    """The active account for `username` under the people branch, or None.

    Accounts moved out of the people branch (e.g. to ou=disabled) are not found, which is how
    OpenLDAP deployments commonly disable them.
    """
    connection = _service_connection(settings)
    try:
        attribute = settings.user_attribute
        search_filter = f"(&(objectClass=inetOrgPerson)({attribute}={escape_filter_chars(username)}))"
        connection.search(settings.people_dn, search_filter, SUBTREE, size_limit=2,
                          attributes=[attribute, "cn", "displayName", "mail", "pwdAccountLockedTime"])
        entries = [e for e in connection.response if e.get("type") == "searchResEntry"]
        if len(entries) != 1:
            return None
        entry = entries[0]
        attributes = entry["attributes"]
        connection.search(settings.groups_dn, f"(member={escape_filter_chars(entry['dn'])})", SUBTREE,
                          attributes=["cn"])
        groups = frozenset(_group_name(e["dn"]) for e in connection.response if e.get("type") == "searchResEntry")
        return DirectoryAccount(
            dn=entry["dn"],
            username=(_first(attributes, attribute) or username).lower(),
            display_name=_first(attributes, "displayName") or _first(attributes, "cn") or username,
            email=_first(attributes, "mail"),
            groups=groups,
            locked=bool(attributes.get("pwdAccountLockedTime")),
        )
    except LDAPException as exc:
        log.warning("directory search for a user failed: %s", type(exc).__name__)
        raise Unavailable("The directory did not answer the search. Try again shortly.")
    finally:
        connection.unbind()


def verify_password(settings: LdapSettings, dn: str, password: str) -> bool:
    """Bind as the user. An empty password would be an anonymous bind, so it never succeeds."""
    if not password:
        return False
    connection = Connection(_server(settings), dn, password, receive_timeout=settings.timeout)
    try:
        return bool(connection.bind())
    except LDAPSocketOpenError:
        raise Unavailable("The directory is unreachable, so directory sign-in is unavailable. Try again shortly.")
    except LDAPException:
        return False
    finally:
        connection.unbind()
