"""The directory domain's operations: joiners, movers, leavers, dated actions, dry runs, the mass-change guard.

The only module other domains (and the HR pages, SCIM and the scheduler) call. Services add and
flush, never commit; LDAP writes happen inside `run_due` (and at once for steps already due), and
every step converges: it reads the account, plans the operations still missing and applies them,
so running a step twice, or again after a crash, changes nothing the second time.

Assets and tickets follow the person through their services only: a disabled leaver's assets go to
pending return with one return ticket (resolved when the last one is checked in); a joiner gets
one provisioning ticket listing their department's kit, with matching in-stock assets reserved.
"""
from __future__ import annotations

import logging
import random
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from ldap3.utils.dn import parse_dn
from sqlalchemy import func, select, update
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from itops.assets import services as assets_services
from itops.assets.choices import AssetKind
from itops.core import audit, crypto
from itops.core.auth import services as auth_services
from itops.core.auth.directory import DirectoryAccount
from itops.core.auth.models import User
from itops.core.database import insert_now, update_now, utcnow
from itops.core.errors import Conflict, DomainError, Forbidden, ValidationFailed, found
from itops.core.policy import Role, has_role
from itops.directory import planning, validation
from itops.directory.batching import JoinsInFlight, KnownGroups, LongRun, StepRun, is_join
from itops.directory.choices import (
    LIVE_STATES, MAX_ATTEMPTS, OPEN_ACTION_STATES, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS, ActionKind, ActionState,
    BatchKind, BatchState, PersonState,
)
from itops.directory.ldap import DesiredAccount, DirectoryUnreachable, NotSent, gateway
from itops.directory.models import (
    Batch, DirectoryAction, GroupMapping, KitReservation, KitTemplate, Person, UsernameInUse,
)
from itops.directory.planning import Target, Wanted
from itops.extensions import db
from itops.tickets import services as tickets_services
from itops.tickets.choices import Source

log = logging.getLogger(__name__)

TEXT_FIELDS = ("employee_number", "given_name", "family_name", "preferred_name", "department", "title", "location")
MOVE_FIELDS = ("department", "title", "manager_id")
INITIAL_PASSWORD_BYTES = 15
PENDING_RETURN = "pending_return"
KIT_RESERVATION_DAYS = 30
UNSET: Any = object()
APPROVED_BATCH_STATES = (BatchState.APPROVED.value, BatchState.APPLIED.value)
ONBOARD_TOGETHER = 500   # joiners written in one savepoint by one run of due steps (as many as tasks.CHUNK)
PERSON_ONBOARDED = ("dn", "state", "user_id", "provisioning_ticket_id")   # what onboarding changes on the person
JOINS_GRACE = timedelta(minutes=10)   # a step whose joins are out is due again after this if they went unrecorded
ACTION_OUTCOME = ("state", "done_at", "last_error", "next_attempt_at", "secret_encrypted", "result")  # set by _done


def settings():
    return current_app.config["ITOPS_DIRECTORY"]


def _actor_id(by) -> int | None:
    return by.id if isinstance(by, User) else None


# --- reading -----------------------------------------------------------------------------------

def get_person(person_id: int) -> Person:
    return found(db.session.get(Person, person_id), "person")


def find_by_employee_number(number: str) -> Person | None:
    return db.session.scalar(select(Person).where(Person.employee_number == (number or "").strip()))


def find_by_username(username: str) -> Person | None:
    """The person who has (or last had) this username, most recent first."""
    return db.session.scalar(select(Person).where(Person.username == (username or "").strip().lower())
                             .order_by(Person.id.desc()).limit(1))


def person_for_user(user: User) -> Person | None:
    """The HR record behind a sign-in, linked on first sight by username."""
    person = db.session.scalar(select(Person).where(Person.user_id == user.id))
    if person is None:
        person = db.session.scalar(select(Person).where(Person.username == user.username, Person.user_id.is_(None),
                                                        Person.state != PersonState.DELETED.value))
        if person is not None:
            person.user_id = user.id
    return person


def person_summary(person: Person) -> dict[str, Any]:
    """HR's record as plain values, for audit entries and change detection."""
    values = {name: getattr(person, name) for name in (*TEXT_FIELDS, "email", "state", "username", "manager_id",
                                                       "start_date", "end_date")}
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in values.items()}


def actions_of(person: Person) -> list[DirectoryAction]:
    return list(db.session.scalars(select(DirectoryAction).where(DirectoryAction.person_id == person.id)
                                   .order_by(DirectoryAction.id.desc())))


def get_action(action_id: int) -> DirectoryAction:
    return found(db.session.get(DirectoryAction, action_id), "directory action")


def get_batch(batch_id: int) -> Batch:
    return found(db.session.get(Batch, batch_id), "batch")


def batches_awaiting_approval() -> list[Batch]:
    return list(db.session.scalars(select(Batch).where(Batch.state == BatchState.AWAITING_APPROVAL.value)
                                   .order_by(Batch.created_at)))


def _open_action(person: Person, kind: ActionKind) -> DirectoryAction | None:
    return db.session.scalar(select(DirectoryAction).where(
        DirectoryAction.person_id == person.id, DirectoryAction.kind == kind.value,
        DirectoryAction.state.in_([s.value for s in OPEN_ACTION_STATES])).order_by(DirectoryAction.id.desc()))


def live_account_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Person).where(
        Person.state.in_([s.value for s in LIVE_STATES]))) or 0


# --- group mappings and kit templates (admin-managed) -----------------------------------------

def _require_admin(by) -> None:
    if isinstance(by, User) and not has_role(by, {Role.ADMIN}):
        raise Forbidden("Only administrators change group mappings, kit templates and guarded batches.")


def get_group_mapping(mapping_id: int) -> GroupMapping:
    return found(db.session.get(GroupMapping, mapping_id), "group mapping")


def group_mappings() -> list[GroupMapping]:
    return list(db.session.scalars(select(GroupMapping).order_by(GroupMapping.department, GroupMapping.title)))


def save_group_mapping(*, department: str | None, title: str | None, groups: list[str], by,
                       mapping: GroupMapping | None = None) -> GroupMapping:
    values = {"department": department, "title": title}
    department, title = validation.clean_text(values, "department"), validation.clean_text(values, "title")
    if not department and not title:
        raise ValidationFailed("A mapping names a department, a title or both.")
    names = sorted({validation.clean_text({"group": g}, "group") or "" for g in groups} - {""})
    if not names:
        raise ValidationFailed("List at least one directory group.", errors={"groups": ["Required."]})
    _require_admin(by)
    clash = db.session.scalar(select(GroupMapping.id).where(GroupMapping.department.is_(department) if department
                                                            is None else GroupMapping.department == department,
                                                            GroupMapping.title.is_(None) if title is None
                                                            else GroupMapping.title == title))
    if clash and (mapping is None or clash != mapping.id):
        raise Conflict("A mapping for this department and title already exists; edit it instead.")
    mapping = mapping or GroupMapping()
    mapping.department, mapping.title, mapping.groups = department, title, names
    db.session.add(mapping)
    db.session.flush()
    audit.record("directory.group_mapping", "group_mapping", mapping.id, actor=by,
                 summary=f"{department or '*'} / {title or '*'} -> {', '.join(names)}")
    return mapping


def delete_group_mapping(mapping: GroupMapping, *, by) -> None:
    _require_admin(by)
    audit.record("directory.group_mapping_delete", "group_mapping", mapping.id, actor=by,
                 summary=f"removed mapping {mapping.department or '*'} / {mapping.title or '*'}")
    db.session.delete(mapping)


def _norm(value: str | None) -> str:
    return (value or "").strip().casefold()


def groups_for(department: str | None, title: str | None, mappings: list[GroupMapping] | None = None) -> frozenset[str]:
    """The groups a department and title map to: every mapping whose department and title (where set) match."""
    found: set[str] = set()
    for mapping in group_mappings() if mappings is None else mappings:
        if mapping.department and _norm(mapping.department) != _norm(department):
            continue
        if mapping.title and _norm(mapping.title) != _norm(title):
            continue
        found.update(mapping.groups)
    return frozenset(found)


def managed_groups(mappings: list[GroupMapping] | None = None) -> frozenset[str]:
    return frozenset(g for m in (group_mappings() if mappings is None else mappings) for g in m.groups)


