"""SCIM's operations: HR systems' tokens, and Users read, created, replaced, patched and deleted
through the directory's own flows (joiner, mover, leaver, cancel, restore) in directory.services.

Adds and flushes, never commits. A write first checks everything SCIM-specific (uniqueness of
userName, externalId and employeeNumber), then calls the directory services; whatever they raise
turns into a SCIM error and the request boundary rolls the whole request back.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import String, and_, case, cast, func, or_, select
from sqlalchemy.orm import selectinload

from itops.core import audit, crypto
from itops.core.database import utcnow
from itops.directory import services
from itops.directory.choices import LIVE_STATES, PersonState
from itops.directory.models import Person
from itops.directory.scim_filter import (
    CORE_GROUP, MAX_ROW_ID, Column, ScimError, matches, parse_attr_path, parse_filter, to_sql,
)
from itops.directory.scim_models import ScimToken, ScimUser
from itops.directory.scim_schemas import (
    ENTERPRISE_USER, ITOPS_USER, MAX_RESULTS, UserView, apply_patch, check_user_body, group_resource,
    invalid_value, merged_for_put, person_values, user_resource,
)
from itops.extensions import db

TOKEN_PREFIX = "itops_scim_"
TOKEN_TOUCH_SECONDS = 60
DEFAULT_COUNT = 100
# People whose SCIM `active` is true: not (yet) gone, and no end date reached.
ACTIVE_STATES = (PersonState.PENDING.value, PersonState.ACTIVE.value, PersonState.LEAVING.value)


def actor(token: ScimToken) -> str:
    """How audit entries and directory actions name a SCIM caller."""
    return f"scim:{token.name}"


# --- tokens --------------------------------------------------------------------------------------

@dataclass
class IssuedScimToken:
    token: ScimToken
    secret: str   # shown once; only its digest is kept


def issue_token(name: str, *, by) -> IssuedScimToken:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise invalid_value("A SCIM token needs a name of 1 to 100 characters.")
    if db.session.scalar(select(ScimToken).where(ScimToken.name == name)) is not None:
        raise ScimError(409, f"There is already a SCIM token named {name!r}.", "uniqueness")
    secret = crypto.new_secret_token(TOKEN_PREFIX)
    token = ScimToken(name=name, prefix=secret[:len(TOKEN_PREFIX) + 4], token_hash=crypto.token_digest(secret))
    db.session.add(token)
    db.session.flush()
    audit.record("scim.token_create", "scim_token", token.id, actor=by, summary=f"SCIM token {name} created")
    return IssuedScimToken(token, secret)


def tokens() -> list[ScimToken]:
    return list(db.session.scalars(select(ScimToken).order_by(ScimToken.name)))


def revoke_token(name: str, *, by) -> ScimToken:
    token = db.session.scalar(select(ScimToken).where(ScimToken.name == name))
    if token is None:
        raise ScimError(404, f"No SCIM token named {name!r}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record("scim.token_revoke", "scim_token", token.id, actor=by, summary=f"SCIM token {name} revoked")
    return token


def token_for(secret: str) -> ScimToken | None:
    """The live token with this secret; its last use is written at most once a minute."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = db.session.scalar(select(ScimToken).where(ScimToken.token_hash == crypto.token_digest(secret),
                                                      ScimToken.revoked_at.is_(None)))
    if token is not None:
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=TOKEN_TOUCH_SECONDS):
            token.last_used_at = now
    return token


# --- how Users read in SQL -------------------------------------------------------------------------

def _user_name():
    """A person's SCIM userName: the HR system's choice, else the login name, else the employee number."""
    return func.coalesce(ScimUser.user_name, Person.username, Person.employee_number)


def _active_clause(today: date):
    return and_(Person.state.in_(ACTIVE_STATES), or_(Person.end_date.is_(None), Person.end_date > today))


def is_active(person: Person, today: date) -> bool:
    """The Python twin of _active_clause."""
    return person.state in ACTIVE_STATES and (person.end_date is None or person.end_date > today)


