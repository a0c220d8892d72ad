"""What the directory should look like for a person, and the LDAP operations that get it there.

Pure functions of (the person's wanted account, the account as read, the groups that exist): the
same plan is a dry run's preview, an action's work, and reconcile's finding. Applying a plan and
then planning again gives no operations, which is what makes every action safe to re-run.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from itops.directory.ldap import Account, DesiredAccount, DirectoryRefused, Gateway, LdapOperation, escape_rdn


class Target(StrEnum):
    ACTIVE = "active"      # the entry exists under people, unlocked, with its attributes and mapped groups
    DISABLED = "disabled"  # under the disabled branch, password invalidated and locked, in no group
    ABSENT = "absent"      # no entry


@dataclass(frozen=True)
class Wanted:
    target: Target
    account: DesiredAccount | None     # None for ABSENT (and for an orphan being disabled)
    groups: frozenset[str] = frozenset()           # group cns the mappings give
    managed_groups: frozenset[str] = frozenset()   # every group cn any mapping names: the ones itops keeps in step
    password: str | None = None        # for a new or re-enabled account


def group_dn(gateway: Gateway, name: str) -> str:
    return f"cn={escape_rdn(name)},{gateway.groups_dn}"


def _under(dn: str, branch: str) -> bool:
    return dn.lower().endswith("," + branch.lower())


def plan(gateway: Gateway, wanted: Wanted, account: Account | None, existing_groups: set[str] | None = None,
         *, username: str | None = None) -> list[LdapOperation]:
    """The operations that bring `account` to `wanted`; [] when it is already there.

    `existing_groups` (lower-cased DNs) says which mapped groups exist; a missing one is created with
    the person as its first member (groupOfNames needs one). None: assume all exist.
    """
    flavour = gateway.flavour
    if wanted.target is Target.ABSENT:
        if account is None:
            return []
        return [*_leave_groups(gateway, account, account.groups), LdapOperation("delete", account.dn)]
    if wanted.target is Target.DISABLED:
        if account is None:
            return []
        ops = [*_leave_groups(gateway, account, account.groups)]
        ops += flavour.lock(account, account.dn)
        if not _under(account.dn, gateway.disabled_dn):
            ops.append(LdapOperation("move", account.dn, new_rdn=flavour.rdn(account.username or username),
                                     new_superior=gateway.disabled_dn))
        return ops

    desired = wanted.account
    dn = f"{flavour.rdn(desired.username)},{gateway.people_dn}"
    ops: list[LdapOperation] = []
    if account is None:
        ops.append(flavour.add(dn, desired, wanted.password or ""))
        current_groups: frozenset[str] = frozenset()
    else:
        actual_number = account.first("employeeNumber")
        if actual_number and actual_number != desired.employee_number:
            raise DirectoryRefused(f"The directory account {account.dn} belongs to employee number {actual_number}, "
                                   f"not {desired.employee_number}; resolve the clash by hand.")
        if not _under(account.dn, gateway.people_dn):
            ops.append(LdapOperation("move", account.dn, new_rdn=flavour.rdn(desired.username),
                                     new_superior=gateway.people_dn))
        if account.locked or not _under(account.dn, gateway.people_dn):
            ops += flavour.unlock(account, dn, wanted.password or "")
        elif wanted.password:
            ops.append(flavour.set_password(dn, wanted.password))
        ops += _attribute_changes(gateway, account, desired, dn)
        current_groups = account.groups
    for name in sorted(wanted.groups):
        target_dn = group_dn(gateway, name)
        if target_dn.lower() in current_groups:
            continue
        if existing_groups is not None and target_dn.lower() not in existing_groups:
            ops.append(flavour.add_group(target_dn, name, dn))
            existing_groups.add(target_dn.lower())
        else:
            ops.append(LdapOperation("modify", target_dn, changes={"member": ("add", [dn])}))
    if current_groups:  # a new account is in no group to leave (and a run plans thousands of them)
        unwanted = {group_dn(gateway, name).lower() for name in wanted.managed_groups - wanted.groups}
        ops += [flavour.remove_member(group, dn) for group in sorted(current_groups & unwanted)]
    return ops


def _attribute_changes(gateway: Gateway, account: Account, desired: DesiredAccount, dn: str) -> list[LdapOperation]:
    changes = {}
    for name, values in gateway.flavour.attributes(desired).items():
        actual = account.attributes.get(name) or []
        if name == "manager":  # DNs compare without case
            same = [v.lower() for v in actual] == [v.lower() for v in values]
        else:
            same = actual == values
        if not same:
            changes[name] = ("replace", values) if values else ("delete", [])
    return [LdapOperation("modify", dn, changes=changes)] if changes else []


def _leave_groups(gateway: Gateway, account: Account, groups) -> list[LdapOperation]:
    return [gateway.flavour.remove_member(group, account.dn) for group in sorted(groups)]


def kind_of(ops: list[LdapOperation], account: Account | None) -> str:
    """How reconcile names a difference: missing, state, attributes or groups."""
    if account is None:
        return "missing"
    if any(op.kind in ("move", "delete") or (op.changes and set(op.changes) & {"pwdAccountLockedTime",
                                                                              "userAccountControl"}) for op in ops):
        return "state"
    if any(op.dn == account.dn and op.kind == "modify" for op in ops):
        return "attributes"
    return "groups"
