"""The one ldap3 gateway: every directory read and write of the directory domain goes through here.

Writes are planned as explicit `LdapOperation`s (add, modify, move, delete) before they are
applied, so a dry run shows exactly what would be sent and tests check operations, not mocks.
Two flavours build them: OpenLDAP (inetOrgPerson, groupOfNames, ppolicy lock, ou=disabled) and
Active Directory (sAMAccountName, userPrincipalName, userAccountControl 514, unicodePwd).

Connections: one per thread (ldap3's Connection and Server are not thread-safe), opened lazily,
with connect and receive timeouts, and a second, pipelined one (ldap3's ASYNC strategy) for a batch's
adds (`apply_pipelined`, which encodes them itself: see `ldap_wire`). A read that loses its connection
is retried on a fresh one; a write that loses it is not (it may have been applied), the caller re-reads
and converges instead.
The bind password comes from the settings and is never logged; password values in operations are
masked wherever an operation is shown or stored.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flask import current_app
from ldap3 import (
    ASYNC, AUTO_BIND_NO_TLS, AUTO_BIND_TLS_BEFORE_BIND, BASE, MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE, NONE,
    SUBTREE, SYNC, Connection, Server,
)
from ldap3.core.exceptions import (
    LDAPBindError, LDAPCommunicationError, LDAPException, LDAPResponseTimeoutError, LDAPSocketOpenError,
    LDAPSocketSendError,
)
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from itops.config import DirectorySettings, LdapSettings
from itops.core.errors import Conflict, Unavailable
from itops.directory import ldap_wire

log = logging.getLogger(__name__)

__all__ = ["escape_filter_chars", "escape_rdn"]

SECRET_ATTRIBUTES = frozenset({"userpassword", "unicodepwd"})
MASK = "***"
PAGE_SIZE = 500
READ_RETRIES = 3
PIPELINE_WINDOW = 16   # adds in flight on a pipelined connection (more only made slapd's threads contend)
_BUSY = ("busy", "unavailable", "unwillingToPerform")   # refusals that mean "not now": retried later
_MODIFY_CODES = {"add": MODIFY_ADD, "delete": MODIFY_DELETE, "replace": MODIFY_REPLACE}


class DirectoryUnreachable(Unavailable):
    """The directory did not answer (down, restarting, network); the work waits and is retried."""


class DirectoryRefused(Conflict):
    """The directory answered no (a clash, a schema violation); retrying the same thing will not help."""


class NotSent(Exception):
    """Operations that were not sent: an earlier write of the same batch had failed."""


# --- operations -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LdapOperation:
    """One LDAP request, exactly as it will be sent."""
    kind: str                                     # add | modify | move | delete
    dn: str
    attributes: dict[str, list[str]] | None = None       # add
    changes: dict[str, tuple[str, list]] | None = None   # modify: attribute -> (add|delete|replace, values)
    new_rdn: str | None = None                           # move
    new_superior: str | None = None                      # move
    # groupOfNames needs a member: removing the last one replaces it with this placeholder DN instead.
    last_member_placeholder: str | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        """JSON-ready, with password values masked: what previews show and actions store."""
        out: dict = {"op": self.kind, "dn": self.dn}
        if self.attributes is not None:
            out["attributes"] = {name: _masked(name, values) for name, values in self.attributes.items()}
        if self.changes is not None:
            out["changes"] = {name: [code, _masked(name, values)] for name, (code, values) in self.changes.items()}
        if self.kind == "move":
            out["new_rdn"], out["new_superior"] = self.new_rdn, self.new_superior
        return out

    def describe(self) -> str:
        if self.kind == "add":
            return f"add {self.dn} " + ", ".join(f"{k}={v}" for k, v in self.as_dict()["attributes"].items())
        if self.kind == "modify":
            return f"modify {self.dn}: " + "; ".join(f"{code} {name} {values}" for name, (code, values)
                                                      in self.as_dict()["changes"].items())
        if self.kind == "move":
            return f"move {self.dn} -> {self.new_rdn},{self.new_superior}"
        return f"delete {self.dn}"


def _masked(name: str, values) -> list:
    if name.lower() in SECRET_ATTRIBUTES:
        return [MASK] if values else []
    return [v.decode() if isinstance(v, bytes) else v for v in values]


def modify(dn: str, **changes: tuple[str, list]) -> LdapOperation:
    return LdapOperation("modify", dn, changes=dict(changes))


# --- what an account should look like ---------------------------------------------------------

@dataclass(frozen=True)
class DesiredAccount:
    """The directory entry a person should have, independent of flavour."""
    username: str
    given_name: str
    family_name: str
    display_name: str
    email: str | None
    employee_number: str
    department: str | None
    title: str | None
    location: str | None
    manager_dn: str | None


@dataclass(frozen=True)
class Account:
    """An account as read from the directory."""
    dn: str
    username: str
    attributes: dict[str, list[str]]   # the flavour's managed attributes, keys as the flavour names them
    groups: frozenset[str]             # group DNs, lower-cased
    locked: bool

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name) or []
        return values[0] if values else None


def ssha(password: str) -> str:
    """An OpenLDAP {SSHA} value, so the clear password never reaches the directory's database."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