def user_columns(today: date) -> dict[str, Column]:
    """Every attribute a filter or sortBy may name, by its canonical lower-case path."""
    enterprise, extra = ENTERPRISE_USER.lower(), ITOPS_USER.lower()
    return {
        "id": Column(Person.id, "int"),
        "externalid": Column(Person.external_id, "exact"),
        "username": Column(_user_name()),
        "name.givenname": Column(Person.given_name),
        "name.familyname": Column(Person.family_name),
        "nickname": Column(Person.preferred_name),
        "title": Column(Person.title),
        "emails.value": Column(Person.email),
        "emails.type": Column(case((Person.email.is_not(None), "work"))),
        "emails.primary": Column(kind="bool", clause=lambda: Person.email.is_not(None)),
        "active": Column(kind="bool", clause=lambda: _active_clause(today)),
        "meta.created": Column(Person.created_at, "datetime"),
        "meta.lastmodified": Column(Person.updated_at, "datetime"),
        f"{enterprise}:employeenumber": Column(Person.employee_number, "exact"),
        f"{enterprise}:department": Column(Person.department),
        f"{enterprise}:manager.value": Column(Person.manager_id, "int"),
        f"{extra}:startdate": Column(cast(Person.start_date, String), "exact"),
        f"{extra}:enddate": Column(cast(Person.end_date, String), "exact"),
        f"{extra}:location": Column(Person.location),
        f"{extra}:state": Column(Person.state),
        f"{extra}:loginname": Column(Person.username),
    }


def _visible():
    """People as SCIM sees them: every HR record but those a SCIM client deleted."""
    return (select(Person, _user_name().label("user_name"))
            .outerjoin(ScimUser, ScimUser.person_id == Person.id)
            .where(ScimUser.deleted_at.is_(None)))


# --- reading Users -------------------------------------------------------------------------------

@dataclass
class Page:
    resources: list[dict]
    total: int
    start_index: int


def paging(start_index: str | None, count: str | None) -> tuple[int, int]:
    """startIndex is 1-based (below 1 means 1); count is capped, and a negative one means 0 (RFC 7644 §3.4.2.4)."""
    try:
        start = int(start_index) if start_index not in (None, "") else 1
        size = int(count) if count not in (None, "") else DEFAULT_COUNT
    except ValueError:
        raise invalid_value("startIndex and count must be integers.") from None
    return max(start, 1), min(max(size, 0), MAX_RESULTS)


def _sort_key(sort_by: str | None, sort_order: str | None, columns: dict[str, Column]):
    if not sort_by:
        return [Person.id]
    try:
        column = columns.get(parse_attr_path(sort_by).key) or columns.get(parse_attr_path(sort_by).key + ".value")
    except ScimError:
        column = None
    if column is None or column.kind == "bool":
        raise invalid_value(f"Cannot sort by {sort_by!r}.")
    descending = (sort_order or "ascending").lower() == "descending"
    return [column.expression.desc() if descending else column.expression.asc(), Person.id]


def user_page(base_url: str, *, filter_text: str | None, start_index: str | None, count: str | None,
              sort_by: str | None = None, sort_order: str | None = None) -> Page:
    today = date.today()
    columns = user_columns(today)
    query = _visible()
    if filter_text:
        query = query.where(to_sql(parse_filter(filter_text), columns))
    start, size = paging(start_index, count)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.execute(query.order_by(*_sort_key(sort_by, sort_order, columns)).offset(start - 1)
                              .limit(size).options(selectinload(Person.manager))).all() if size else []
    mappings = services.group_mappings()
    return Page([_represent(person, user_name, base_url, mappings, today) for person, user_name in rows],
                total, start)


def _represent(person: Person, user_name: str, base_url: str, mappings, today: date) -> dict:
    live = person.state_enum in LIVE_STATES
    groups = sorted(services.groups_for(person.department, person.title, mappings)) if live else []
    return user_resource(person, UserView(user_name, is_active(person, today), groups), base_url)