def mapping_warning(department: str | None, mappings: list[GroupMapping] | None = None) -> str | None:
    """Not fatal: a department no mapping names still gets an account, just no department groups."""
    if department and not any(m.department and _norm(m.department) == _norm(department)
                              for m in (group_mappings() if mappings is None else mappings)):
        return f"No group mapping names the department {department!r}: the account gets no department groups."
    return None


def kit_templates() -> list[KitTemplate]:
    return list(db.session.scalars(select(KitTemplate).order_by(KitTemplate.department)))


def save_kit_template(department: str, items: list[dict], *, by) -> KitTemplate:
    department = validation.clean_text({"department": department}, "department", required=True)
    cleaned = []
    for item in items:
        kind = (item.get("kind") or "").strip()
        if kind not in {k.value for k in AssetKind}:
            raise ValidationFailed(f"Unknown asset kind {kind!r} in the kit.", errors={"items": ["Unknown kind."]})
        cleaned.append({"kind": kind, "model": (item.get("model") or "").strip() or None})
    _require_admin(by)
    template = db.session.scalar(select(KitTemplate).where(KitTemplate.department == department)) or KitTemplate(
        department=department)
    template.items = cleaned
    db.session.add(template)
    db.session.flush()
    audit.record("directory.kit_template", "kit_template", template.id, actor=by,
                 summary=f"kit for {department}: " + ", ".join(i["model"] or i["kind"] for i in cleaned))
    return template


def kit_for(department: str | None) -> list[dict]:
    if not department:
        return []
    template = db.session.scalar(select(KitTemplate).where(func.lower(KitTemplate.department) == _norm(department)))
    return list(template.items) if template else []


# --- checking people's values ----------------------------------------------------------------

@dataclass
class PersonValues:
    """Checked values for a person; `manager` is a Person or None."""
    values: dict[str, Any]
    manager: Person | None
    warnings: list[str] = field(default_factory=list)


def resolve_manager(values: dict) -> Person | None:
    """The manager named by `manager_id`, `manager` (a Person) or `manager_employee_number`; unknown is an error."""
    if isinstance(values.get("manager"), Person):
        return values["manager"]
    if values.get("manager_id"):
        manager = db.session.get(Person, values["manager_id"])
    elif (values.get("manager_employee_number") or "").strip():
        manager = find_by_employee_number(values["manager_employee_number"])
    else:
        return None
    if manager is None or manager.state_enum == PersonState.DELETED:
        raise ValidationFailed("The manager does not exist (or has been deleted).",
                               errors={"manager": ["No such person."]})
    return manager


def check_reporting_line(person: Person | None, manager: Person | None) -> None:
    """Refuse a manager who is the person or reports to them, however indirectly."""
    seen, current = set(), manager
    while current is not None and current.id not in seen:
        if person is not None and current.id == person.id:
            raise ValidationFailed(f"{manager.display_name} cannot manage {person.display_name}: that makes a "
                                   "reporting loop.", errors={"manager": ["Reporting loop."]})
        seen.add(current.id)
        current = current.manager


def check_person_values(values: dict, *, person: Person | None = None, lookups: Lookups | None = None) -> PersonValues:
    """Clean and check a joiner's or an update's values; raises ValidationFailed naming the field."""
    merged = {} if person is None else {name: getattr(person, name) for name in (*TEXT_FIELDS, "email",
                                                                                  "start_date", "end_date")}
    merged.update({k: v for k, v in values.items() if v is not UNSET})
    cleaned: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        cleaned[name] = validation.clean_text(merged, name, required=name in ("employee_number", "given_name",
                                                                             "family_name"))
    cleaned["email"] = validation.clean_email(merged)
    cleaned["start_date"] = validation.clean_date(merged, "start_date", required=True)
    cleaned["end_date"] = validation.clean_date(merged, "end_date")
    validation.check_dates(cleaned["start_date"], cleaned["end_date"])
    if person is None or person.username is None:
        validation.username_base(cleaned["given_name"], cleaned["family_name"])  # refuses names with no ASCII form
    clash = (lookups.find if lookups else find_by_employee_number)(cleaned["employee_number"])
    if clash is not None and (person is None or clash.id != person.id):
        raise Conflict(f"Employee number {cleaned['employee_number']} already belongs to {clash.display_name}.")
    if any(k in values for k in ("manager", "manager_id", "manager_employee_number")):
        manager = resolve_manager(values)
    else:
        manager = person.manager if person is not None else None
    check_reporting_line(person, manager)
    warning = mapping_warning(cleaned["department"], lookups.mappings if lookups else None)
    return PersonValues(cleaned, manager, [warning] if warning else [])


# --- usernames ---------------------------------------------------------------------------------

def username_taken(username: str, *, today: date | None = None, check_directory: bool = True) -> bool:
    """In use or reserved in itops (a deleted person's, within the retention period), or in the directory."""
    today = today or date.today()
    row = db.session.get(UsernameInUse, username)
    if row is not None and (row.reserved_until is None or row.reserved_until >= today):
        return True
    if check_directory and current_app.config.get("ITOPS_LDAP") is not None:
        try:
            return gateway().username_exists(username)
        except DirectoryUnreachable:
            return False  # checked again when the account is created
    return False


class Lookups:
    """What a batch of people changes (an HR import) looks up again and again, read once: HR's records by
    employee number (people the batch makes are added as it goes), the group mappings, the mapped groups
    that exist, and, for a large batch, every username taken in itops or in the directory (one paged read
    instead of a search per candidate)."""

    # From this many people on, every username is read at once: a paged read of the whole directory costs
    # about what a few hundred one-name searches do.
    BULK_USERNAMES = 500

    def __init__(self, numbers, *, people_count: int = 0):
        numbers = sorted({(n or "").strip() for n in numbers} - {""})
        self.people: dict[str, Person | None] = dict.fromkeys(numbers)
        for start in range(0, len(numbers), 500):
            for person in db.session.scalars(select(Person).where(Person.employee_number.in_(
                    numbers[start:start + 500]))):
                self.people[person.employee_number] = person
        self.mappings = group_mappings()
        self.groups: KnownGroups | None = None
        self.taken: set[str] | None = None
        self.rows: set[str] = set()     # usernames with a usernames_in_use row (with `taken`)
        self.joiners: list[tuple[Person, object, str]] = []
        if people_count >= self.BULK_USERNAMES:
            today, self.taken = date.today(), set()
            for username, reserved_until in db.session.execute(select(UsernameInUse.username,
                                                                      UsernameInUse.reserved_until)):
                self.rows.add(username)
                if reserved_until is None or reserved_until >= today:  # as username_taken() decides
                    self.taken.add(username)
            if current_app.config.get("ITOPS_LDAP") is not None:
                try:
                    self.taken |= gateway().all_usernames()
                except DirectoryUnreachable:
                    self.taken = None  # asked one by one, as without a bulk read

    def record_later(self, person: Person, by, summary: str) -> None:
        """A joiner's audit entry, written by `flush` once the person has an id."""
        self.joiners.append((person, by, summary))

    def flush(self) -> None:
        """Write what the batch added so far with the joiners' audit entries, in one flush (ids given first,
        for SQLite to take each kind of row in one statement)."""
        # Without the unit of work (which writes a table that refers to itself a row at a time): people
        # first, managers before their reports, then their usernames and steps, which refer to them.
        insert_now(db.session, Person, _managers_first([o for o in db.session.new if isinstance(o, Person)]))
        for model in (UsernameInUse, DirectoryAction):
            insert_now(db.session, model, [o for o in db.session.new if isinstance(o, model)])
        db.session.flush()  # what else changed (a reserved username given out again, say)
        joiners, self.joiners = self.joiners, []
        audit.record_many([audit.values("directory.onboard", "person", person.id, actor=by, summary=summary)
                           for person, by, summary in joiners])

    def find(self, number: str | None) -> Person | None:
        number = (number or "").strip()
        if number not in self.people:
            self.people[number] = find_by_employee_number(number)
        return self.people[number]

    def added(self, person: Person) -> None:
        self.people[person.employee_number] = person
        if self.taken is not None and person.username:
            self.taken.add(person.username)
            self.rows.add(person.username)

    def username_taken(self, username: str) -> bool:
        return username_taken(username) if self.taken is None else username in self.taken

    def existing_groups(self, wanted: Wanted) -> set[str]:
        """As _existing_groups, each group asked about once per batch; a copy, for the planner to add to."""
        if self.groups is None:
            self.groups = KnownGroups(gateway())
        dns = [planning.group_dn(gateway(), name) for name in wanted.groups]
        return set(self.groups.existing(dns)) if dns else set()