class OpenLdapFlavour:
    name = "openldap"
    user_attribute = "uid"
    person_filter = "(objectClass=inetOrgPerson)"
    group_filter = "(objectClass=groupOfNames)"
    # ppolicy: this lock time means "locked until an administrator removes it".
    LOCK_TIME = "000001010000Z"

    def __init__(self, settings: DirectorySettings, ldap: LdapSettings):
        self.ldap = ldap
        self.placeholder_dn = ldap.bind_dn

    lock_attribute = "pwdAccountLockedTime"

    def values(self, desired: DesiredAccount) -> dict[str, str | None]:
        """The managed attributes' values for a person (None: the attribute should be absent)."""
        return {"cn": desired.display_name, "sn": desired.family_name, "givenName": desired.given_name,
                "displayName": desired.display_name, "mail": desired.email,
                "employeeNumber": desired.employee_number, "departmentNumber": desired.department,
                "title": desired.title, "l": desired.location, "manager": desired.manager_dn}

    def identity(self, desired: DesiredAccount) -> dict[str, list]:
        return {"objectClass": ["inetOrgPerson"], "uid": [desired.username]}

    def initial_password(self, password: str) -> dict[str, list]:
        return {"userPassword": [ssha(password)]}

    @property
    def managed_attributes(self) -> tuple[str, ...]:
        return tuple(self.values(DesiredAccount(*[""] * 10)))

    @property
    def read_attributes(self) -> list[str]:
        return [self.user_attribute, *self.managed_attributes, self.lock_attribute]

    def rdn(self, username: str) -> str:
        return f"uid={escape_rdn(username)}"

    def attributes(self, desired: DesiredAccount) -> dict[str, list[str]]:
        return {name: [value] if value else [] for name, value in self.values(desired).items()}

    def add(self, dn: str, desired: DesiredAccount, password: str) -> LdapOperation:
        attributes = {name: values for name, values in self.attributes(desired).items() if values}
        return LdapOperation("add", dn, attributes={**self.identity(desired), **attributes,
                                                    **self.initial_password(password)})

    def set_password(self, dn: str, password: str) -> LdapOperation:
        return modify(dn, userPassword=("replace", [ssha(password)]))

    def lock(self, account: Account | None, dn: str) -> list[LdapOperation]:
        """Invalidate the password and lock through ppolicy (the move to the disabled OU follows)."""
        if account is not None and account.locked:
            return []
        return [modify(dn, userPassword=("replace", [ssha(os.urandom(24).hex())]),
                       pwdAccountLockedTime=("replace", [self.LOCK_TIME]))]

    def unlock(self, account: Account, dn: str, password: str) -> list[LdapOperation]:
        changes = {"userPassword": ("replace", [ssha(password)])}
        if account.locked:
            changes["pwdAccountLockedTime"] = ("delete", [])
        return [modify(dn, **changes)]

    def add_group(self, group_dn: str, name: str, member_dn: str) -> LdapOperation:
        return LdapOperation("add", group_dn, attributes={"objectClass": ["groupOfNames"], "cn": [name],
                                                          "member": [member_dn]})

    def remove_member(self, group_dn: str, member_dn: str) -> LdapOperation:
        return LdapOperation("modify", group_dn, changes={"member": ("delete", [member_dn])},
                             last_member_placeholder=self.placeholder_dn)

    def is_locked(self, attributes: dict) -> bool:
        return bool(attributes.get("pwdAccountLockedTime"))