def get_user(user_id: str) -> Person:
    """A User by its id; anything else (unknown, not a number, deleted through SCIM) is 404."""
    if not user_id.isdigit() or len(user_id) > 10 or int(user_id) > MAX_ROW_ID:
        raise ScimError(404, f"No User {user_id}.")
    row = db.session.execute(_visible().where(Person.id == int(user_id))).first()
    if row is None:
        raise ScimError(404, f"No User {user_id}.")
    return row[0]


def represent(person: Person, base_url: str) -> dict:
    db.session.flush()
    db.session.refresh(person)  # updated_at and the manager as the services left them
    user_name = db.session.scalar(select(_user_name()).select_from(Person).outerjoin(ScimUser, ScimUser.person_id
                                  == Person.id).where(Person.id == person.id))
    return _represent(person, user_name, base_url, services.group_mappings(), date.today())


# --- writing Users -------------------------------------------------------------------------------

def _check_unique(values: dict, person: Person | None) -> None:
    """userName, externalId and employeeNumber are unique across people (409 uniqueness)."""
    others = [] if person is None else [Person.id != person.id]
    user_name = values["user_name"].casefold()
    clash = db.session.scalar(_visible().with_only_columns(Person.id)
                              .where(func.lower(_user_name()) == user_name, *others).limit(1))
    if clash is not None:
        raise ScimError(409, f"userName {values['user_name']!r} is already taken.", "uniqueness")
    for field, label in (("external_id", "externalId"), ("employee_number", "employeeNumber")):
        if values[field] is None:
            continue
        column = getattr(Person, field)
        if db.session.scalar(select(Person.id).where(column == values[field], *others).limit(1)) is not None:
            raise ScimError(409, f"{label} {values[field]!r} already belongs to another User.", "uniqueness")


def _manager(values: dict) -> Person | None:
    if values["manager_id"] is None:
        return None
    manager = db.session.get(Person, values["manager_id"])
    if manager is None:
        raise invalid_value(f"The manager {values['manager_id']} is not a User.")
    return manager


def _remember_user_name(person: Person, user_name: str) -> None:
    row = db.session.get(ScimUser, person.id)
    if row is None:
        row = ScimUser(person_id=person.id)
        db.session.add(row)
    row.user_name, row.user_name_key = user_name, user_name.casefold()


def create_user(body, *, token: ScimToken, base_url: str) -> dict:
    """POST /Users: the joiner flow (an account at once when the start date has come)."""
    values = person_values(check_user_body(body))
    _check_unique(values, None)
    manager = _manager(values)
    result = services.onboard({
        **{k: values[k] for k in ("employee_number", "given_name", "family_name", "preferred_name", "email",
                                  "department", "title", "location", "external_id", "end_date")},
        "start_date": values["start_date"] or date.today(),
        **({"manager": manager} if manager else {}),
    }, by=actor(token))
    person = result.person
    _remember_user_name(person, values["user_name"])
    if not values["active"]:
        _leave(person, by=actor(token))
    audit.record("scim.user_create", "person", person.id, actor=actor(token),
                 summary=f"SCIM created {values['user_name']} ({person.employee_number})")
    return represent(person, base_url)


def replace_user(person: Person, body, *, token: ScimToken, base_url: str) -> dict:
    """PUT /Users/<id>."""
    check_user_body(body)
    wanted = merged_for_put(represent(person, base_url), body)
    _save(person, person_values(wanted), by=actor(token))
    audit.record("scim.user_replace", "person", person.id, actor=actor(token),
                 summary=f"SCIM replaced {person.display_name}")
    return represent(person, base_url)


def patch_user(person: Person, body, *, token: ScimToken, base_url: str) -> dict:
    """PATCH /Users/<id>: the operations applied to the current resource, then saved like a PUT."""
    patched = apply_patch(represent(person, base_url), body)
    _save(person, person_values(patched), by=actor(token))
    audit.record("scim.user_patch", "person", person.id, actor=actor(token),
                 summary=f"SCIM patched {person.display_name}")
    return represent(person, base_url)