def _managers_first(people: list[Person]) -> list[Person]:
    """New people ordered so that a manager among them comes before everyone who reports to them."""
    new, placed, ordered = {id(p) for p in people}, set(), []
    for person in people:
        chain, seen, current = [], set(), person
        while current is not None and id(current) in new and id(current) not in placed and id(current) not in seen:
            chain.append(current)
            seen.add(id(current))
            current = current.manager
        for link in reversed(chain):  # the topmost new manager first
            placed.add(id(link))
            ordered.append(link)
    return ordered


def _claim_username(person: Person, lookups: Lookups | None = None) -> str:
    taken = lookups.username_taken if lookups else username_taken
    username = validation.derive_username(person.given_name, person.family_name, taken)
    known_free = lookups is not None and lookups.taken is not None and username not in lookups.rows
    row = None if known_free else db.session.get(UsernameInUse, username)
    if row is None:
        row = UsernameInUse(username=username)
        db.session.add(row)
    row.person, row.reserved_until = person, None
    person.username = username
    return username


def _reserve_username(person: Person, today: date) -> None:
    row = db.session.get(UsernameInUse, person.username) if person.username else None
    if row is not None and row.person_id == person.id:
        row.reserved_until = today + timedelta(days=settings().username_retention_days)


def new_initial_password() -> str:
    """Random, shown once to HR (or handed over by a one-time link); never stored in clear or logged."""
    return secrets.token_urlsafe(INITIAL_PASSWORD_BYTES)


# --- scheduling actions ------------------------------------------------------------------------

def schedule_step(person: Person | None, kind: ActionKind, effective: date, *, by, planned: dict | None = None,
              secret: str | None = None, batch: Batch | None = None, target_dn: str | None = None,
              flush: bool = True) -> DirectoryAction:
    action = DirectoryAction(person=person, kind=kind.value, effective_date=effective, state=ActionState.PENDING.value,
                             planned=planned, secret_encrypted=crypto.encrypt(secret) if secret else None,
                             batch=batch, created_by_id=_actor_id(by), created_by_label=audit.actor_label(by),
                             target_dn=target_dn, attempts=0)
    db.session.add(action)
    if flush:
        db.session.flush()
    return action


def _cancel(action: DirectoryAction | None, *, by, reason: str) -> None:
    if action is None:
        return
    action.state = ActionState.CANCELLED.value
    action.secret_encrypted = None
    action.last_error = None
    audit.record("directory.action_cancel", "directory_action", action.id, actor=by,
                 summary=f"{action.kind} of {action.person.display_name if action.person else action.target_dn} "
                         f"cancelled: {reason}")


def _run_if_due(action: DirectoryAction, *, by, run_now: bool) -> None:
    """Steps already due run at once; if the directory is down they simply wait for run_due."""
    if run_now and action.effective_date <= date.today() and current_app.config.get("ITOPS_LDAP") is not None:
        run_step(action, now=utcnow(), by=by)


# --- joiner ------------------------------------------------------------------------------------

@dataclass
class OnboardResult:
    person: Person
    action: DirectoryAction
    username: str
    initial_password: str     # show it once; it is not kept in clear anywhere
    warnings: list[str]


def onboard(values: dict, *, by, run_now: bool = True, batch: Batch | None = None,
            lookups: Lookups | None = None) -> OnboardResult:
    """Record a joiner and schedule their account for the start date (at once if it has passed).

    `lookups`: a batch's (an import's) lookups, which the new person joins."""
    checked = check_person_values(values, lookups=lookups)
    person = Person(**checked.values, manager=checked.manager, state=PersonState.PENDING.value,
                    external_id=(values.get("external_id") or None))
    db.session.add(person)
    username = _claim_username(person, lookups)
    if lookups is not None:
        lookups.added(person)
    password = new_initial_password()
    # One flush writes the person, their username and the step; in a batch, one flush for many people.
    action = schedule_step(person, ActionKind.ONBOARD, checked.values["start_date"], by=by, secret=password, batch=batch,
                           flush=lookups is None)
    summary = (f"joiner {person.display_name} ({person.employee_number}) as {username}, "
               f"starting {person.start_date}")
    if lookups is None:
        audit.record("directory.onboard", "person", person.id, actor=by, summary=summary)
    else:
        lookups.record_later(person, by, summary)
    if person.end_date:
        schedule_step(person, ActionKind.OFFBOARD, person.end_date, by=by, batch=batch, flush=lookups is None)
    _run_if_due(action, by=by, run_now=run_now)
    return OnboardResult(person, action, username, password, checked.warnings)


def preview_onboard(values: dict) -> Plan:
    """The dry run of `onboard`: what it would write in itops and send to the directory, writing nothing."""
    checked = check_person_values(values)
    draft = Person(**checked.values, manager=checked.manager, state=PersonState.PENDING.value)
    draft.username = validation.derive_username(draft.given_name, draft.family_name, username_taken)
    plan = Plan(warnings=list(checked.warnings))
    plan.itops.append(f"create person {draft.display_name} ({draft.employee_number}), username {draft.username}")
    when = "at once" if draft.start_date <= date.today() else f"on {draft.start_date}"
    plan.itops.append(f"create the account {when}")
    wanted = wanted_state(draft, Target.ACTIVE, password="(new)")
    plan.ldap = [op.as_dict() for op in planning.plan(gateway(), wanted, None, _existing_groups(wanted))]
    kit = kit_for(draft.department)
    plan.itops.append("open a provisioning ticket" + (": " + ", ".join(i["model"] or i["kind"] for i in kit)
                                                      if kit else " (no kit template for the department)"))
    return plan


def preview_record(person: Person | None, values: dict, *, manager: Person | None,
                   lookups: Lookups | None = None) -> list[dict]:
    """The LDAP operations HR's new or changed record leads to (each on its date), for batch previews.

    A new person's username is derived as onboarding would, without reserving it.
    """
    draft = Person(**{name: values.get(name) for name in (*TEXT_FIELDS, "email", "start_date", "end_date")},
                   manager=manager)
    draft.username = person.username if person is not None else validation.derive_username(
        draft.given_name, draft.family_name, lookups.username_taken if lookups else username_taken)
    account = gateway().find_account(draft.username) if person is not None and person.username else None
    if person is not None and account is None and person.state_enum == PersonState.PENDING:
        return []  # not started: the account is made on the start date, as the joiner's own preview shows
    leaving_now = draft.end_date is not None and draft.end_date <= date.today()
    wanted = wanted_state(draft, Target.DISABLED if leaving_now else Target.ACTIVE,
                          password="(new)" if account is None else None, mappings=lookups and lookups.mappings)
    existing = lookups.existing_groups(wanted) if lookups else _existing_groups(wanted)
    return [op.as_dict() for op in planning.plan(gateway(), wanted, account, existing)]


# --- corrections and movers ------------------------------------------------------------------

def update_person(person: Person, values: dict, *, by, run_now: bool = True) -> Person:
    """Correct HR's record (names, email, location, preferred name, dates); the account follows at once.

    Department, title and manager are a move (see `move`), effective on a date.
    """
    if person.state_enum == PersonState.DELETED:
        raise Conflict(f"{person.display_name} has been deleted.")
    checked = check_person_values({k: v for k, v in values.items() if k not in MOVE_FIELDS}, person=person)
    changed = {}
    for name in ("given_name", "family_name", "preferred_name", "email", "location", "employee_number",
                 "start_date"):
        if getattr(person, name) != checked.values[name]:
            changed[name] = [str(getattr(person, name)), str(checked.values[name])]
            setattr(person, name, checked.values[name])
    if not changed:
        return person
    audit.record("directory.update", "person", person.id, actor=by, summary=f"{person.display_name}: "
                 + ", ".join(sorted(changed)), before={k: v[0] for k, v in changed.items()},
                 after={k: v[1] for k, v in changed.items()})
    onboarding = _open_action(person, ActionKind.ONBOARD)
    if onboarding is not None and "start_date" in changed:
        onboarding.effective_date = person.start_date
    if person.state_enum in LIVE_STATES:
        _run_if_due(schedule_step(person, ActionKind.MOVE, date.today(), by=by, planned={}), by=by, run_now=run_now)
    return person


