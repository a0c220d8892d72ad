"""Reconcile: compare HR's people with the directory, report the differences, apply only the confirmed ones.

One paged read of every account and group and one query of people, compared in memory with the
same planner the actions use, so a finding's operations are exactly what applying it sends (a
fresh read is planned again at apply time, so a finding fixed meanwhile changes nothing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select

from itops.core import audit
from itops.core.database import utcnow
from itops.core.errors import ValidationFailed
from itops.directory import planning, services
from itops.directory.choices import LIVE_STATES, ActionKind, BatchKind, PersonState
from itops.directory.ldap import Account, DirectoryRefused, gateway
from itops.directory.models import Person
from itops.directory.planning import Target
from itops.extensions import db

TARGET_OF_STATE = {PersonState.ACTIVE: Target.ACTIVE, PersonState.LEAVING: Target.ACTIVE,
                   PersonState.DISABLED: Target.DISABLED, PersonState.DELETED: Target.ABSENT}


@dataclass
class Finding:
    key: str                 # stable: "orphan:<username>" or "person:<id>"
    kind: str                # orphan | missing | state | attributes | groups | clash
    username: str
    detail: str
    operations: list[dict]   # the LDAP operations that would fix it (passwords masked)
    person_id: int | None = None

    @property
    def removes_access(self) -> bool:
        return self.kind == "orphan" or any(op["op"] == "delete" for op in self.operations)


@dataclass
class ReconcileReport:
    findings: list[Finding] = field(default_factory=list)
    accounts: int = 0
    people: int = 0

    @property
    def counts(self) -> dict[str, int]:
        counts = {"accounts": self.accounts, "people": self.people}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def as_dict(self) -> dict:
        return {"counts": self.counts, "findings": [vars(f) for f in self.findings]}


def reconcile(progress=None) -> ReconcileReport:
    """The report; reads only."""
    gw = gateway()
    accounts = {account.username: account for account in gw.all_accounts()}
    people = list(db.session.scalars(select(Person).where(Person.username.is_not(None))
                                     .order_by(Person.username, Person.id.desc())))
    mappings = services.group_mappings()
    existing_groups = {dn for account in accounts.values() for dn in account.groups}
    report = ReconcileReport(accounts=len(accounts), people=len(people))
    if progress is not None:
        progress.set_total(len(people) + len(accounts))
    claimed: set[str] = set()
    for person in people:
        if person.username in claimed:  # an older, deleted holder of a reused username
            continue
        if person.state_enum != PersonState.PENDING:
            claimed.add(person.username)
            finding = _compare(gw, person, accounts.get(person.username), mappings, existing_groups)
            if finding is not None:
                report.findings.append(finding)
        if progress is not None:
            progress.advance(message=f"compared {person.username}")
    for username, account in sorted(accounts.items()):
        if username not in claimed and not _is_disabled_orphan(gw, account):
            ops = planning.plan(gw, planning.Wanted(Target.DISABLED, None), account)
            report.findings.append(Finding(f"orphan:{username}", "orphan", username,
                                           f"{account.dn} is in the directory but not in HR's records",
                                           [op.as_dict() for op in ops]))
        if progress is not None:
            progress.advance(message=f"checked {username}")
    return report


def _is_disabled_orphan(gw, account: Account) -> bool:
    """An unknown account already disabled and in no group needs nothing more."""
    return account.dn.lower().endswith("," + gw.disabled_dn.lower()) and account.locked and not account.groups


def _compare(gw, person: Person, account: Account | None, mappings, existing_groups: set[str]) -> Finding | None:
    target = TARGET_OF_STATE[person.state_enum]
    wanted = services.wanted_state(person, target, password="(new)" if account is None else None, mappings=mappings)
    try:
        ops = planning.plan(gw, wanted, account, set(existing_groups))
    except DirectoryRefused as exc:
        return Finding(f"person:{person.id}", "clash", person.username, exc.detail, [], person.id)
    if not ops:
        return None
    kind = planning.kind_of(ops, account)
    detail = {"missing": f"{person.display_name} is {person.state} but has no directory account",
              "state": f"{person.display_name} is {person.state}; the account is not",
              "attributes": f"the account's attributes differ from HR's record of {person.display_name}",
              "groups": f"the account's groups differ from the mappings for {person.display_name}"}[kind]
    return Finding(f"person:{person.id}", kind, person.username, detail, [op.as_dict() for op in ops], person.id)


@dataclass
class ReconcileOutcome:
    applied: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict)   # re-created accounts' new passwords, shown once
    held_batch_id: int | None = None


def apply(report: ReconcileReport, keys: set[str], *, by, progress=None, approved: bool = False) -> ReconcileOutcome:
    """Apply the findings whose keys an administrator confirmed, each as a step run at once.

    Over the mass-change guard (orphans disabled, accounts deleted), nothing is applied: a held batch
    carrying the keys waits for approval (`approved=True` when applying an approved batch).
    """
    chosen = [f for f in report.findings if f.key in keys]
    unknown = keys - {f.key for f in chosen}
    if unknown:
        raise ValidationFailed(f"Not in the report: {', '.join(sorted(unknown))}.")
    outcome = ReconcileOutcome()
    removals = sum(f.removes_access for f in chosen)
    if not approved and removals and services.guard_trips(removals):
        batch = services.hold_batch(BatchKind.RECONCILE, f"reconcile: {len(chosen)} fixes", removals=removals, by=by,
                                    payload={"keys": sorted(keys)})
        outcome.held_batch_id = batch.id
        return outcome
    if progress is not None:
        progress.set_total(len(chosen))
    for finding in chosen:
        password = _fix(finding, by=by)
        if password:
            outcome.passwords[finding.username] = password
        outcome.applied.append(finding.key)
        if progress is not None:
            progress.advance(message=f"fixed {finding.username}")
    audit.record("directory.reconcile", "directory", None, actor=by,
                 summary=f"reconcile applied {len(outcome.applied)} fixes")
    return outcome


def _fix(finding: Finding, *, by) -> str | None:
    """Converge one finding through a step run now; a re-created account gets a new password, returned."""
    if finding.kind == "orphan":
        account = gateway().find_account(finding.username)
        if account is not None:
            action = services.schedule_step(None, ActionKind.DISABLE, date.today(), by=by, target_dn=account.dn)
            services.run_step(action, now=utcnow(), by=by)
            _raise_if_failed(action)
        return None
    person = db.session.get(Person, finding.person_id)
    password = services.new_initial_password() if finding.kind == "missing" and person.state_enum in LIVE_STATES \
        else None
    kind = {PersonState.DISABLED: ActionKind.DISABLE, PersonState.DELETED: ActionKind.DELETE}.get(
        person.state_enum, ActionKind.MOVE)
    if kind == ActionKind.DELETE:
        account = gateway().find_account(person.username)
        operations = planning.plan(gateway(), planning.Wanted(Target.ABSENT, None), account)
        gateway().apply(operations)
        return None
    action = services.schedule_step(person, ActionKind.RESTORE if password else kind, date.today(), by=by,
                                secret=password, planned={})
    services.run_step(action, now=utcnow(), by=by)
    _raise_if_failed(action)
    return password


def _raise_if_failed(action) -> None:
    if action.state != "done":
        raise DirectoryRefused(f"Fixing {action.target_dn or action.person.username} did not complete: "
                               f"{action.last_error}")
