"""The one people query: HR's list (search, filters, sort, keyset pages), and what the person page reads.

A list page costs the session user, the page (managers joined in the same query) and the
department choices: three queries, whatever the page size.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Select, String, cast, func, or_, select
from sqlalchemy.orm import aliased, contains_eager, joinedload

from itops.core.errors import DomainError, ValidationFailed
from itops.core.pagination import Page, keyset_page
from itops.directory.choices import PersonState
from itops.directory.ldap import Account, gateway
from itops.directory.models import Batch, DirectoryAction, Person
from itops.extensions import db
from itops.tickets import queries as ticket_queries

DEFAULT_PAGE_SIZE = 50
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
OPEN_TICKETS_SHOWN = 20

# A sort: (column or expression, descending, how to read its value from a row). Nullable columns are
# sorted through coalesce(), so the keyset cursor never has to compare with NULL.
SortKey = tuple[Any, bool, Callable[[Person], Any]]
SORTS: dict[str, tuple[str, list[SortKey]]] = {
    "name": ("Name", [(Person.family_name, False, lambda p: p.family_name),
                      (Person.given_name, False, lambda p: p.given_name), (Person.id, False, lambda p: p.id)]),
    "employee_number": ("Employee number", [(Person.employee_number, False, lambda p: p.employee_number)]),
    "department": ("Department", [(func.coalesce(Person.department, ""), False, lambda p: p.department or ""),
                                  (Person.family_name, False, lambda p: p.family_name),
                                  (Person.id, False, lambda p: p.id)]),
    "state": ("State", [(Person.state, False, lambda p: p.state), (Person.family_name, False, lambda p: p.family_name),
                        (Person.id, False, lambda p: p.id)]),
    # As ISO text: the cursor is JSON, and text compares the same way on every backend.
    "-start": ("Newest start date", [(cast(Person.start_date, String), True, lambda p: p.start_date.isoformat()),
                                     (Person.id, True, lambda p: p.id)]),
}

MANAGER = aliased(Person, name="manager")


@dataclass(frozen=True)
class PeopleFilters:
    q: str | None = None
    state: str | None = None
    department: str | None = None
    location: str | None = None
    manager: str | None = None      # the manager's employee number or username
    sort: str = "name"

    def validated(self) -> PeopleFilters:
        errors = {}
        if self.state and self.state not in PersonState.__members__.values():
            errors["state"] = [f"Unknown state {self.state!r}."]
        if self.sort not in SORTS:
            errors["sort"] = [f"Sort by one of: {', '.join(SORTS)}."]
        for name in ("q", "department", "location", "manager"):  # PostgreSQL refuses NUL in text outright
            if _CONTROL.search(getattr(self, name) or ""):
                errors[name] = ["Control characters are not allowed."]
        if errors:
            raise ValidationFailed("Some filters are not valid.", errors=errors)
        return self


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains(column, term: str):
    return func.lower(column).like(f"%{_escape_like(term)}%", escape="\\")


def people_query(filters: PeopleFilters) -> Select:
    """People matching `filters`, each with their manager loaded in the same query. Unordered; callers sort."""
    query = (select(Person).outerjoin(MANAGER, Person.manager_id == MANAGER.id)
             .options(contains_eager(Person.manager.of_type(MANAGER))))
    term = (filters.q or "").strip().lower()
    if term:
        query = query.where(or_(*(_contains(column, term) for column in (
            Person.given_name, Person.family_name, Person.preferred_name, Person.username, Person.employee_number,
            Person.email))))
    if filters.state:
        query = query.where(Person.state == filters.state)
    if filters.department and filters.department.strip():
        query = query.where(func.lower(Person.department) == filters.department.strip().lower())
    if filters.location and filters.location.strip():
        query = query.where(func.lower(Person.location) == filters.location.strip().lower())
    if filters.manager and filters.manager.strip():
        manager = filters.manager.strip()
        query = query.where(or_(MANAGER.employee_number == manager, MANAGER.username == manager.lower()))
    return query


def people_page(filters: PeopleFilters, *, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE) -> Page:
    filters = filters.validated()
    sort = SORTS[filters.sort][1]
    return keyset_page(people_query(filters), [(column, descending) for column, descending, _ in sort],
                       cursor=cursor, limit=limit, key=lambda person: [read(person) for _, _, read in sort])


def departments() -> list[str]:
    """Every department HR has used, for the filter's suggestions."""
    return list(db.session.scalars(select(Person.department).where(Person.department.is_not(None))
                                   .group_by(Person.department).order_by(Person.department)))


# --- the person page -------------------------------------------------------------------------------

@dataclass
class DirectoryView:
    """The person's account as the directory has it now, or why it could not be read."""
    account: Account | None = None
    error: str | None = None


def directory_account(person: Person) -> DirectoryView:
    """Read live, so the page shows the directory as it is, not as itops last left it."""
    if not person.username:
        return DirectoryView()
    try:
        return DirectoryView(gateway().find_account(person.username))
    except DomainError as exc:  # unreachable, not configured, or two accounts of that name
        return DirectoryView(error=exc.detail)


def open_tickets_of(person: Person) -> list:
    """The person's own open tickets, newest first, through the one ticket query."""
    if person.user_id is None:
        return []
    page = ticket_queries.ticket_page(ticket_queries.TicketFilters(requester_id=person.user_id),
                                      limit=OPEN_TICKETS_SHOWN)
    return page.items


def held_steps(batches: list[Batch]) -> dict[int, list[DirectoryAction]]:
    """The steps each batch holds, with their people, in one query: what approving would do."""
    steps: dict[int, list[DirectoryAction]] = {batch.id: [] for batch in batches}
    if steps:
        for action in db.session.scalars(select(DirectoryAction).options(joinedload(DirectoryAction.person))
                                         .where(DirectoryAction.batch_id.in_(steps))
                                         .order_by(DirectoryAction.effective_date, DirectoryAction.id)):
            steps[action.batch_id].append(action)
    return steps