class ActiveDirectoryFlavour(OpenLdapFlavour):
    """Active Directory: tested at the level of the operations it produces (no AD server here)."""
    name = "ad"
    user_attribute = "sAMAccountName"
    person_filter = "(&(objectClass=user)(objectCategory=person))"
    group_filter = "(objectClass=group)"
    ENABLED, DISABLED = "512", "514"  # NORMAL_ACCOUNT, and NORMAL_ACCOUNT | ACCOUNTDISABLE

    def __init__(self, settings: DirectorySettings, ldap: LdapSettings):
        super().__init__(settings, ldap)
        if not (ldap.url.lower().startswith("ldaps://") or settings.start_tls):
            raise DirectoryRefused("Active Directory takes passwords only over an encrypted connection: use an "
                                   "ldaps:// URL or set ITOPS_LDAP_START_TLS=true.")
        base_domain = ".".join(value for attr, value, _ in parse_dn(ldap.base_dn) if attr.lower() == "dc")
        self.upn_suffix = settings.upn_suffix or base_domain

    lock_attribute = "userAccountControl"

    def values(self, desired: DesiredAccount) -> dict[str, str | None]:
        # cn is the RDN (renamed only by a move), so it is not among the attributes kept in step.
        return {"sn": desired.family_name, "givenName": desired.given_name, "displayName": desired.display_name,
                "mail": desired.email, "employeeNumber": desired.employee_number, "department": desired.department,
                "title": desired.title, "l": desired.location, "manager": desired.manager_dn,
                "userPrincipalName": f"{desired.username}@{self.upn_suffix}"}

    def identity(self, desired: DesiredAccount) -> dict[str, list]:
        return {"objectClass": ["top", "person", "organizationalPerson", "user"], "sAMAccountName": [desired.username]}

    def initial_password(self, password: str) -> dict[str, list]:
        return {"unicodePwd": [self.encode_password(password)], "userAccountControl": [self.ENABLED]}

    def rdn(self, username: str) -> str:
        return f"CN={escape_rdn(username)}"

    @staticmethod
    def encode_password(password: str) -> bytes:
        return f'"{password}"'.encode("utf-16-le")

    def set_password(self, dn: str, password: str) -> LdapOperation:
        return modify(dn, unicodePwd=("replace", [self.encode_password(password)]))

    def lock(self, account: Account | None, dn: str) -> list[LdapOperation]:
        if account is not None and account.locked:
            return []
        return [modify(dn, userAccountControl=("replace", [self.DISABLED]),
                       unicodePwd=("replace", [self.encode_password(os.urandom(24).hex() + "aA1!")]))]

    def unlock(self, account: Account, dn: str, password: str) -> list[LdapOperation]:
        return [modify(dn, unicodePwd=("replace", [self.encode_password(password)]),
                       userAccountControl=("replace", [self.ENABLED]))]

    def add_group(self, group_dn: str, name: str, member_dn: str) -> LdapOperation:
        return LdapOperation("add", group_dn, attributes={"objectClass": ["top", "group"], "cn": [name],
                                                          "sAMAccountName": [name], "member": [member_dn]})

    def remove_member(self, group_dn: str, member_dn: str) -> LdapOperation:
        return LdapOperation("modify", group_dn, changes={"member": ("delete", [member_dn])})

    def is_locked(self, attributes: dict) -> bool:
        value = (attributes.get("userAccountControl") or ["0"])[0]
        return bool(int(value) & 2)


def make_flavour(settings: DirectorySettings, ldap: LdapSettings) -> OpenLdapFlavour:
    return (ActiveDirectoryFlavour if settings.flavour == "ad" else OpenLdapFlavour)(settings, ldap)