def move(person: Person, *, effective: date, by, department: Any = UNSET, title: Any = UNSET, manager: Any = UNSET,
         run_now: bool = True, batch: Batch | None = None) -> DirectoryAction:
    """A change of department, title or manager on `effective`; groups and attributes follow then."""
    if person.state_enum not in (PersonState.PENDING, *LIVE_STATES):
        raise Conflict(f"{person.display_name} is {person.state}; only current staff move.")
    planned: dict[str, Any] = {}
    if department is not UNSET:
        planned["department"] = validation.clean_text({"department": department}, "department")
    if title is not UNSET:
        planned["title"] = validation.clean_text({"title": title}, "title")
    if manager is not UNSET:
        new_manager = resolve_manager({"manager": manager} if isinstance(manager, Person) else
                                      {"manager_id": manager} if isinstance(manager, int) else
                                      {"manager_employee_number": manager or ""})
        check_reporting_line(person, new_manager)
        planned["manager_id"] = new_manager.id if new_manager else None
    planned = {k: v for k, v in planned.items() if getattr(person, k) != v}
    if not planned:
        raise ValidationFailed("Nothing changes: the department, title and manager are already so.")
    action = schedule_step(person, ActionKind.MOVE, effective, by=by, planned=planned, batch=batch)
    audit.record("directory.move", "person", person.id, actor=by,
                 summary=f"{person.display_name} moves on {effective}: " + ", ".join(f"{k}={v}" for k, v in
                                                                                   planned.items()))
    _run_if_due(action, by=by, run_now=run_now)
    return action


# --- leavers -----------------------------------------------------------------------------------

def offboard(person: Person, *, end_date: date, by, run_now: bool = True, batch: Batch | None = None) -> DirectoryAction:
    """Set the end date: the person is leaving and their account is disabled on that date.

    Setting it again moves the one scheduled step rather than adding another.
    """
    state = person.state_enum
    if state not in (PersonState.PENDING, *LIVE_STATES):
        raise Conflict(f"{person.display_name} is already {state.label.lower()}.")
    validation.check_dates(person.start_date, end_date)
    person.end_date = end_date
    if state == PersonState.ACTIVE:
        person.state = PersonState.LEAVING.value
    action = _open_action(person, ActionKind.OFFBOARD)
    if action is None:
        action = schedule_step(person, ActionKind.OFFBOARD, end_date, by=by, batch=batch)
    else:
        action.effective_date = end_date
        action.batch = batch or action.batch
    audit.record("directory.offboard", "person", person.id, actor=by,
                 summary=f"{person.display_name} leaves on {end_date}")
    _run_if_due(action, by=by, run_now=run_now)
    return action


def cancel_offboard(person: Person, *, by) -> Person:
    """HR changed their mind before the end date: the person stays."""
    action = _open_action(person, ActionKind.OFFBOARD)
    if action is None:
        raise Conflict(f"{person.display_name} has no leaving date to cancel"
                       + (" (the account is already disabled: restore it instead)." if
                          person.state_enum == PersonState.DISABLED else "."))
    _cancel(action, by=by, reason="the leaver was cancelled")
    person.end_date = None
    if person.state_enum == PersonState.LEAVING:
        person.state = PersonState.ACTIVE.value
    audit.record("directory.offboard_cancel", "person", person.id, actor=by,
                 summary=f"{person.display_name} no longer leaves")
    return person


@dataclass
class RestoreResult:
    person: Person
    action: DirectoryAction
    initial_password: str


def restore(person: Person, *, by, run_now: bool = True) -> RestoreResult:
    """Bring a disabled account back within the grace period, with a new initial password."""
    if person.state_enum != PersonState.DISABLED:
        raise Conflict(f"{person.display_name} is {person.state}; only a disabled account can be restored.")
    grace_end = (person.disabled_at or utcnow()) + timedelta(days=settings().grace_days)
    if utcnow() > grace_end:
        raise Conflict(f"The grace period for {person.display_name} ended on {grace_end:%Y-%m-%d}; "
                       "onboard them again instead.")
    _cancel(_open_action(person, ActionKind.DELETE), by=by, reason="the account was restored")
    existing = _open_action(person, ActionKind.RESTORE)
    password = new_initial_password()
    if existing is not None:
        existing.secret_encrypted = crypto.encrypt(password)
        action = existing
    else:
        action = schedule_step(person, ActionKind.RESTORE, date.today(), by=by, secret=password)
    person.end_date = None
    audit.record("directory.restore", "person", person.id, actor=by, summary=f"{person.display_name} restored")
    _run_if_due(action, by=by, run_now=run_now)
    return RestoreResult(person, action, password)


# --- dry runs ----------------------------------------------------------------------------------

@dataclass
class Plan:
    """What a step or batch would do: LDAP operations (passwords masked) and itops changes, in order."""
    ldap: list[dict] = field(default_factory=list)
    itops: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: Plan) -> None:
        self.ldap += other.ldap
        self.itops += other.itops
        self.warnings += other.warnings


def preview_action(action: DirectoryAction) -> Plan:
    """The dry run of one step against the directory as it is now; nothing is written anywhere."""
    person = action.person
    plan = Plan()
    if person is not None and action.planned:
        plan.itops.append(f"{person.display_name}: " + ", ".join(f"{k} -> {v}" for k, v in action.planned.items()))
    wanted, account = _wanted_for(action, password="(new)" if action.secret_encrypted else None, apply_planned=False)
    plan.ldap = [op.as_dict() for op in planning.plan(gateway(), wanted, account, _existing_groups(wanted))]
    plan.itops += _itops_effects(action)
    return plan


def preview_due(*, today: date | None = None) -> Plan:
    """The dry run of the next `run_due` (without the guard's hold)."""
    plan = Plan()
    for action in _due_actions(utcnow(), today or date.today(), limit=None):
        plan.extend(preview_action(action))
    return plan


def _itops_effects(action: DirectoryAction) -> list[str]:
    person, kind = action.person, action.kind_enum
    if person is None:
        return [f"disable the orphan account {action.target_dn}"]
    name = person.display_name
    if kind == ActionKind.ONBOARD:
        kit = kit_for(person.department)
        return [f"{name} becomes active", "open a provisioning ticket listing "
                + (", ".join(i["model"] or i["kind"] for i in kit) if kit else "no kit (no template)")]
    if kind in (ActionKind.OFFBOARD, ActionKind.DISABLE):
        held = assets_services.assets_held_by(person.user) if person.user else []
        effects = [f"{name} becomes disabled; sessions and API tokens revoked",
                   f"delete the account after {settings().grace_days} days"]
        if held:
            effects.append("set to pending return and list on one return ticket: " + ", ".join(a.tag for a in held))
        return effects
    if kind == ActionKind.DELETE:
        return [f"{name} becomes deleted; username kept from reuse for {settings().username_retention_days} days"]
    if kind == ActionKind.RESTORE:
        return [f"{name} becomes active again; sign-in re-enabled"]
    return [f"{name}: groups and attributes follow"]


# --- the mass-change guard ---------------------------------------------------------------------

def guard_trips(removals: int, live: int | None = None) -> bool:
    """More accounts disabled or deleted at once than ITOPS_DIRECTORY_GUARD_ACCOUNTS, or (for two or more)
    a larger share of the live accounts than ITOPS_DIRECTORY_GUARD_PERCENT."""
    config = settings()
    live = live_account_count() if live is None else live
    if removals > config.guard_accounts:
        return True
    return removals > 1 and removals * 100 > config.guard_percent * max(live, 1)


def hold_batch(kind: BatchKind, summary: str, *, removals: int, by, payload: dict | None = None) -> Batch:
    batch = Batch(kind=kind.value, state=BatchState.AWAITING_APPROVAL.value, summary=summary[:500], removals=removals,
                  payload=payload, created_by_id=_actor_id(by), created_by_label=audit.actor_label(by))
    db.session.add(batch)
    db.session.flush()
    audit.record("directory.batch_held", "directory_batch", batch.id, actor=by,
                 summary=f"held for approval: {summary} ({removals} accounts disabled or deleted)")
    return batch


def _decide(batch: Batch, decision: BatchState, *, by) -> None:
    _require_admin(by)
    if batch.state != BatchState.AWAITING_APPROVAL.value:
        raise Conflict(f"This batch is {batch.state.replace('_', ' ')}, not awaiting approval.")
    batch.state, batch.decided_by_label, batch.decided_at = decision.value, audit.actor_label(by), utcnow()


