"""The one ticket query: queues, filters, full-text search and sort for the HTML list, the API and exports.

Full-text search (`_search`) is one FTS5 document per ticket on SQLite (migration 0006: title, body,
public comments, internal notes; rowid = ticket id) and tsvector columns with GIN indexes on
PostgreSQL (migration 0004). User input never reaches a query language: it is cut into words, and
each word is matched as a plain term. The last word matches as a whole word and, when that finds
nothing, as the beginning of a word (one still being typed): a prefix makes FTS5 merge the postings of
every term it starts (12 ms for "outlook*" over a million tickets against 0.1 ms for "outlook"; a
second for "a*"), so it is kept for the searches that need it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Boolean, DateTime, Select, bindparam, literal_column, or_, select, text, type_coerce
from sqlalchemy.orm import defer, joinedload
from sqlalchemy.sql import column as column_clause, table

from itops.core.auth.models import User
from itops.core.errors import ValidationFailed
from itops.core.pagination import Page, keyset_page
from itops.extensions import db
from itops.tickets.choices import SORTS, Priority, Queue, TicketStatus
from itops.tickets.models import Ticket, TicketComment

DEFAULT_PAGE_SIZE = 25
MAX_SEARCH_WORDS = 8
MIN_PREFIX = 3  # a shorter last word only matches whole: "a*" would read most of the index
_WORD = re.compile(r"\w+", re.UNICODE)

_SORT_COLUMNS = {
    "-created": [(Ticket.created_at, True), (Ticket.id, True)],
    "created": [(Ticket.created_at, False), (Ticket.id, False)],
    "-updated": [(Ticket.updated_at, True), (Ticket.id, True)],
    "priority": [(Ticket.priority_rank, False), (Ticket.created_at, True), (Ticket.id, True)],
    "due": [(Ticket.resolution_due, False), (Ticket.id, False)],
}

# SQLite's search index (migration 0006). Its rowid is the ticket id, and ids are given in creation
# order, so a search sorted by creation walks the index in rowid order and stops after one page
# instead of sorting every match (a common word matches a fifth of all tickets).
_SEARCH_INDEX = table("fts_ticket_documents", column_clause("rowid"))
_SEARCH_ROWID = _SEARCH_INDEX.c.rowid
_SEARCH_SORTS = {"-created": [(_SEARCH_ROWID, True)], "created": [(_SEARCH_ROWID, False)]}
# What a requester's search reads: everything but the internal notes.
_REQUESTER_COLUMNS = "{title body public_comments}"


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


def _may_be_a_prefix(words: list[str]) -> bool:
    return bool(words) and len(words[-1]) >= MIN_PREFIX


def _fts5_query(words: list[str], *, include_internal: bool, last_word_prefix: bool) -> str:
    # Each word becomes a quoted FTS5 string (no operators possible).
    quoted = ['"' + word.replace('"', '""') + '"' for word in words]
    if last_word_prefix:
        quoted[-1] += "*"
    match = " ".join(quoted)
    return match if include_internal else f"{_REQUESTER_COLUMNS} : ({match})"


def _tsquery(words: list[str], *, last_word_prefix: bool) -> str:
    return " & ".join(words) + (":*" if last_word_prefix else "")


def _uses_search_index() -> bool:
    return db.engine.dialect.name == "sqlite"


def _few_tickets(filters: TicketFilters) -> bool:
    """Filters that leave a few hundred tickets at most, found through their own index."""
    return filters.requester_id is not None or bool(filters.requester) or filters.asset_id is not None


def _search(query: Select, words: list[str], *, include_internal: bool, last_word_prefix: bool,
            few_tickets: bool) -> Select:
    """`query` narrowed to tickets whose title, body and (visible) comments contain every word.

    SQLite: every word anywhere in the ticket's document. PostgreSQL: every word in the title and
    body, or every word in one comment."""
    if _uses_search_index():
        match = text("fts_ticket_documents MATCH :match").bindparams(
            match=_fts5_query(words, include_internal=include_internal, last_word_prefix=last_word_prefix))
        if not few_tickets:  # walk the matches newest first (see _SEARCH_SORTS)
            return query.join(_SEARCH_INDEX, _SEARCH_ROWID == Ticket.id).where(match)
        matching = select(_SEARCH_ROWID).where(match)
        if last_word_prefix:  # merge the prefix's postings once, not once per ticket
            return query.where(Ticket.id.in_(matching))
        # Look each of the few tickets up in the index: 5 ms for an employee's 500 tickets and a common
        # word over a million tickets, where walking the word's matches for theirs took 90 ms.
        return query.where(matching.where(_SEARCH_ROWID == Ticket.id).exists())
    tsquery = text("to_tsquery('english', :tsq)").bindparams(
        bindparam("tsq", _tsquery(words, last_word_prefix=last_word_prefix)))
    in_ticket = literal_column("tickets.search_vector").op("@@")(tsquery)
    in_comments = select(TicketComment.ticket_id).where(
        literal_column("ticket_comments.search_vector").op("@@")(tsquery))
    if not include_internal:
        in_comments = in_comments.where(TicketComment.internal.is_(False))
    return query.where(or_(in_ticket, Ticket.id.in_(in_comments)))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


_TICKETS = Ticket.__table__
_ROW_TIMES = ("created_at", "updated_at", "resolution_due", "paused_at")
# What a row of the HTML list shows (display.list_rows) and sorts by: plain rows, no ORM objects. Times come
# through the plain DateTime type, naive on SQLite (UTC, as stored), without UTCDateTime's Python call per
# value (a hundred a page); _sort_values makes the cursor's aware again.
_ROW_COLUMNS = tuple(
    type_coerce(_TICKETS.c[name], DateTime(timezone=True)).label(name) if name in _ROW_TIMES else _TICKETS.c[name]
    for name in ("id", "title", "status", "priority", "priority_rank", "is_open", "team_id", "category_id",
                 "created_at", "updated_at", "resolution_due", "paused_at", "response_breached", "resolution_breached"))
_REQUESTER = User.__table__.alias("requester")
_ASSIGNEE = User.__table__.alias("assignee")


def _is_open(filters: TicketFilters):
    """`is_open IS 1`; on SQLite, for the open queue of one category, `+is_open IS 1`, which the planner cannot
    match to an index. Without ANALYZE statistics it otherwise walks the open tickets' index testing each
    row's category (0.9 ms a page at 1M tickets) instead of the category's own index (0.1 ms)."""
    if (filters.queue == Queue.OPEN.value and filters.category_id is not None and _uses_search_index()
            and filters.sort in ("-created", "created") and not search_terms(filters.q)
            and not (filters.status or filters.team_id or filters.assignee or filters.requester
                     or filters.requester_id is not None or filters.asset_id is not None)):
        return literal_column("+tickets.is_open", Boolean).is_(True)
    return Ticket.is_open.is_(True)


def ticket_query(filters: TicketFilters, *, last_word_prefix: bool = False, rows: bool = False) -> Select:
    """Tickets matching `filters`, with requester and assignee loaded in the same query. Unordered.

    `last_word_prefix`: the search's last word also matches words it begins (see ticket_page).
    `rows`: plain rows of _ROW_COLUMNS with requester_name and assignee_name instead of Ticket objects
    (the HTML list: building 25 Tickets and 50 Users cost more than the rest of the page's query)."""
    # Lists never show the description or the rating comment (the API's list rows leave them out too).
    query = select(*_ROW_COLUMNS) if rows else select(Ticket).options(
        joinedload(Ticket.requester), joinedload(Ticket.assignee), defer(Ticket.body), defer(Ticket.rating_comment))
    queue = Queue(filters.queue)
    if queue != Queue.ALL:
        query = query.where(_is_open(filters))
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
        query = _search(query, words, include_internal=filters.include_internal, last_word_prefix=last_word_prefix,
                        few_tickets=_few_tickets(filters))
    if rows:  # the same outer joins, after the search's, as joinedload writes them: the same query plan
        query = query.outerjoin(_REQUESTER, _REQUESTER.c.id == _TICKETS.c.requester_id).outerjoin(
            _ASSIGNEE, _ASSIGNEE.c.id == _TICKETS.c.assignee_id).add_columns(
            _REQUESTER.c.display_name.label("requester_name"), _ASSIGNEE.c.display_name.label("assignee_name"))
    return query


def sort_of(filters: TicketFilters):
    """The page's sort columns for ticket_query(filters), each with whether it descends."""
    if (search_terms(filters.q) and _uses_search_index() and not _few_tickets(filters)
            and filters.sort in _SEARCH_SORTS):
        return _SEARCH_SORTS[filters.sort]
    return _SORT_COLUMNS[filters.sort]


def _sort_values(ticket: Ticket, sort) -> list:
    values = [ticket.id if column is _SEARCH_ROWID else getattr(ticket, column.key) for column, _ in sort]
    return [value.replace(tzinfo=timezone.utc) if isinstance(value, datetime) and value.tzinfo is None else value
            for value in values]  # a list row's naive UTC times (_ROW_COLUMNS)


def ticket_page(filters: TicketFilters, *, cursor: str | None = None, limit: int = DEFAULT_PAGE_SIZE,
                rows: bool = False) -> Page:
    """One page (of Tickets, or of ticket_query's plain rows); a search whose last word matches nothing
    whole is run again with it as a prefix.

    The later pages of such a search find nothing whole either, so they take the same path."""
    filters = filters.validated()
    sort = sort_of(filters)

    def page(last_word_prefix: bool) -> Page:
        return keyset_page(ticket_query(filters, last_word_prefix=last_word_prefix, rows=rows), sort, cursor=cursor,
                           limit=limit, key=lambda ticket: _sort_values(ticket, sort), rows=rows)

    found = page(last_word_prefix=False)
    if not found.items and _may_be_a_prefix(search_terms(filters.q)):
        found = page(last_word_prefix=True)
    return found
