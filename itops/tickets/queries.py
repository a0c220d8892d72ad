"""The one ticket query: queues, filters, full-text search and sort for the HTML list, the API and exports.

Full-text search is FTS5 on SQLite and a tsvector with a GIN index on PostgreSQL (both created in the
tickets migration); `_matching_ids` hides the difference. User input never reaches a query language:
it is cut into words, and each word is matched as a plain term (a prefix for the last one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Select, bindparam, literal_column, or_, select, text
from sqlalchemy.orm import joinedload

from itops.core.auth.models import User
from itops.core.errors import ValidationFailed
from itops.core.pagination import Page, keyset_page
from itops.extensions import db
from itops.tickets.choices import SORTS, Priority, Queue, TicketStatus
from itops.tickets.models import Ticket, TicketComment

DEFAULT_PAGE_SIZE = 25
MAX_SEARCH_WORDS = 8
_WORD = re.compile(r"\w+", re.UNICODE)

_SORT_COLUMNS = {
    "-created": [(Ticket.created_at, True), (Ticket.id, True)],
    "created": [(Ticket.created_at, False), (Ticket.id, False)],
    "-updated": [(Ticket.updated_at, True), (Ticket.id, True)],
    "priority": [(Ticket.priority_rank, False), (Ticket.created_at, True), (Ticket.id, True)],
    "due": [(Ticket.resolution_due, False), (Ticket.id, False)],
}


@dataclass(frozen=True)
class TicketFilters:
    queue: str = Queue.OPEN.value
    q: str | None = None
    status: str | None = None
    priority: str | None = None
    category_id: int | None = None
    team_id: int | None = None
    assignee: str | None = None      # a username
    requester: str | None = None     # a username
    asset_id: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    sort: str = "-created"
    # Set by the caller, not by the query string:
    viewer_id: int | None = None            # for "mine" and "my teams"
    viewer_team_ids: tuple[int, ...] = ()
    requester_id: int | None = None         # a requester sees only their own tickets
    include_internal: bool = True           # whether search reads internal notes

    def validated(self) -> TicketFilters:
        errors = {}
        if self.queue not in Queue.__members__.values():
            errors["queue"] = [f"One of: {', '.join(q.value for q in Queue)}."]
        if self.status and self.status not in TicketStatus.__members__.values():
            errors["status"] = [f"Unknown status {self.status!r}."]
        if self.priority and self.priority not in Priority.__members__.values():
            errors["priority"] = [f"Unknown priority {self.priority!r}."]
        if self.sort not in SORTS:
            errors["sort"] = [f"Sort by one of: {', '.join(SORTS)}."]
        if errors:
            raise ValidationFailed("Some filters are not valid.", errors=errors)
        return self

    def for_requester(self, user: User) -> TicketFilters:
        """What an employee may list: their own tickets, searched without internal notes."""
        return replace(self, queue=Queue.ALL.value if self.queue not in (Queue.OPEN.value, Queue.ALL.value)
                       else self.queue, requester_id=user.id, requester=None, include_internal=False)

    def as_args(self) -> dict[str, str]:
        values = {"queue": self.queue, "q": self.q, "status": self.status, "priority": self.priority,
                  "category_id": self.category_id, "team_id": self.team_id, "assignee": self.assignee,
                  "requester": self.requester, "asset_id": self.asset_id, "created_from": self.created_from,
                  "created_to": self.created_to, "updated_from": self.updated_from, "updated_to": self.updated_to,
                  "sort": None if self.sort == "-created" else self.sort}
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


def search_terms(q: str | None) -> list[str]:
    """The words of a search, without any operator, quote or bracket the user typed."""
    return _WORD.findall((q or "").lower())[:MAX_SEARCH_WORDS]


def _fts5_query(words: list[str]) -> str:
    # Each word becomes a quoted FTS5 string (no operators possible); the last one matches as a prefix.
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    quoted[-1] += "*"
    return " ".join(quoted)


def _tsquery(words: list[str]) -> str:
    return " & ".join(f"{word}:*" if i == len(words) - 1 else word for i, word in enumerate(words))


def _matching_ids(words: list[str], *, include_internal: bool):
    """Ticket ids whose title, body or (visible) comments contain every word."""
    if db.engine.dialect.name == "postgresql":
        query = bindparam("tsq", _tsquery(words))
        in_ticket = select(Ticket.id).where(literal_column("tickets.search_vector").op("@@")(
            text("to_tsquery('english', :tsq)").bindparams(query)))
        in_comments = select(TicketComment.ticket_id).where(literal_column("ticket_comments.search_vector").op("@@")(
            text("to_tsquery('english', :tsq)").bindparams(query)))
    else:
        match = _fts5_query(words)
        in_ticket = select(literal_column("rowid")).select_from(text("fts_tickets")).where(
            text("fts_tickets MATCH :m").bindparams(m=match))
        comment_ids = select(literal_column("rowid")).select_from(text("fts_ticket_comments")).where(
            text("fts_ticket_comments MATCH :cm").bindparams(cm=match))
        in_comments = select(TicketComment.ticket_id).where(TicketComment.id.in_(comment_ids))
    if not include_internal:
        in_comments = in_comments.where(TicketComment.internal.is_(False))
    return in_ticket, in_comments


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def ticket_query(filters: TicketFilters) -> Select:
    """Tickets matching `filters`, with requester and assignee loaded in the same query. Unordered."""
    query = select(Ticket).options(joinedload(Ticket.requester), joinedload(Ticket.assignee))
    queue = Queue(filters.queue)
    if queue != Queue.ALL:
        query = query.where(Ticket.is_open.is_(True))
    if queue == Queue.UNASSIGNED:
        query = query.where(Ticket.assignee_id.is_(None))
    elif queue == Queue.MINE:
        query = query.where(Ticket.assignee_id == filters.viewer_id)
    elif queue == Queue.TEAM:
        query = query.where(Ticket.team_id.in_(filters.viewer_team_ids or (-1,)))
    elif queue == Queue.BREACHING:
        query = query.where(or_(Ticket.response_breached.is_(True), Ticket.resolution_breached.is_(True)))
    if filters.requester_id is not None:
        query = query.where(Ticket.requester_id == filters.requester_id)
    elif filters.requester:
        query = query.where(Ticket.requester_id.in_(
            select(User.id).where(User.username == filters.requester.strip().lower()).scalar_subquery()))
    if filters.assignee:
        query = query.where(Ticket.assignee_id.in_(
            select(User.id).where(User.username == filters.assignee.strip().lower()).scalar_subquery()))
    for column, value in ((Ticket.status, filters.status), (Ticket.priority, filters.priority),
                          (Ticket.category_id, filters.category_id), (Ticket.team_id, filters.team_id),
                          (Ticket.asset_id, filters.asset_id)):
        if value not in (None, ""):
            query = query.where(column == value)
    for column, start, end in ((Ticket.created_at, filters.created_from, filters.created_to),
                               (Ticket.updated_at, filters.updated_from, filters.updated_to)):
        if start:
            query = query.where(column >= _day_start(start))
        if end:
            query = query.where(column < _day_start(end + timedelta(days=1)))
    words = search_terms(filters.q)
    if words:
        in_ticket, in_comments = _matching_ids(words, include_internal=filters.include_internal)
        query = query.where(or_(Ticket.id.in_(in_ticket), Ticket.id.in_(in_comments)))
    return query


def sort_of(filters: TicketFilters):
    return _SORT_COLUMNS[filters.sort]


def ticket_page(filters: TicketFilters, *, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE) -> Page:
    filters = filters.validated()
    sort = sort_of(filters)
    return keyset_page(ticket_query(filters), sort, cursor=cursor, limit=limit,
                       key=lambda ticket: [getattr(ticket, column.key) for column, _ in sort])