# --- the gateway --------------------------------------------------------------------------------

class Gateway:
    """Reads and applies operations against one directory; safe to share between threads."""

    def __init__(self, ldap: LdapSettings, settings: DirectorySettings, *, sleep: Callable[[float], None] = time.sleep):
        self.ldap = ldap
        self.settings = settings
        self.flavour = make_flavour(settings, ldap)
        self.people_dn = ldap.people_dn
        self.groups_dn = ldap.groups_dn
        self.disabled_dn = settings.disabled_dn or f"ou=disabled,{ldap.base_dn}"
        self._local = threading.local()
        self._sleep = sleep

    def __repr__(self) -> str:  # never the bind password
        return f"Gateway({self.ldap.url!r}, flavour={self.flavour.name!r})"

    # -- connections

    def _connection(self, strategy: str = SYNC) -> Connection:
        """This thread's connection: a synchronous one, or (ASYNC) one that several requests share in flight."""
        name = "connection" if strategy == SYNC else "pipelined"
        connection = getattr(self._local, name, None)
        if connection is not None and not connection.closed:
            return connection
        server = Server(self.ldap.url, get_info=NONE, connect_timeout=self.ldap.timeout)
        auto_bind = AUTO_BIND_TLS_BEFORE_BIND if self.settings.start_tls else AUTO_BIND_NO_TLS
        try:
            # ASYNC: no receive timeout, or ldap3's receiver thread spins on a closed socket instead of ending
            # (apply_pipelined waits for each answer with the timeout instead).
            connection = Connection(server, self.ldap.bind_dn, self.ldap.bind_password, auto_bind=auto_bind,
                                    receive_timeout=self.ldap.timeout if strategy == SYNC else None,
                                    raise_exceptions=False, client_strategy=strategy)
        except LDAPBindError:
            log.error("directory service bind as %s refused", self.ldap.bind_dn)
            raise DirectoryUnreachable("The directory refused itops' service bind; check ITOPS_LDAP_BIND_DN "
                                       "and its password.") from None
        except LDAPException as exc:
            raise DirectoryUnreachable(f"The directory at {self.ldap.url} is unreachable ({type(exc).__name__}).") \
                from None
        setattr(self._local, name, connection)
        return connection

    def close(self, strategy: str | None = None) -> None:
        """Close this thread's connections, or the one of this strategy (the next call opens a new one)."""
        for name in ("connection", "pipelined") if strategy is None else \
                ("connection" if strategy == SYNC else "pipelined",):
            connection = getattr(self._local, name, None)
            setattr(self._local, name, None)
            if connection is not None:
                try:
                    connection.unbind()
                except LDAPException:
                    pass

    def _read(self, call: Callable[[Connection], object]):
        """Run a read, retrying on a fresh connection when the old one was lost."""
        for attempt in range(READ_RETRIES):
            try:
                return call(self._connection())
            except (LDAPCommunicationError, LDAPResponseTimeoutError, DirectoryUnreachable) as exc:
                self.close()
                if attempt == READ_RETRIES - 1:
                    raise DirectoryUnreachable(f"The directory at {self.ldap.url} is unreachable "
                                               f"({type(exc).__name__}).") from None
                self._sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    # -- reading

    def _search(self, connection: Connection, base: str, search_filter: str, attributes, *, scope=SUBTREE,
                paged: bool = False) -> list[dict]:
        if paged:
            entries = connection.extend.standard.paged_search(base, search_filter, scope, attributes=attributes,
                                                              paged_size=PAGE_SIZE, generator=False)
            result = connection.result
        else:
            connection.search(base, search_filter, scope, attributes=attributes)
            entries, result = connection.response, connection.result
        if result["result"] not in (0, 32):  # 32: noSuchObject, an empty answer here
            if result["description"] in ("busy", "unavailable"):
                raise DirectoryUnreachable(f"The directory is {result['description']}.")
            raise DirectoryRefused(f"Directory search under {base} failed: {result['description']}.")
        return [e for e in entries or [] if e.get("type") == "searchResEntry"]

    def _account(self, entry: dict, groups: Iterable[str]) -> Account:
        raw = entry["attributes"]
        attributes = {}
        for name in self.flavour.managed_attributes:
            value = raw.get(name)
            values = value if isinstance(value, list) else ([] if value in (None, "") else [value])
            attributes[name] = [str(v) for v in values]
        username = raw.get(self.flavour.user_attribute)
        username = username[0] if isinstance(username, list) else username
        return Account(dn=entry["dn"], username=str(username).lower(), attributes=attributes,
                       groups=frozenset(g.lower() for g in groups), locked=self.flavour.is_locked(raw))

    def find_account(self, username: str) -> Account | None:
        """The account with this username anywhere under the base (people or disabled), with its groups."""
        user_filter = (f"(&{self.flavour.person_filter}"
                       f"({self.flavour.user_attribute}={escape_filter_chars(username)}))")

        def read(connection):
            entries = self._search(connection, self.ldap.base_dn, user_filter, self.flavour.read_attributes)
            if not entries:
                return None
            if len(entries) > 1:
                raise DirectoryRefused(f"The directory has {len(entries)} accounts named {username}; "
                                       "resolve that by hand first.")
            return self._with_groups(connection, entries[0])

        return self._read(read)

    def _with_groups(self, connection: Connection, entry: dict) -> Account:
        groups = self._search(connection, self.groups_dn,
                              f"(&{self.flavour.group_filter}(member={escape_filter_chars(entry['dn'])}))", [])
        return self._account(entry, (g["dn"] for g in groups))

    def find_accounts(self, usernames: Iterable[str]) -> dict[str, Account | None]:
        """find_account for many usernames, a search per 100 names: username -> account or None. A username
        with more than one entry is left out, for find_account to refuse."""
        names = sorted({name.lower() for name in usernames})
        attribute = self.flavour.user_attribute

        def read(connection):
            entries: dict[str, list[dict]] = {name: [] for name in names}
            for start in range(0, len(names), 100):
                wanted = "".join(f"({attribute}={escape_filter_chars(name)})" for name in names[start:start + 100])
                for entry in self._search(connection, self.ldap.base_dn, f"(&{self.flavour.person_filter}(|{wanted}))",
                                          self.flavour.read_attributes):
                    value = entry["attributes"].get(attribute)
                    for name in {str(v).lower() for v in (value if isinstance(value, list) else [value])}:
                        if name in entries:
                            entries[name].append(entry)
            return {name: self._with_groups(connection, found[0]) if found else None
                    for name, found in entries.items() if len(found) <= 1}

        return self._read(read)

    def username_exists(self, username: str) -> bool:
        user_filter = f"({self.flavour.user_attribute}={escape_filter_chars(username)})"
        return bool(self._read(lambda c: self._search(c, self.ldap.base_dn, user_filter, [])))

    def all_usernames(self) -> set[str]:
        """Every username anywhere under the base, lower-cased (one paged search): what username_exists
        answers for each of them, for a batch that would otherwise ask thousands of times."""
        attribute = self.flavour.user_attribute

        def read(connection):
            names = set()
            for entry in self._search(connection, self.ldap.base_dn, f"({attribute}=*)", [attribute], paged=True):
                value = entry["attributes"].get(attribute)
                names.update(str(v).lower() for v in (value if isinstance(value, list) else [value]) if v)
            return names

        return self._read(read)

    def all_accounts(self) -> list[Account]:
        """Every account under the people and disabled branches, with groups (two paged searches per branch)."""
        def read(connection):
            members: dict[str, set[str]] = {}
            for group in self._search(connection, self.groups_dn, self.flavour.group_filter, ["member"],
                                      paged=True):
                for member in group["attributes"].get("member") or []:
                    members.setdefault(member.lower(), set()).add(group["dn"])
            accounts = []
            for base in (self.people_dn, self.disabled_dn):
                for entry in self._search(connection, base, self.flavour.person_filter, self.flavour.read_attributes,
                                          paged=True):
                    if entry["attributes"].get(self.flavour.user_attribute):
                        accounts.append(self._account(entry, members.get(entry["dn"].lower(), ())))
            return accounts

        return self._read(read)

    def existing_groups(self, group_dns: Iterable[str]) -> set[str]:
        """Which of these group DNs exist (lower-cased)."""
        def read(connection):
            found = set()
            for dn in group_dns:
                if self._search(connection, dn, "(objectClass=*)", [], scope=BASE):
                    found.add(dn.lower())
            return found

        return self._read(read)

    # -- writing

    def apply(self, operations: Iterable[LdapOperation]) -> list[LdapOperation]:
        """Send the operations in order; returns those applied. Stops at the first refusal or lost connection."""
        applied = []
        for operation in operations:
            self._apply_one(operation)
            applied.append(operation)
        return applied

    def _apply_one(self, operation: LdapOperation) -> None:
        connection = self._connection()  # an unreachable directory fails here, before anything is sent
        try:
            ok = self._send(connection, operation)
        except (LDAPCommunicationError, LDAPResponseTimeoutError) as exc:
            self.close(SYNC)
            raise _lost(operation, exc) from None
        if ok:
            return
        result = connection.result
        if result["description"] == "objectClassViolation" and operation.last_member_placeholder:
            # The last member of a groupOfNames: put the placeholder in its place.
            if connection.modify(operation.dn, {"member": [(MODIFY_REPLACE, [operation.last_member_placeholder])]}):
                return
            result = connection.result
        if connection.closed:
            self.close(SYNC)
            raise DirectoryUnreachable(f"The directory closed the connection during '{operation.kind} "
                                       f"{operation.dn}'; it is retried later.")
        raise self._refusal(operation, result, SYNC)

    def _refusal(self, operation: LdapOperation, result: dict, strategy: str) -> Exception:
        """The error for a write the directory answered with `result` (not success)."""
        if result["description"] in _BUSY:
            self.close(strategy)
            return DirectoryUnreachable(f"The directory could not take '{operation.kind} {operation.dn}' now "
                                        f"({result['description']}); it is retried later.")
        return DirectoryRefused(f"The directory refused '{operation.kind} {operation.dn}': {result['description']} "
                                f"{result.get('message') or ''}".strip())

    def apply_pipelined(self, joiners: list[list[LdapOperation]], stopped: threading.Event) -> list[Exception | None]:
        """Apply each joiner's operations as `apply` does, with the adds of different joiners PIPELINE_WINDOW at a
        time in flight on one connection: slapd writes one while the next is encoded, where `apply` waits for
        each answer. Returns each joiner's error, or None once its operations are applied. The first error
        sets `stopped` (shared with the batch's other senders), and from then on nothing more is sent: the
        joiners not sent get NotSent (those in flight get their own outcome)."""
        outcomes: list[Exception | None] = [None] * len(joiners)
        in_flight: deque[tuple[int, LdapOperation, int]] = deque()   # (joiner, its add, the message id)

        def lose_in_flight(exc: Exception) -> None:  # the connection is gone: those adds may or may not be applied
            self.close(ASYNC)
            stopped.set()
            for index, operation, _ in in_flight:
                outcomes[index] = _lost(operation, exc)
            in_flight.clear()

        def settle(count: int) -> None:  # take the answers to the oldest `count` adds in flight
            for _ in range(min(count, len(in_flight))):
                index, operation, message_id = in_flight[0]
                try:
                    _, result = connection.get_response(message_id, timeout=self.ldap.timeout)
                    if result is None:  # the connection dropped what was outstanding
                        raise LDAPCommunicationError("no answer")
                # Any failure to read the answer counts as lost: when the socket closes under it, ldap3 also
                # fails in odd ways (an AttributeError from its cleared bookkeeping).
                except Exception as exc:
                    lose_in_flight(exc)
                    return
                in_flight.popleft()
                if result["result"] != 0:
                    outcomes[index] = self._refusal(operation, result, ASYNC)
                    stopped.set()

        connection = None
        for index, operations in enumerate(joiners):
            if stopped.is_set():
                outcomes[index] = NotSent("not sent: an earlier write of the batch failed")
                continue
            if len(operations) != 1 or operations[0].kind != "add":  # one after the other, as `apply` sends them
                settle(len(in_flight))
                try:
                    self.apply(operations)
                except Exception as exc:
                    outcomes[index] = exc
                    stopped.set()
                continue
            try:
                connection = connection or self._connection(ASYNC)
                if connection.closed:  # its receiver saw the socket close
                    raise LDAPCommunicationError("connection closed")
                in_flight.append((index, operations[0], _send_add_pipelined(connection, operations[0])))
            # The connection broke (AttributeError: ldap3's socket was taken from under it) or never opened:
            # no answer will come for what is in flight.
            except (LDAPCommunicationError, DirectoryUnreachable, AttributeError) as exc:
                lose_in_flight(exc)
                outcomes[index] = exc if isinstance(exc, DirectoryUnreachable) else _lost(operations[0], exc)
                continue
            if len(in_flight) >= PIPELINE_WINDOW:
                settle(1)
        settle(len(in_flight))
        return outcomes

    @staticmethod
    def _send(connection: Connection, operation: LdapOperation):
        """Success (a synchronous connection), or the request's message id (ASYNC)."""
        if operation.kind == "add":
            attributes = dict(operation.attributes)
            object_class = attributes.pop("objectClass")
            return connection.add(operation.dn, object_class, attributes)
        if operation.kind == "modify":
            changes = {name: [(_MODIFY_CODES[code], values)] for name, (code, values) in operation.changes.items()}
            return connection.modify(operation.dn, changes)
        if operation.kind == "move":
            return connection.modify_dn(operation.dn, operation.new_rdn, new_superior=operation.new_superior)
        if operation.kind == "delete":
            return connection.delete(operation.dn)
        raise ValueError(f"unknown LDAP operation {operation.kind!r}")