def delete_user(person: Person, *, token: ScimToken) -> None:
    """DELETE /Users/<id>: the leaver flow from today; the directory deletes the account after the grace
    period. The resource answers 404 from now on."""
    if is_active(person, date.today()):
        _leave(person, by=actor(token))
    row = db.session.get(ScimUser, person.id)
    if row is None:
        row = ScimUser(person_id=person.id)
        db.session.add(row)
    # The userName is released for a new resource; the HR record keeps everything else.
    row.user_name = row.user_name_key = None
    row.deleted_at = utcnow()
    audit.record("scim.user_delete", "person", person.id, actor=actor(token),
                 summary=f"SCIM deleted {person.display_name}: leaver from today")


def _leave(person: Person, *, by) -> None:
    # A joiner who has not started yet cannot end before starting: they leave on their start date.
    services.offboard(person, end_date=max(date.today(), person.start_date), by=by)


def _save(person: Person, values: dict, *, by) -> None:
    """Bring HR's record to the wanted values through the directory flows: corrections, then a mover,
    then the leaver (or its cancellation, or a restore)."""
    _check_unique(values, person)
    manager = _manager(values)
    was_active = is_active(person, date.today())
    services.update_person(person, {
        **{k: values[k] for k in ("employee_number", "given_name", "family_name", "preferred_name", "email",
                                  "location")},
        "start_date": values["start_date"] or person.start_date,
    }, by=by)
    if values["external_id"] != person.external_id:
        audit.record("scim.external_id", "person", person.id, actor=by, summary=f"{person.display_name}: externalId",
                     before={"external_id": person.external_id}, after={"external_id": values["external_id"]})
        person.external_id = values["external_id"]
    moves = {k: v for k, v in (("department", values["department"]), ("title", values["title"]),
                               ("manager", manager)) if v != getattr(person, k)}
    if moves:
        services.move(person, effective=date.today(), by=by, **moves)
    _remember_user_name(person, values["user_name"])
    _follow_active(person, values, was_active, by=by)


def _follow_active(person: Person, values: dict, was_active: bool, *, by) -> None:
    wanted_end = values["end_date"]
    if not values["active"]:
        if was_active:
            _leave(person, by=by)
        return
    if not was_active:
        if person.state_enum == PersonState.DISABLED:
            services.restore(person, by=by)
        else:
            services.cancel_offboard(person, by=by)   # Conflict for a deleted person: nothing to bring back
        return
    if wanted_end != person.end_date:
        if wanted_end is not None:
            services.offboard(person, end_date=wanted_end, by=by)
        else:
            services.cancel_offboard(person, by=by)


# --- Groups --------------------------------------------------------------------------------------

def _groups(base_url: str) -> list[dict]:
    """Every group a mapping names, with the current staff it should hold."""
    mappings = services.group_mappings()
    members: dict[str, list[Person]] = {name: [] for name in services.managed_groups(mappings)}
    people = db.session.scalars(select(Person).outerjoin(ScimUser, ScimUser.person_id == Person.id).where(
        Person.state.in_([s.value for s in LIVE_STATES]), ScimUser.deleted_at.is_(None)).order_by(Person.id))
    for person in people:
        for name in services.groups_for(person.department, person.title, mappings):
            members[name].append(person)
    return [group_resource(name, members[name], base_url) for name in sorted(members)]


def group_page(base_url: str, *, filter_text: str | None, start_index: str | None, count: str | None) -> Page:
    groups = _groups(base_url)
    if filter_text:
        node = parse_filter(filter_text, default_urn=CORE_GROUP)
        groups = [g for g in groups if matches(node, g)]
    start, size = paging(start_index, count)
    return Page(groups[start - 1:start - 1 + size], len(groups), start)


def get_group(group_id: str, base_url: str) -> dict:
    found = next((g for g in _groups(base_url) if g["id"] == group_id), None)
    if found is None:
        raise ScimError(404, f"No Group {group_id}.")
    return found