def approve_batch(batch: Batch, *, by) -> Batch:
    """An administrator lets a held batch go ahead; its held steps become due, a held import is applied."""
    _decide(batch, BatchState.APPROVED, by=by)
    db.session.execute(update(DirectoryAction).where(DirectoryAction.batch_id == batch.id,
                                                     DirectoryAction.state == ActionState.HELD.value)
                       .values(state=ActionState.PENDING.value, next_attempt_at=None))
    if batch.kind == BatchKind.CSV_IMPORT.value and batch.payload:
        from itops.directory import csv_io  # csv_io builds on this module

        csv_io.apply_rows(batch.payload["rows"], by=by, batch=batch)
        batch.state = BatchState.APPLIED.value
    elif batch.kind == BatchKind.RECONCILE.value and batch.payload:
        from itops.directory import reconcile  # reconcile builds on this module

        report = reconcile.reconcile()
        still_there = set(batch.payload["keys"]) & {finding.key for finding in report.findings}
        reconcile.apply(report, still_there, by=by, approved=True)
        batch.state = BatchState.APPLIED.value
    audit.record("directory.batch_approve", "directory_batch", batch.id, actor=by, summary=f"approved: {batch.summary}")
    return batch


def reject_batch(batch: Batch, *, by) -> Batch:
    """The held changes were a mistake: cancel its steps; leavers in it stay (their end date is cleared)."""
    _decide(batch, BatchState.REJECTED, by=by)
    held = db.session.scalars(select(DirectoryAction).where(DirectoryAction.batch_id == batch.id,
                                                            DirectoryAction.state == ActionState.HELD.value))
    for action in held:
        _cancel(action, by=by, reason="its batch was rejected")
        person = action.person
        if person is not None and action.kind_enum == ActionKind.OFFBOARD:
            person.end_date = None
            if person.state_enum == PersonState.LEAVING:
                person.state = PersonState.ACTIVE.value
    audit.record("directory.batch_reject", "directory_batch", batch.id, actor=by, summary=f"rejected: {batch.summary}")
    return batch


# --- running due steps -------------------------------------------------------------------------

@dataclass
class RunSummary:
    done: int = 0
    failed: int = 0
    retrying: int = 0
    held: int = 0
    unreachable: bool = False
    held_batch_id: int | None = None

    def as_dict(self) -> dict:
        return {"done": self.done, "failed": self.failed, "retrying": self.retrying, "held": self.held,
                "directory_unreachable": self.unreachable}


def _due_query(now: datetime, today: date):
    return (select(DirectoryAction)
            .where(DirectoryAction.state == ActionState.PENDING.value, DirectoryAction.effective_date <= today,
                   (DirectoryAction.next_attempt_at.is_(None)) | (DirectoryAction.next_attempt_at <= now))
            .order_by(DirectoryAction.effective_date, DirectoryAction.id))


def _due_actions(now: datetime, today: date, limit: int | None) -> list[DirectoryAction]:
    # With what joiners' steps read: the person's manager (their account names them) and who asked.
    query = _due_query(now, today).options(selectinload(DirectoryAction.person).selectinload(Person.manager),
                                           selectinload(DirectoryAction.created_by))
    if limit:
        query = query.limit(limit)
    # Two runners at once (scheduler and a CLI run) must not take the same step: PostgreSQL skips
    # rows another transaction holds; SQLite has one writer at a time anyway.
    return list(db.session.scalars(query.with_for_update(skip_locked=True)))


def count_due(*, now: datetime | None = None, today: date | None = None) -> int:
    return db.session.scalar(select(func.count()).select_from(_due_query(now or utcnow(), today or date.today())
                                                              .order_by(None).subquery())) or 0


def _hold_unapproved_removals(actions: list[DirectoryAction], *, by) -> tuple[list[DirectoryAction], Batch | None]:
    """The guard for a run: unapproved disables and deletes over the limit wait, all of them, for an admin."""
    removals = [a for a in actions if a.kind_enum.removes_access
                and (a.batch is None or a.batch.state not in APPROVED_BATCH_STATES)]
    if not removals or not guard_trips(len(removals)):
        return actions, None
    batch = hold_batch(BatchKind.RUN_DUE, f"{len(removals)} accounts due to be disabled or deleted",
                       removals=len(removals), by=by)
    for action in removals:
        action.state, action.batch = ActionState.HELD.value, batch
    held = set(id(a) for a in removals)
    return [a for a in actions if id(a) not in held], batch


def run_due(*, now: datetime | None = None, today: date | None = None, limit: int | None = None, progress=None,
            by="system", long_run: LongRun | None = None) -> RunSummary:
    """Run the steps that are due. The scheduler and `flask itops directory run-due` call this.

    A step the directory cannot take now (unreachable) is retried later with backoff, and the run
    stops there: the rest wait for the next run, untouched. Each step's itops changes are kept or
    undone with it (a savepoint), so nothing is half-written.

    A long run (tasks.run_due_steps) runs this per chunk with what its chunks share (`long_run`): then the
    previous chunk's joins are recorded at the end of this one, this chunk's go out while the next one runs
    (its steps are committed waiting for them), and the next chunk's accounts are searched for meanwhile.
    """
    gateway()  # no directory configured: refuse the run rather than fail every step
    now, today = now or utcnow(), today or date.today()
    summary = RunSummary()
    actions, batch = _hold_unapproved_removals(_due_actions(now, today, limit), by=by)
    if batch is not None:
        summary.held, summary.held_batch_id = batch.removals, batch.id
    if progress is not None:
        progress.set_total(len(actions))
    run = StepRun(gateway(), group_mappings(), processes=long_run and long_run.writers,
                  groups=long_run and long_run.groups)
    _read_ahead(run, actions, long_run.accounts.take() if long_run else (set(), {}))
    for action in actions:  # every attempt counts, written at once; those the run does not reach give it back
        action.attempts += 1
    update_now(db.session, DirectoryAction, actions, ("attempts",))
    reached = 0
    try:
        for segment in _segments(actions):
            if len(segment) > 1 and _onboard_together(segment, run, now=now, by=by):
                reached += len(segment)
                summary.done += len(segment)
                if progress is not None:
                    progress.advance(len(segment), message=f"{len(segment)} joiners' accounts created")
                continue
            for action in segment:  # one by one: other steps, and joiners who could not go together
                reached += 1
                if action.kind_enum != ActionKind.ONBOARD:  # what follows may read or change those groups
                    if long_run is not None:
                        record_joins(long_run.joins, summary)
                    _send_joins(run, summary, now)
                outcome = run_step(action, now=now, by=by, run=run)
                setattr(summary, outcome, getattr(summary, outcome) + 1)
                if progress is not None:
                    who = action.person.username if action.person else action.target_dn
                    progress.advance(message=f"{action.kind} {who}: {outcome}")
                if outcome == "retrying" and action.last_error and action.last_error.startswith("unreachable:"):
                    summary.unreachable = True
                    break
            if summary.unreachable:
                break
        if long_run is None:
            _send_joins(run, summary, now)
        else:
            record_joins(long_run.joins, summary)
            _send_joins_later(run, long_run.joins, now)
            if not summary.unreachable:
                long_run.accounts.start(_next_joiners(now, today, limit))
    finally:
        run.close()
        for action in actions[reached:]:
            action.attempts -= 1
    return summary


def _segments(actions: list[DirectoryAction]):
    """The run's steps in order: consecutive joiners together (up to ONBOARD_TOGETHER), every other step alone."""
    together: list[DirectoryAction] = []
    for action in actions:
        if action.kind_enum == ActionKind.ONBOARD and len(together) < ONBOARD_TOGETHER:
            together.append(action)
            continue
        if together:
            yield together
        together = [action] if action.kind_enum == ActionKind.ONBOARD else []
        if not together:
            yield [action]
    if together:
        yield together