def _send_add_pipelined(connection: Connection, operation: LdapOperation) -> int:
    """Send an add on an ASYNC connection as its `add` would, with the request encoded by `ldap_wire` (a fifth
    of the CPU of ldap3's pyasn1 encoding); returns the message id, whose answer `get_response` reads as usual.

    This does what ldap3 2.9's AsyncStrategy.send does for an add (pinned in requirements.txt; the tests
    check the bytes against ldap3's and the adds against slapd): take a message id, note the request as
    outstanding, send, and post_send_single_response. A SASL connection goes through ldap3 (DIGEST-MD5 may
    sign every message)."""
    if connection.sasl_mechanism is not None:
        return Gateway._send(connection, operation)
    attributes = {name: values for name, values in operation.attributes.items() if name != "objectClass"}
    attributes["objectClass"] = operation.attributes["objectClass"]   # last, where ldap3 puts it
    strategy = connection.strategy
    with connection.connection_lock:
        if not connection.listening:
            raise LDAPSocketOpenError("unable to send message, socket is not open")
        message_id = connection.server.next_message_id()
        strategy._outstanding[message_id] = {"type": "addRequest", "entry": operation.dn, "attributes": attributes,
                                             "controls": None}
        try:
            connection.socket.sendall(ldap_wire.add_request(message_id, operation.dn, attributes))
        except OSError as exc:
            strategy._outstanding.pop(message_id, None)
            raise LDAPSocketSendError(f"socket sending error {exc}") from None
        return strategy.post_send_single_response(message_id)


def _lost(operation: LdapOperation, exc: Exception) -> DirectoryUnreachable:
    return DirectoryUnreachable(f"The directory connection was lost during '{operation.kind} {operation.dn}' "
                                f"({type(exc).__name__}); it is retried later.")


def gateway() -> Gateway:
    """The app's gateway, made on first use from ITOPS_LDAP and ITOPS_DIRECTORY."""
    ldap = current_app.config.get("ITOPS_LDAP")
    if ldap is None:
        raise Conflict("No directory is configured (ITOPS_LDAP_URL is not set).")
    settings = current_app.config["ITOPS_DIRECTORY"]
    cached = current_app.extensions.get("itops_directory_gateway")
    if cached is None or cached.ldap is not ldap or cached.settings is not settings:
        cached = Gateway(ldap, settings)
        current_app.extensions["itops_directory_gateway"] = cached
    return cached