def _onboard_together(actions: list[DirectoryAction], run: StepRun, *, now: datetime, by) -> bool:
    """Joiners in one go, in one savepoint: every account's operations are queued on the run's writer (or its
    writer processes) while the itops side (users, provisioning tickets, audit entries) is written in a few statements for
    all of them. False when they cannot all be done this way (a refusal, a lost directory, a joiner no
    longer pending, a bug): then nothing of it is kept, and the caller runs the same steps one by one,
    which converge on whatever was sent (an account that was added is found and left as it is)."""
    if any(a.person is None or a.person.state_enum not in (PersonState.PENDING, *LIVE_STATES) for a in actions):
        return False
    savepoint = db.session.begin_nested()
    run.start_batch(len(actions))
    users_before = dict(run.users or {})  # the users this batch makes are gone again if it is undone
    sent = []
    try:
        with db.session.no_autoflush:
            planned = []
            for action in actions:
                password = crypto.decrypt(action.secret_encrypted) if action.secret_encrypted else \
                    new_initial_password()
                wanted, account = _wanted_for(action, password=password, apply_planned=True, run=run)
                operations = planning.plan(gateway(), wanted, account, _existing_groups(wanted, run))
                sent.append(run.submit(operations))
                # Marked at once: a later joiner's account names this one as its manager.
                planned.append((action, wanted, operations, _mark_onboarded(action.person)))
                _taken_as_written(action.person, PERSON_ONBOARDED)  # by update_now, with the rest
            run.send_queued()
            users = _link_users([(action.person, wanted, dn) for action, wanted, _, dn in planned], run)
            _open_provisioning_tickets([(action.person, action, user) for (action, *_), user in zip(planned, users)],
                                       run=run)
            entries = []
            for (action, _, operations, _), user in zip(planned, users):
                entries.append(_record_onboarded(action.person, user, by=by))
                action.result = {"ldap": [op.as_dict() for op in operations]}
                _done(action, now, keep_secret=any(is_join(op) for op in operations))
            audit.record_many(entries)
            update_now(db.session, Person, [action.person for action in actions], PERSON_ONBOARDED)
            update_now(db.session, DirectoryAction, actions, ACTION_OUTCOME)
        db.session.flush()
        run.help_out()
        for future in sent:
            if future is not None:
                future.result()
    except BaseException as exc:
        run.drop_queued()
        for future in sent:
            if future is not None:
                future.exception()  # wait for what was sent
        savepoint.rollback()
        run.failed()
        run.users = users_before
        if not isinstance(exc, Exception):
            raise
        if not isinstance(exc, (DomainError, DirectoryUnreachable, NotSent)):
            log.exception("%d joiners could not be onboarded together; running them one by one", len(actions))
        return False
    savepoint.commit()
    for action, _, operations, _ in planned:
        run.keep_joins(action, operations)
    return True


def _taken_as_written(person: Person, columns: tuple[str, ...]) -> None:
    """The session takes these values as the row's, so its flush does not write them again."""
    for name in columns:
        set_committed_value(person, name, getattr(person, name))


def _next_joiners(now: datetime, today: date, limit: int | None) -> list[str]:
    """The usernames of the joiners likely due in the next chunk (those due now, this chunk's done)."""
    query = (_due_query(now, today).where(DirectoryAction.kind == ActionKind.ONBOARD.value)
             .join(DirectoryAction.person).with_only_columns(Person.username))
    return list(db.session.scalars(query.limit(limit) if limit else query))


def _read_ahead(run: StepRun, actions: list[DirectoryAction], searched: tuple[set[str], dict]) -> None:
    """The run's joiners' accounts (a directory search per 100; `searched`: names already searched for, and
    what was found) and itops users (a query per 500), which their steps would otherwise look up one by one."""
    names = sorted({a.person.username for a in actions if a.person is not None and a.person.username
                    and a.kind_enum == ActionKind.ONBOARD})
    covered, found = searched  # usernames are lower case, as find_accounts keys them
    run.accounts = {name: found[name] for name in names if name in covered and name in found}
    missing = [name for name in names if name not in covered]
    try:
        if missing:
            run.accounts.update(run.gateway.find_accounts(missing))
    except DirectoryUnreachable:
        pass  # each step reads its own, and waits for its retry as usual
    run.users = dict.fromkeys(names)
    for start in range(0, len(names), 500):
        for user in db.session.scalars(select(User).where(User.username.in_(names[start:start + 500]))):
            run.users[user.username] = user


def _send_joins(run: StepRun, summary: RunSummary, now: datetime) -> None:
    """The run's waiting group joins, one modify per group. A step whose joins failed is not done after all:
    it waits for its retry (or fails), keeping its initial password, and converges then."""
    waiting = run.waiting_steps()
    failed = run.send_joins()
    joined = [action for action in waiting if action not in failed]
    for action in joined:
        action.secret_encrypted = None
    update_now(db.session, DirectoryAction, joined, ("secret_encrypted",))
    for action in waiting:
        if action in failed:
            _joins_failed(action, failed[action], summary, now)


def _joins_failed(action: DirectoryAction, error: Exception, summary: RunSummary, now: datetime) -> None:
    """The step is not done after all: it waits for its retry (or fails), keeping its initial password."""
    action.state, action.done_at = ActionState.PENDING.value, None
    if isinstance(error, DirectoryUnreachable):
        outcome = _retry_later(action, now, f"unreachable: {error.detail}")
        summary.unreachable = True
    else:
        outcome = _fail(action, f"joining its groups: {error.detail}")
    summary.done -= 1
    setattr(summary, outcome, getattr(summary, outcome) + 1)


def _send_joins_later(run: StepRun, in_flight: JoinsInFlight, now: datetime) -> None:
    """Hand the run's waiting joins to `in_flight`, which sends them while the next chunk runs. Their steps
    are written waiting (pending, due again after JOINS_GRACE): should this process stop before their
    outcome is recorded, they run again then and converge (the account is there; the missing joins are
    planned again)."""
    waiting = run.waiting_steps()
    joins = {group: [(action.id, member) for action, member in members]
             for group, members in run.take_joins().items()}
    for action in waiting:
        action.state, action.done_at, action.next_attempt_at = ActionState.PENDING.value, None, now + JOINS_GRACE
    update_now(db.session, DirectoryAction, waiting, ("state", "done_at", "next_attempt_at"))
    in_flight.send(joins, [action.id for action in waiting], now)


def record_joins(in_flight: JoinsInFlight, summary: RunSummary) -> None:
    """Wait for the joins `in_flight` sent last and record them: their steps are done (their initial passwords
    dropped), or wait for a retry. A step changed meanwhile (cancelled, say) is left as it is."""
    step_ids, failed, when = in_flight.outcome()
    joined = [step_id for step_id in step_ids if step_id not in failed]
    for start in range(0, len(joined), 500):
        db.session.execute(update(DirectoryAction)
                           .where(DirectoryAction.id.in_(joined[start:start + 500]),
                                  DirectoryAction.state == ActionState.PENDING.value)
                           .values(state=ActionState.DONE.value, done_at=when, next_attempt_at=None,
                                   secret_encrypted=None)
                           .execution_options(synchronize_session="fetch"))
    for step_id, error in failed.items():
        action = db.session.get(DirectoryAction, step_id)
        if action is not None and action.state == ActionState.PENDING.value:
            _joins_failed(action, error, summary, when)


def retry_step(action: DirectoryAction, *, by) -> DirectoryAction:
    """Put a failed (or waiting) step back in line with fresh attempts, and run it now if it is due."""
    if action.state_enum not in (ActionState.FAILED, ActionState.PENDING):
        raise Conflict(f"This step is {action.state}; only a failed or waiting step is retried.")
    action.state, action.next_attempt_at, action.attempts = ActionState.PENDING.value, None, 0
    audit.record("directory.action_retry", "directory_action", action.id, actor=by,
                 summary=f"{action.kind} of {action.person.display_name if action.person else action.target_dn} "
                         "retried by hand")
    _run_if_due(action, by=by, run_now=True)
    return action


def _retry_delay(attempts: int) -> timedelta:
    seconds = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))


def run_step(action: DirectoryAction, *, now: datetime, by, run: StepRun | None = None) -> str:
    """Run one step in a savepoint: 'done', 'retrying' or 'failed'.

    In a run of due steps (`run`), the step's directory writes go on while its itops work does; the step
    waits for them before its savepoint is released, and their error, if any, is the step's.
    """
    if run is None:  # a run counts its steps' attempts at its start
        action.attempts += 1  # written before the savepoint, so a failed attempt still counts
        db.session.flush()
    savepoint = db.session.begin_nested()
    try:
        try:
            _execute(action, now=now, by=by, run=run)
        finally:
            if run is not None:
                run.finish()  # raises the directory's error, which outranks the itops work's
        if run is not None and run.result is not None:
            action.result, run.result = run.result, None
        _done(action, now, keep_secret=run is not None and run.waits_for_joins(action))
        savepoint.commit()
    except BaseException as exc:
        if run is not None:
            run.failed()
        savepoint.rollback()
        if isinstance(exc, DirectoryUnreachable):
            return _retry_later(action, now, f"unreachable: {exc.detail}")
        if isinstance(exc, DomainError):  # refused by the directory, or by the rules
            return _fail(action, exc.detail)
        if not isinstance(exc, Exception):
            raise
        # a bug or a database hiccup: keep the step, try again later
        log.exception("directory action %s (%s) failed unexpectedly", action.id, action.kind)
        return _retry_later(action, now, f"error: {type(exc).__name__}: {exc}"[:2000])
    return "done"


def _done(action: DirectoryAction, now: datetime, *, keep_secret: bool) -> None:
    """Inside the step's savepoint, so that it is written with the step's last changes (and undone with them)."""
    action.state, action.done_at, action.last_error, action.next_attempt_at = (ActionState.DONE.value, now, None,
                                                                               None)
    if not keep_secret:
        action.secret_encrypted = None  # else once its group joins went through (_send_joins)


def _retry_later(action: DirectoryAction, now: datetime, error: str) -> str:
    action.last_error = error
    if action.attempts >= MAX_ATTEMPTS:
        return _fail(action, f"gave up after {action.attempts} attempts: {error}")
    action.next_attempt_at = now + _retry_delay(action.attempts)
    log.warning("directory action %s (%s) will be retried at %s: %s", action.id, action.kind,
                action.next_attempt_at, error)
    return "retrying"


def _fail(action: DirectoryAction, error: str) -> str:
    action.state, action.last_error, action.next_attempt_at = ActionState.FAILED.value, error[:2000], None
    audit.record("directory.action_failed", "directory_action", action.id, actor="system",
                 summary=f"{action.kind} of {action.person.display_name if action.person else action.target_dn} "
                         f"failed: {error}")
    return "failed"


# --- converging one step -------------------------------------------------------------------------

def desired_account(person: Person) -> DesiredAccount:
    manager = person.manager
    manager_dn = manager.dn if manager is not None and manager.state_enum in LIVE_STATES else None
    return DesiredAccount(username=person.username, given_name=person.preferred_name or person.given_name,
                          family_name=person.family_name, display_name=person.display_name, email=person.email,
                          employee_number=person.employee_number, department=person.department, title=person.title,
                          location=person.location, manager_dn=manager_dn)


def wanted_state(person: Person, target: Target, *, password: str | None = None,
            mappings: list[GroupMapping] | None = None) -> Wanted:
    if target is not Target.ACTIVE:
        return Wanted(target, None)
    mappings = group_mappings() if mappings is None else mappings
    return Wanted(Target.ACTIVE, desired_account(person), groups_for(person.department, person.title, mappings),
                  managed_groups(mappings), password)


TARGET_OF = {ActionKind.ONBOARD: Target.ACTIVE, ActionKind.MOVE: Target.ACTIVE, ActionKind.RESTORE: Target.ACTIVE,
             ActionKind.OFFBOARD: Target.DISABLED, ActionKind.DISABLE: Target.DISABLED,
             ActionKind.DELETE: Target.ABSENT}


def _wanted_for(action: DirectoryAction, *, password: str | None, apply_planned: bool, run: StepRun | None = None):
    """(Wanted, the account as read now) for a step; the mover's new values are applied only when running."""
    gw = gateway()
    person = action.person
    if person is None:
        account = _orphan_account(action.target_dn)
        return Wanted(Target.DISABLED, None), account
    if action.planned:
        if apply_planned:
            for name, value in action.planned.items():
                setattr(person, name, value)
            db.session.flush()
            if "manager_id" in action.planned:
                db.session.expire(person, ["manager"])  # loaded with the step, before the move
        else:
            person = _draft_with(person, action.planned)
    if run is not None and person.username in run.accounts:
        account = run.accounts.pop(person.username)  # read for the run; a later step of theirs reads again
    else:
        account = gw.find_account(person.username) if person.username else None
    return wanted_state(person, TARGET_OF[action.kind_enum], password=password,
                        mappings=run.mappings if run is not None else None), account


def _draft_with(person: Person, planned: dict) -> Person:
    """A detached copy of the person with a move applied, for previews."""
    draft = Person(**{name: getattr(person, name) for name in (*TEXT_FIELDS, "email", "start_date", "end_date",
                                                               "username", "manager_id")})
    for name, value in planned.items():
        setattr(draft, name, value)
    draft.manager = db.session.get(Person, draft.manager_id) if draft.manager_id else None
    return draft


def _orphan_account(dn: str | None):
    username = parse_dn(dn)[0][1] if dn else ""
    return gateway().find_account(username) if username else None


def _existing_groups(wanted: Wanted, run: StepRun | None = None) -> set[str] | None:
    if not wanted.groups:
        return set()
    dns = [planning.group_dn(gateway(), name) for name in wanted.groups]
    return gateway().existing_groups(dns) if run is None else run.existing_groups(dns)


def _converge(action: DirectoryAction, *, password: str | None, run: StepRun | None = None) -> Wanted:
    """Plan the step against the account as it is and send the operations. In a run of due steps they go
    to its writer (joiners' group joins wait to be sent together) and are done when `run.finish` returns."""
    wanted, account = _wanted_for(action, password=password, apply_planned=True, run=run)
    operations = planning.plan(gateway(), wanted, account, _existing_groups(wanted, run))
    if run is None:
        action.result = {"ldap": [op.as_dict() for op in gateway().apply(operations)]}
    else:  # recorded by run_step with the step's outcome, in one write
        run.result = {"ldap": [op.as_dict() for op in
                               run.send(action, operations, defer_joins=action.kind_enum == ActionKind.ONBOARD)]}
    return wanted


def _execute(action: DirectoryAction, *, now: datetime, by, run: StepRun | None = None) -> None:
    kind = action.kind_enum
    person = action.person
    if person is None:  # an orphan account, disabled at an admin's request
        _converge(action, password=None, run=run)
        return
    if kind == ActionKind.ONBOARD:
        _run_onboard(action, person, by=by, run=run)
    elif kind == ActionKind.MOVE:
        if person.state_enum not in LIVE_STATES:
            if person.state_enum != PersonState.PENDING:
                raise Conflict(f"{person.display_name} is {person.state}; the move no longer applies.")
            for name, value in (action.planned or {}).items():  # not started yet: the record changes, no account
                setattr(person, name, value)
            return
        _converge(action, password=None, run=run)
    elif kind in (ActionKind.OFFBOARD, ActionKind.DISABLE):
        _run_disable(action, person, now=now, by=by, run=run)
    elif kind == ActionKind.DELETE:
        _run_delete(action, person, now=now, by=by, run=run)
    elif kind == ActionKind.RESTORE:
        _converge(action, password=crypto.decrypt(action.secret_encrypted) if action.secret_encrypted else
                  new_initial_password(), run=run)
        person.state = (PersonState.LEAVING if person.end_date else PersonState.ACTIVE).value
        person.disabled_at = None
        if person.dn is None or person.state_enum in LIVE_STATES:
            person.dn = f"{gateway().flavour.rdn(person.username)},{gateway().people_dn}"
        if person.user is not None and not person.user.active:
            auth_services.set_active(person.user, True, by=by)
        audit.record("directory.restored", "person", person.id, actor=by,
                     summary=f"account {person.username} restored")


def _run_onboard(action: DirectoryAction, person: Person, *, by, run: StepRun | None = None) -> None:
    if person.state_enum not in (PersonState.PENDING, *LIVE_STATES):
        raise Conflict(f"{person.display_name} is {person.state}; onboarding no longer applies.")
    password = crypto.decrypt(action.secret_encrypted) if action.secret_encrypted else new_initial_password()
    wanted = _converge(action, password=password, run=run)
    dn = _mark_onboarded(person)
    user = _link_users([(person, wanted, dn)], run)[0]
    _open_provisioning_tickets([(person, action, user)], run=run)
    audit.record_many([_record_onboarded(person, user, by=by)])


def _mark_onboarded(person: Person) -> str:
    """The joiner has an account now (undone with the step if it fails); returns its DN."""
    person.dn = f"{gateway().flavour.rdn(person.username)},{gateway().people_dn}"
    person.state = (PersonState.LEAVING if person.end_date else PersonState.ACTIVE).value
    return person.dn


def _record_onboarded(person: Person, user: User | None, *, by) -> dict:
    """Links the joiner's user; returns the audit row."""
    if user is not None:
        person.user_id = user.id
    return audit.values("directory.account_created", "person", person.id, actor=by,
                        summary=f"account {person.username} created for {person.display_name}")


def _run_disable(action: DirectoryAction, person: Person, *, now: datetime, by, run: StepRun | None = None) -> None:
    if person.state_enum == PersonState.DELETED:
        raise Conflict(f"{person.display_name} has been deleted.")
    _converge(action, password=None, run=run)
    first_time = person.state_enum != PersonState.DISABLED
    person.state = PersonState.DISABLED.value
    person.dn = f"{gateway().flavour.rdn(person.username)},{gateway().disabled_dn}" if person.username else None
    person.disabled_at = person.disabled_at if not first_time and person.disabled_at else now
    user = person.user
    if user is not None:
        _recall_assets(person, action, user, by=by)
        auth_services.revoke_everything(user, by=by, reason="left the organisation")
        if user.active:
            auth_services.set_active(user, False, by=by)
    if _open_action(person, ActionKind.DELETE) is None:
        schedule_step(person, ActionKind.DELETE, now.date() + timedelta(days=settings().grace_days), by=by,
                  batch=action.batch)
    if first_time:
        audit.record("directory.disabled", "person", person.id, actor=by,
                     summary=f"account {person.username} of {person.display_name} disabled")


def _run_delete(action: DirectoryAction, person: Person, *, now: datetime, by, run: StepRun | None = None) -> None:
    if person.state_enum != PersonState.DISABLED:
        raise Conflict(f"{person.display_name} is {person.state}; only a disabled account is deleted.")
    _converge(action, password=None, run=run)
    person.state, person.deleted_at, person.dn = PersonState.DELETED.value, now, None
    _reserve_username(person, now.date())
    audit.record("directory.deleted", "person", person.id, actor=by,
                 summary=f"account {person.username} of {person.display_name} deleted after the grace period")


def _link_users(joiners: list[tuple[Person, Wanted, str]], run: StepRun | None = None) -> list[User | None]:
    """The itops users who sign in with these accounts (person, wanted state, DN): made now, in one flush, so
    tickets and assets can name them; None for an account whose groups give no itops role. The caller links
    each to its person."""
    ldap_settings = current_app.config["ITOPS_LDAP"]
    users = run.users if run is not None else None
    linked: list[User | None] = []
    new: list[tuple[int, tuple]] = []
    for person, wanted, dn in joiners:
        if users is not None and person.username in users:
            user = users[person.username]
        else:
            user = auth_services.find_user(person.username)
        if user is None:
            account = DirectoryAccount(dn=dn, username=person.username, display_name=person.display_name,
                                       email=person.email, groups=frozenset(g.lower() for g in wanted.groups),
                                       locked=False)
            role = account.role(ldap_settings)
            if role is not None:  # else they never sign in, and the link is made if they ever do
                new.append((len(linked), (account, role, None)))
        else:
            if not user.active:
                auth_services.set_active(user, True, by="system")
            # A username given again after the retention period: the old, deleted person lets go of the user.
            db.session.execute(update(Person).where(Person.user_id == user.id, Person.id != person.id)
                               .values(user_id=None))
        linked.append(user)
    for (index, _), user in zip(new, auth_services.sync_directory_users([entry for _, entry in new])):
        linked[index] = user
        if users is not None:
            users[user.username] = user
    return linked


# --- assets and tickets follow the person ------------------------------------------------------

def _ticket_requester(action: DirectoryAction, person: Person, user: User | None = None) -> User | None:
    """Who the automatic ticket is filed for: the HR person who asked, else the person themself (`user`
    when it is not linked yet)."""
    return action.created_by or user or person.user


def _open_provisioning_tickets(joiners: list[tuple[Person, DirectoryAction, User | None]], *,
                               run: StepRun | None = None) -> None:
    """One provisioning ticket per joiner (person, step, their user if any) who has none yet, all filed together,
    listing their department's kit with matching in-stock assets reserved."""
    joiners = [j for j in joiners if j[0].provisioning_ticket_id is None]
    # Nothing pending is a ticket, so this look-up need not flush first: the tickets' own flush writes it all.
    taken = tickets_services.taken_dedup_keys([_provisioning_key(person) for person, _, _ in joiners])
    category_id = tickets_services.category_named(settings().ticket_category) if joiners else None
    new, owners = [], []
    for person, action, user in joiners:
        if _provisioning_key(person) in taken:
            continue
        requester = _ticket_requester(action, person, user)
        if requester is None:
            log.warning("no requester for the provisioning ticket of person %s", person.id)
            continue
        new.append(tickets_services.NewTicket(requester, title=f"Prepare equipment for {person.display_name}",
                                              body=_provisioning_body(person, run), dedup_key=_provisioning_key(person),
                                              category_id=category_id))
        owners.append(person)
    # HR sees the ticket on the person's page; a mail each would flood them on a large import.
    filed = tickets_services.file_tickets(new, source=Source.DIRECTORY, acknowledge=False)
    for person, ticket in zip(owners, filed):
        if ticket is not None:
            person.provisioning_ticket_id = ticket.id


def _provisioning_key(person: Person) -> str:
    return f"directory:provision:{person.id}"


def _provisioning_body(person: Person, run: StepRun | None) -> str:
    """What IT prepares: the department's kit (read once per department in a run), reserving what is in stock."""
    if run is None:
        kit = kit_for(person.department)
    else:
        kit = run.kits.get(_norm(person.department))
        if kit is None:
            kit = run.kits[_norm(person.department)] = kit_for(person.department)
    lines = []
    for item in kit:
        reserved = _reserve_kit_item(person, item)
        what = item["model"] or item["kind"].replace("_", " ")
        lines.append(f"- {what}: " + (f"reserved {reserved.tag} ({reserved.name})" if reserved else
                                      "none in stock, order one"))
    return (f"{person.display_name} ({person.username}) starts on {person.start_date} in "
            f"{person.department or 'no department'} as {person.title or 'staff'}.\n\n"
            + ("Standard kit:\n" + "\n".join(lines) if lines else "No kit template for this department."))


def _reserve_kit_item(person: Person, item: dict):
    """Set aside the first matching in-stock asset no other recent joiner has; a reservation lapses
    KIT_RESERVATION_DAYS after its joiner's start date (by then the kit is handed over or not needed)."""
    lapsed_before = date.today() - timedelta(days=KIT_RESERVATION_DAYS)
    held = select(KitReservation.asset_id).join(Person, Person.id == KitReservation.person_id).where(
        Person.start_date >= lapsed_before)
    asset = assets_services.first_in_stock(item["kind"], model=item.get("model"), excluding=held)
    if asset is not None:
        lapsed = db.session.scalar(select(KitReservation).where(KitReservation.asset_id == asset.id))
        if lapsed is not None:
            db.session.delete(lapsed)
            db.session.flush()
        db.session.add(KitReservation(asset_id=asset.id, person_id=person.id))
        db.session.flush()
    return asset


def kit_reserved_for(person: Person) -> list:
    ids = list(db.session.scalars(select(KitReservation.asset_id).where(KitReservation.person_id == person.id)))
    return assets_services.get_assets(ids) if ids else []


def _recall_assets(person: Person, action: DirectoryAction, user: User, *, by) -> None:
    """Every asset the leaver holds goes to pending return, listed on one return ticket for IT staff."""
    held = assets_services.assets_held_by(user)
    if not held:
        return
    for asset in held:
        if PENDING_RETURN in asset.status_moves:
            assets_services.change_status(asset, PENDING_RETURN, by=by,
                                          note=f"{person.display_name} has left")
    key = f"directory:return:{action.id}"
    if tickets_services.find_by_dedup_key(key) is not None:
        return
    requester = _ticket_requester(action, person)
    body = (f"{person.display_name} ({person.username}) has left. Collect and check in:\n"
            + "\n".join(f"- {a.tag} {a.name} ({a.kind.replace('_', ' ')}, {a.status.replace('_', ' ')})"
                        for a in held)
            + "\n\nThis ticket resolves itself when the last of them is checked in.")
    ticket = tickets_services.create_ticket(requester, title=f"Return equipment of {person.display_name}", body=body,
                                            category_id=tickets_services.category_named(settings().ticket_category),
                                            impact="medium", urgency="medium", by=requester, source="directory",
                                            dedup_key=key)
    person.return_ticket_id = ticket.id


def resolve_return_ticket_when_all_back(asset, *, holder: User, by, **_) -> None:
    """Connected to assets' check-in signal: the last asset of a leaver back resolves their return ticket."""
    person = db.session.scalar(select(Person).where(Person.user_id == holder.id))
    if person is None or person.return_ticket_id is None or assets_services.assets_held_by(holder):
        return
    ticket = tickets_services.get_ticket(person.return_ticket_id)
    if ticket.is_open:
        tickets_services.resolve_by_workflow(ticket, by=by, reason=f"the last asset ({asset.tag}) was checked in")
