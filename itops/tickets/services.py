"""The helpdesk's operations; the only module other domains import. Services add and flush, never commit.

Who may do what is decided here as well as on the routes, so the browser, the API and the CLI
apply the same rules: requesters act on their own tickets only and never see internal notes.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from itops.assets import services as assets_services
from itops.core import audit, outbox
from itops.core.auth.models import User
from itops.core.database import insert_now, utcnow
from itops.core.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed, found
from itops.core.policy import Role, has_role
from itops.extensions import db
from itops.tickets import attachments, sla
from itops.tickets.choices import (
    BODY_MAX, DEFAULT_SLA_TARGETS, TITLE_MAX, TRANSITIONS, EventKind, Level, Priority, Source, TicketStatus,
    priority_for,
)
from itops.tickets.models import (
    Attachment, CannedResponse, Category, Team, Ticket, TicketComment, TicketEvent, team_members,
)

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 10
MAX_BULK = 200


class InvalidTransition(DomainError):
    status = 409
    title = "Status change not allowed"


def is_staff(user: User) -> bool:
    return has_role(user, {Role.IT_STAFF})


@dataclass(frozen=True)
class Upload:
    """A file handed to a service: the stream and the name the uploader gave it."""
    stream: BinaryIO
    filename: str


# --- reading -----------------------------------------------------------------------------------

def get_ticket(ticket_id: int) -> Ticket:
    return found(db.session.get(Ticket, ticket_id), "ticket")


def get_ticket_for(user: User, ticket_id: int) -> Ticket:
    """A ticket the user may see: IT staff see all, a requester their own; anyone else gets 404."""
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or not (is_staff(user) or ticket.requester_id == user.id):
        raise NotFound("No such ticket.")
    return ticket


def conversation(ticket: Ticket, viewer: User) -> list:
    """Comments and activity in time order; a requester sees neither internal notes nor internal events."""
    staff = is_staff(viewer)
    comments = select(TicketComment).where(TicketComment.ticket_id == ticket.id)
    events = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    if not staff:
        comments = comments.where(TicketComment.internal.is_(False))
        events = events.where(TicketEvent.public.is_(True))
    items = list(db.session.scalars(comments)) + list(db.session.scalars(events))
    return sorted(items, key=lambda item: (getattr(item, "created_at", None) or item.at, item.id))


def attachments_of(ticket: Ticket, viewer: User) -> list[Attachment]:
    query = select(Attachment).where(Attachment.ticket_id == ticket.id).order_by(Attachment.id)
    if not is_staff(viewer):
        internal_ids = select(TicketComment.id).where(TicketComment.ticket_id == ticket.id,
                                                      TicketComment.internal.is_(True))
        query = query.where((Attachment.comment_id.is_(None)) | Attachment.comment_id.not_in(internal_ids))
    return list(db.session.scalars(query))


def get_attachment_for(user: User, ticket_id: int, attachment_id: int) -> Attachment:
    ticket = get_ticket_for(user, ticket_id)
    for item in attachments_of(ticket, user):
        if item.id == attachment_id:
            return item
    raise NotFound("No such attachment.")


# --- configuration: teams, categories, canned responses -----------------------------------------

def categories(active_only: bool = True) -> list[Category]:
    query = select(Category).order_by(Category.name)
    return list(db.session.scalars(query.where(Category.active.is_(True)) if active_only else query))


def category_named(name: str | None) -> int | None:
    """The id of the active category with this name (any case), for work that files tickets by setting."""
    wanted = (name or "").strip().lower()
    return next((c.id for c in categories() if c.name.lower() == wanted), None) if wanted else None


def teams(active_only: bool = True) -> list[Team]:
    query = select(Team).order_by(Team.name)
    return list(db.session.scalars(query.where(Team.active.is_(True)) if active_only else query))


def staff_people() -> list[User]:
    return list(db.session.scalars(select(User).where(User.active.is_(True), User.role.in_(
        [Role.IT_STAFF.value, Role.ADMIN.value])).order_by(User.username)))


def team_ids_of(user: User) -> list[int]:
    return list(db.session.scalars(select(team_members.c.team_id).where(team_members.c.user_id == user.id)))


def _name(value: str, what: str, limit: int = 100) -> str:
    value = (value or "").strip()
    if not value or len(value) > limit:
        raise ValidationFailed(f"Give the {what} a name of 1 to {limit} characters.", errors={"name": ["Required."]})
    return value


def save_team(name: str, *, email: str | None, member_ids: list[int], active: bool = True, team: Team | None = None,
              by) -> Team:
    name = _name(name, "team")
    clash = db.session.scalar(select(Team.id).where(Team.name == name))
    if clash and (team is None or clash != team.id):
        raise Conflict(f"A team named {name!r} already exists.")
    members = list(db.session.scalars(select(User).where(User.id.in_(member_ids)))) if member_ids else []
    if any(not is_staff(m) for m in members):
        raise ValidationFailed("Only IT staff and administrators can be team members.")
    team = team or Team()
    team.name, team.email, team.active, team.members = name, (email or "").strip() or None, active, members
    db.session.add(team)
    db.session.flush()
    audit.record("team.save", "team", team.id, summary=f"team {name!r} saved with {len(members)} members", actor=by)
    return team


def save_category(name: str, *, default_team_id: int | None, default_assignee_id: int | None, active: bool = True,
                  category: Category | None = None, by) -> Category:
    name = _name(name, "category")
    clash = db.session.scalar(select(Category.id).where(Category.name == name))
    if clash and (category is None or clash != category.id):
        raise Conflict(f"A category named {name!r} already exists.")
    if default_assignee_id and not is_staff(db.session.get(User, default_assignee_id) or User(role="employee")):
        raise ValidationFailed("The default assignee must be IT staff.")
    category = category or Category()
    category.name, category.active = name, active
    category.default_team_id, category.default_assignee_id = default_team_id or None, default_assignee_id or None
    db.session.add(category)
    db.session.flush()
    audit.record("category.save", "ticket_category", category.id, summary=f"ticket category {name!r} saved", actor=by)
    return category


def canned_responses(active_only: bool = True) -> list[CannedResponse]:
    query = select(CannedResponse).order_by(CannedResponse.title)
    return list(db.session.scalars(query.where(CannedResponse.active.is_(True)) if active_only else query))


def save_canned_response(title: str, body: str, *, active: bool = True, canned: CannedResponse | None = None,
                         by) -> CannedResponse:
    title = _name(title, "canned response")
    if not (body or "").strip():
        raise ValidationFailed("A canned response needs a text.", errors={"body": ["Required."]})
    clash = db.session.scalar(select(CannedResponse.id).where(CannedResponse.title == title))
    if clash and (canned is None or clash != canned.id):
        raise Conflict(f"A canned response titled {title!r} already exists.")
    canned = canned or CannedResponse()
    canned.title, canned.body, canned.active = title, body.strip(), active
    db.session.add(canned)
    db.session.flush()
    audit.record("canned.save", "canned_response", canned.id, summary=f"canned response {title!r} saved", actor=by)
    return canned


class _KeepUnknown(dict):
    def __missing__(self, key):
        return "{" + key + "}"


PLACEHOLDERS = ("requester_name", "requester_first_name", "ticket_number", "ticket_title", "agent_name")


def render_canned(canned: CannedResponse, ticket: Ticket, agent: User) -> str:
    """Fill {requester_name}, {ticket_number}, ... ; unknown or malformed placeholders stay as typed."""
    values = _KeepUnknown(requester_name=ticket.requester.display_name,
                          requester_first_name=ticket.requester.display_name.split(" ")[0],
                          ticket_number=ticket.number, ticket_title=ticket.title, agent_name=agent.display_name)
    try:
        return canned.body.format_map(values)
    except (ValueError, IndexError, AttributeError):
        return canned.body


# --- SLA -----------------------------------------------------------------------------------------

def calendar() -> sla.BusinessCalendar:
    return sla.BusinessCalendar.from_config(current_app.config)


def sla_targets() -> dict[Priority, tuple[int, int]]:
    """(first response, resolution) business minutes per priority; ITOPS_SLA_TARGETS may override."""
    overrides = current_app.config.get("ITOPS_SLA_TARGETS") or {}
    return DEFAULT_SLA_TARGETS | {Priority(name): minutes for name, minutes in overrides.items()}


def _set_due_times(ticket: Ticket) -> None:
    response, resolution = sla_targets()[Priority(ticket.priority)]
    cal = calendar()
    ticket.first_response_due = sla.add_business_minutes(cal, ticket.created_at, response + ticket.paused_minutes)
    ticket.resolution_due = sla.add_business_minutes(cal, ticket.created_at, resolution + ticket.paused_minutes)


def sweep_breaches(now: datetime | None = None) -> int:
    """Flag open tickets past a due time (paused ones are not counted); breaches stay flagged."""
    now = now or utcnow()
    flagged = 0
    late = select(Ticket).where(Ticket.is_open.is_(True), Ticket.status != TicketStatus.PENDING.value,
                                ((Ticket.first_response_at.is_(None) & Ticket.response_breached.is_(False)
                                  & (Ticket.first_response_due < now))
                                 | (Ticket.resolution_breached.is_(False) & (Ticket.resolution_due < now))))
    for ticket in db.session.scalars(late):
        what = []
        if ticket.first_response_at is None and not ticket.response_breached and ticket.first_response_due < now:
            ticket.response_breached = True
            what.append("first response")
        if not ticket.resolution_breached and ticket.resolution_due < now:
            ticket.resolution_breached = True
            what.append("resolution")
        _event(ticket, EventKind.BREACHED, "system", f"SLA breached: {' and '.join(what)} overdue", public=False)
        flagged += 1
    return flagged


# --- notifications -------------------------------------------------------------------------------

def ticket_url(ticket: Ticket) -> str:
    # Built by hand, not url_for: mails are also queued by the CLI and the scheduler, outside any request.
    return f"{current_app.config['ITOPS_BASE_URL'].rstrip('/')}/tickets/{ticket.id}"


def _mail(to: str | None, ticket: Ticket, subject: str, body: str, key: str, into: list | None = None) -> None:
    """Queue a notice now, or add it to `into` for one insert with others (filing many tickets)."""
    if not to:
        return
    try:
        message = outbox.message(to, f"[itops {ticket.number}] {subject}"[:250],
                                 f"{body}\n\n{ticket.number}: {ticket.title}\n{ticket_url(ticket)}\n",
                                 dedup_key=f"ticket:{ticket.id}:{key}:{to}"[:200])
    except ValidationFailed:
        # A person with an unusable address must not stop the ticket change; the mail is skipped.
        log.warning("ticket %s: not mailing %r: the address is not usable", ticket.id, to)
        return
    if into is None:
        outbox.queue_many([message])
    else:
        into.append(message)


def _notify_team(ticket: Ticket, subject: str, body: str, key: str, into: list | None = None) -> None:
    if ticket.assignee is not None:
        _mail(ticket.assignee.email, ticket, subject, body, key, into)
    elif ticket.team is not None:
        recipients = [ticket.team.email] if ticket.team.email else [m.email for m in ticket.team.members]
        for address in filter(None, recipients):
            _mail(address, ticket, subject, body, key, into)


# --- events --------------------------------------------------------------------------------------

def _event(ticket: Ticket, kind: EventKind, by, summary: str, *, public: bool = True,
           at: datetime | None = None) -> TicketEvent:
    """An activity line; the ticket counts as updated at its time (a new ticket's: no UPDATE)."""
    at = at or utcnow()
    event = TicketEvent(**_event_values(ticket.id, kind, by, summary, public=public, at=at))
    db.session.add(event)
    if ticket.updated_at != at:  # a new ticket's first line has its time already: nothing to update
        ticket.updated_at = at
    return event


def _event_values(ticket_id: int, kind: EventKind, by, summary: str, *, public: bool = True, at: datetime) -> dict:
    return dict(ticket_id=ticket_id, at=at, kind=kind.value, actor_id=getattr(by, "id", None),
                actor_label=audit.actor_label(by), summary=summary[:500], public=public)


# --- creating ------------------------------------------------------------------------------------

def _text(value: str, what: str, limit: int) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationFailed(f"The {what} is empty.", errors={what: ["Required."]})
    if len(value) > limit:
        raise ValidationFailed(f"The {what} is longer than {limit} characters.", errors={what: [f"At most {limit}."]})
    return value


def _attach(ticket: Ticket, uploads: list[Upload], by: User, comment: TicketComment | None = None) -> list[Attachment]:
    uploads = [u for u in uploads if u.filename]
    if len(uploads) > MAX_ATTACHMENTS:
        raise ValidationFailed(f"Attach at most {MAX_ATTACHMENTS} files at a time.")
    saved = []
    for upload in uploads:
        stored = attachments.store(upload.stream, upload.filename)
        attachments.track_until_commit(db.session, stored.storage_name)
        item = Attachment(ticket_id=ticket.id, comment=comment, uploaded_by_id=by.id, filename=stored.filename,
                          content_type=stored.content_type, size=stored.size, sha256=stored.sha256,
                          storage_name=stored.storage_name)
        db.session.add(item)
        saved.append(item)
    return saved


def create_ticket(requester: User, *, title: str, body: str, category_id: int | None, impact: str, urgency: str,
                  asset_id: int | None = None, uploads: list[Upload] = (), by: User, source: Source = Source.WEB,
                  priority: str | None = None, dedup_key: str | None = None) -> Ticket:
    """File a ticket. The requester's role decides what they may set: priority is staff-only."""
    ticket = _new_ticket(requester, title=title, body=body, category_id=category_id, impact=impact, urgency=urgency,
                         asset_id=asset_id, by=by, source=source, priority=priority, dedup_key=dedup_key)
    if dedup_key and taken_dedup_keys([dedup_key]):
        raise Conflict("A ticket for this already exists.")
    _file([(ticket, by)], uploads=uploads)
    return ticket


@dataclass(frozen=True)
class NewTicket:
    """A ticket that system work (a batch of joiners) files for `requester`, who files it (`by`) too."""
    requester: User
    title: str
    body: str
    dedup_key: str | None = None
    category_id: int | None = None
    impact: str = Level.MEDIUM.value
    urgency: str = Level.MEDIUM.value


def file_tickets(new: list[NewTicket], *, source: Source, acknowledge: bool = True) -> list[Ticket | None]:
    """File many tickets as `create_ticket` files one, in a few statements for all of them. A ticket whose
    dedup key is already taken is not filed again: None in its place. `acknowledge=False`: the requester
    is not mailed "we have your request" (work filed on their behalf, such as HR's joiners)."""
    taken = taken_dedup_keys([n.dedup_key for n in new if n.dedup_key])
    now, due_times = utcnow(), {}
    tickets = [None if n.dedup_key in taken else
               _new_ticket(n.requester, title=n.title, body=n.body, category_id=n.category_id, impact=n.impact,
                           urgency=n.urgency, by=n.requester, source=source, dedup_key=n.dedup_key, now=now,
                           due_times=due_times)
               for n in new]
    filings = [(t, t.requester) for t in tickets if t is not None]
    if filings:
        _file(filings, acknowledge=acknowledge)
    return tickets


def _new_ticket(requester: User, *, title: str, body: str, category_id: int | None, impact: str, urgency: str,
                by: User, source: Source, asset_id: int | None = None, priority: str | None = None,
                dedup_key: str | None = None, now: datetime | None = None, due_times: dict | None = None) -> Ticket:
    """A checked, unsaved ticket. `due_times` keeps the SLA due times of tickets filed at the same `now`."""
    title, body = _text(title, "title", TITLE_MAX), _text(body, "body", BODY_MAX)
    try:
        impact_level, urgency_level = Level(impact), Level(urgency)
    except ValueError:
        raise ValidationFailed("Impact and urgency are high, medium or low.",
                               errors={"impact": ["high, medium or low"], "urgency": ["high, medium or low"]}) from None
    if priority and not is_staff(by):
        raise Forbidden("Only IT staff set a priority directly; choose impact and urgency instead.")
    if requester.id != by.id and not is_staff(by):
        raise Forbidden("Only IT staff file tickets on someone else's behalf.")
    category = None
    if category_id is not None:
        category = db.session.get(Category, category_id, options=_category_routing())
        if category is None or not category.active:
            raise ValidationFailed("Unknown category.", errors={"category_id": ["Choose a listed category."]})
    asset = None
    if asset_id is not None:
        # A requester links only what they hold; IT staff may link any asset.
        asset = assets_services.get_asset_for(by if is_staff(by) else requester, asset_id)
    chosen = Priority(priority) if priority else priority_for(impact_level, urgency_level)
    now = now or utcnow()
    ticket = Ticket(title=title, body=body, requester=requester, category=category, asset_id=asset.id if asset else None,
                    impact=impact_level.value, urgency=urgency_level.value, priority=chosen.value,
                    priority_rank=chosen.rank, status=TicketStatus.NEW.value, is_open=True, source=Source(source).value,
                    dedup_key=dedup_key, team=category.default_team if category else None,
                    assignee=category.default_assignee if category else None, paused_minutes=0, created_at=now,
                    updated_at=now, response_breached=False, resolution_breached=False)
    if due_times is None:
        _set_due_times(ticket)
    else:
        if chosen not in due_times:
            _set_due_times(ticket)
            due_times[chosen] = ticket.first_response_due, ticket.resolution_due
        ticket.first_response_due, ticket.resolution_due = due_times[chosen]
    return ticket


@functools.cache
def _category_routing() -> tuple:
    """Load a category with the team and assignee it routes to, which a new ticket's notices need: one query.
    Built once (building them cost more than running the query); a batch of tickets finds the category in the
    session after the first."""
    return joinedload(Category.default_team), joinedload(Category.default_assignee)


def _file(filings: list[tuple[Ticket, User]], *, uploads: list[Upload] = (), acknowledge: bool = True) -> None:
    """Write new tickets, each with who files it (one INSERT for all), with their first activity line,
    audit entry and notices."""
    insert_now(db.session, Ticket, [ticket for ticket, _ in filings])  # the ids, for what follows
    mails: list[dict] = []
    events, entries = [], []
    for ticket, by in filings:
        requester, chosen = ticket.requester, Priority(ticket.priority)
        if uploads:
            _attach(ticket, list(uploads), by)
        # Rows written at once (the ticket is), not objects for the session's next flush: cheaper by far.
        events.append(_event_values(ticket.id, EventKind.CREATED, by, f"filed by {requester.display_name} "
                                    f"({chosen.label} priority)", at=ticket.created_at))
        entries.append(audit.values("ticket.create", "ticket", ticket.id, actor=by,
                                    summary=f"ticket {ticket.number} filed: {ticket.title}"))
        _mail(requester.email if acknowledge else None, ticket, "We have your request",
              f"Hello {requester.display_name},\n\nwe received your request and will answer by "
              f"{ticket.first_response_due:%Y-%m-%d %H:%M} UTC.", "created", mails)
        _notify_team(ticket, "New ticket", f"{requester.display_name} filed a {chosen.label.lower()} priority "
                     f"ticket:\n\n{ticket.body[:2000]}", "created-team", mails)
    db.session.connection().execute(TicketEvent.__table__.insert(), events)
    audit.record_many(entries)
    outbox.queue_many(mails)


def find_by_dedup_key(key: str) -> Ticket | None:
    return db.session.scalar(select(Ticket).where(Ticket.dedup_key == key))


def taken_dedup_keys(keys: list[str]) -> set[str]:
    """Which of these dedup keys a ticket has already."""
    taken: set[str] = set()
    for start in range(0, len(keys), 500):
        taken.update(db.session.scalars(select(Ticket.dedup_key).where(Ticket.dedup_key.in_(keys[start:start + 500]))))
    return taken


# --- conversation --------------------------------------------------------------------------------

def _reopen_window_open(ticket: Ticket, now: datetime) -> bool:
    days = current_app.config["ITOPS_TICKET_REOPEN_DAYS"]
    return ticket.resolved_at is not None and now - ticket.resolved_at <= timedelta(days=days)


def add_comment(ticket: Ticket, author: User, body: str, *, internal: bool = False,
                uploads: list[Upload] = ()) -> TicketComment:
    """A public reply or an internal note. A requester replying to a resolved ticket reopens it, within
    the reopen window; a closed ticket takes no replies."""
    staff = is_staff(author)
    if not staff and ticket.requester_id != author.id:
        raise NotFound("No such ticket.")
    if internal and not staff:
        raise Forbidden("Only IT staff write internal notes.")
    body = _text(body, "body", BODY_MAX)
    status, now = ticket.status_enum, utcnow()
    if status == TicketStatus.CLOSED:
        raise Conflict(f"Ticket {ticket.number} is closed; file a new ticket instead.")
    if status == TicketStatus.RESOLVED and not staff and not _reopen_window_open(ticket, now):
        raise Conflict(f"Ticket {ticket.number} was resolved more than "
                       f"{current_app.config['ITOPS_TICKET_REOPEN_DAYS']} days ago; file a new ticket instead.")
    comment = TicketComment(ticket_id=ticket.id, author=author, body=body, internal=internal, created_at=now)
    db.session.add(comment)
    db.session.flush()
    _attach(ticket, list(uploads), author, comment)
    ticket.updated_at = now
    if internal:
        return comment
    if staff and author.id != ticket.requester_id:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        if status == TicketStatus.NEW:
            _move(ticket, TicketStatus.OPEN, author, "opened by the first reply")
        _mail(ticket.requester.email, ticket, "New reply", f"{author.display_name} wrote:\n\n{body}",
              f"reply:{comment.id}")
    else:
        if status in (TicketStatus.RESOLVED, TicketStatus.PENDING):
            _move(ticket, TicketStatus.OPEN, author, "reopened by the requester's reply" if status ==
                  TicketStatus.RESOLVED else "the requester answered")
        _notify_team(ticket, "The requester replied", f"{author.display_name} wrote:\n\n{body}",
                     f"reply:{comment.id}")
    return comment


def attach_files(ticket: Ticket, uploads: list[Upload], *, by: User, comment_id: int | None = None) -> list[Attachment]:
    """Add files to a ticket (optionally to one of its comments): its requester or IT staff, not once closed."""
    staff = is_staff(by)
    if not staff and ticket.requester_id != by.id:
        raise NotFound("No such ticket.")
    if ticket.status_enum == TicketStatus.CLOSED:
        raise Conflict(f"Ticket {ticket.number} is closed; file a new ticket instead.")
    comment = None
    if comment_id is not None:
        comment = db.session.get(TicketComment, comment_id)
        if comment is None or comment.ticket_id != ticket.id or (comment.internal and not staff):
            raise ValidationFailed("Unknown comment.", errors={"comment_id": ["Not a comment on this ticket."]})
    if not [u for u in uploads if u.filename]:
        raise ValidationFailed("Choose a file to attach.", errors={"file": ["Required."]})
    saved = _attach(ticket, list(uploads), by, comment)
    db.session.flush()
    ticket.updated_at = utcnow()
    audit.record("ticket.attach", "ticket", ticket.id, actor=by,
                 summary=f"{len(saved)} file(s) attached to {ticket.number}: " + ", ".join(a.filename for a in saved))
    return saved


# --- status, assignment, priority ---------------------------------------------------------------

def _move(ticket: Ticket, target: TicketStatus, by, reason: str | None = None) -> None:
    current, now = ticket.status_enum, utcnow()
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(s.label.lower() for s in TRANSITIONS[current]) or "none (it is closed)"
        raise InvalidTransition(f"Ticket {ticket.number} cannot go from {current.label.lower()} to "
                                f"{target.label.lower()}. Allowed next: {allowed}.")
    if current == TicketStatus.PENDING and ticket.paused_at is not None:
        ticket.paused_minutes += sla.business_minutes_between(calendar(), ticket.paused_at, now)
        ticket.paused_at = None
        _set_due_times(ticket)
    if target == TicketStatus.PENDING:
        ticket.paused_at = now
    if target == TicketStatus.RESOLVED:
        ticket.resolved_at = now
    if target == TicketStatus.OPEN and current == TicketStatus.RESOLVED:
        ticket.resolved_at = None
    if target == TicketStatus.CLOSED:
        ticket.closed_at = now
    ticket.status, ticket.is_open = target.value, target.is_open
    _event(ticket, EventKind.STATUS, by, f"{current.label} → {target.label}" + (f" ({reason})" if reason else ""))


def change_status(ticket: Ticket, target: TicketStatus | str, *, by: User) -> Ticket:
    """IT staff move tickets freely along TRANSITIONS; a requester may only close their own ticket."""
    target = TicketStatus(target)
    if not is_staff(by):
        if ticket.requester_id != by.id:
            raise NotFound("No such ticket.")
        if target != TicketStatus.CLOSED:
            raise Forbidden("You can close your ticket; IT staff change its other statuses.")
    _move(ticket, target, by)
    audit.record("ticket.status", "ticket", ticket.id, summary=f"{ticket.number} → {target.value}", actor=by)
    if target == TicketStatus.RESOLVED:
        _mail(ticket.requester.email, ticket, "Resolved",
              f"{by.display_name} marked your request as resolved. If it is not, reply within "
              f"{current_app.config['ITOPS_TICKET_REOPEN_DAYS']} days to reopen it; you can also rate the help you got.",
              f"resolved:{ticket.resolved_at:%Y%m%d%H%M%S}")
    return ticket


def resolve_by_workflow(ticket: Ticket, *, by, reason: str) -> Ticket:
    """Resolve a ticket that another domain's workflow has completed (a leaver's last asset is back).
    No staff check: the workflow that filed it decides when it is done."""
    if ticket.is_open:
        _move(ticket, TicketStatus.RESOLVED, by, reason)
        audit.record("ticket.status", "ticket", ticket.id, summary=f"{ticket.number} → resolved: {reason}", actor=by)
    return ticket


def assign(ticket: Ticket, *, assignee_id: int | None, team_id: int | None, by: User) -> Ticket:
    if not is_staff(by):
        raise Forbidden("Only IT staff assign tickets.")
    assignee = db.session.get(User, assignee_id) if assignee_id else None
    if assignee_id and (assignee is None or not assignee.active or not is_staff(assignee)):
        raise ValidationFailed("Assign to an active IT staff member.", errors={"assignee_id": ["Not IT staff."]})
    team = db.session.get(Team, team_id) if team_id else None
    if team_id and (team is None or not team.active):
        raise ValidationFailed("Unknown team.", errors={"team_id": ["Choose a listed team."]})
    if (ticket.assignee_id, ticket.team_id) == (assignee_id or None, team_id or None):
        return ticket
    ticket.assignee, ticket.team = assignee, team
    who = assignee.display_name if assignee else "nobody"
    _event(ticket, EventKind.ASSIGNED, by, f"assigned to {who}" + (f" in {team.name}" if team else ""), public=False)
    audit.record("ticket.assign", "ticket", ticket.id, summary=f"{ticket.number} assigned to "
                 f"{assignee.username if assignee else '-'} / {team.name if team else '-'}", actor=by)
    if assignee is not None and assignee.id != by.id:
        _mail(assignee.email, ticket, "Assigned to you", f"{by.display_name} assigned this ticket to you.",
              f"assigned:{assignee.id}:{utcnow():%Y%m%d%H%M%S}")
    return ticket


def set_priority(ticket: Ticket, priority: Priority | str, *, by: User) -> Ticket:
    if not is_staff(by):
        raise Forbidden("Only IT staff change the priority.")
    priority = Priority(priority)
    if priority.value == ticket.priority:
        return ticket
    old = ticket.priority_enum
    ticket.priority, ticket.priority_rank = priority.value, priority.rank
    _set_due_times(ticket)
    _event(ticket, EventKind.PRIORITY, by, f"priority {old.label} → {priority.label}")
    audit.record("ticket.priority", "ticket", ticket.id, summary=f"{ticket.number} priority {old} → {priority}",
                 actor=by)
    return ticket


def merge(duplicate: Ticket, into: Ticket, *, by: User) -> Ticket:
    """Close a duplicate in favour of another ticket; both say so, and the duplicate's requester is told."""
    if not is_staff(by):
        raise Forbidden("Only IT staff merge tickets.")
    if duplicate.id == into.id:
        raise ValidationFailed("A ticket cannot be merged into itself.")
    if into.merged_into_id is not None or not into.is_open:
        raise Conflict(f"Merge into an open ticket; {into.number} is {into.status_enum.label.lower()}.")
    if duplicate.status_enum == TicketStatus.CLOSED:
        raise Conflict(f"{duplicate.number} is already closed.")
    duplicate.merged_into_id = into.id
    _move(duplicate, TicketStatus.CLOSED, by, f"merged into {into.number}")
    _event(into, EventKind.MERGED, by, f"{duplicate.number} ({duplicate.title}) was merged into this ticket")
    db.session.add(TicketComment(ticket_id=into.id, author=by, internal=False, created_at=utcnow(),
                                 body=f"Merged from {duplicate.number} by {duplicate.requester.display_name}:\n\n"
                                      f"{duplicate.body}"))
    audit.record("ticket.merge", "ticket", duplicate.id, summary=f"{duplicate.number} merged into {into.number}",
                 actor=by)
    _mail(duplicate.requester.email, duplicate, f"Merged into {into.number}",
          f"Your request is being handled together with {into.number}.", f"merged:{into.id}")
    return into


def rate(ticket: Ticket, *, by: User, rating: int, comment: str | None) -> Ticket:
    if ticket.requester_id != by.id:
        raise NotFound("No such ticket.") if not is_staff(by) else Forbidden("Only the requester rates a ticket.")
    if ticket.resolved_at is None:  # still open, or closed without ever being resolved
        raise Conflict("You can rate a ticket once it is resolved.")
    if ticket.rating is not None:
        raise Conflict("You have already rated this ticket.")
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationFailed("Rate from 1 to 5.", errors={"rating": ["1 to 5."]})
    ticket.rating, ticket.rating_comment = rating, (comment or "").strip()[:2000] or None
    _event(ticket, EventKind.RATED, by, f"rated {rating}/5", public=True)
    return ticket


def auto_close(now: datetime | None = None) -> int:
    """Close tickets resolved more than ITOPS_TICKET_AUTOCLOSE_DAYS ago."""
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["ITOPS_TICKET_AUTOCLOSE_DAYS"])
    stale = db.session.scalars(select(Ticket).where(Ticket.status == TicketStatus.RESOLVED.value,
                                                    Ticket.resolved_at < cutoff))
    closed = 0
    for ticket in stale:
        _move(ticket, TicketStatus.CLOSED, "system", "closed automatically after resolution")
        closed += 1
    return closed


# --- bulk ---------------------------------------------------------------------------------------

def _selection(ticket_ids: list[int]) -> list[Ticket]:
    ids = sorted(set(ticket_ids))
    if not ids:
        raise ValidationFailed("Select at least one ticket.")
    if len(ids) > MAX_BULK:
        raise ValidationFailed(f"Select at most {MAX_BULK} tickets at a time.")
    tickets = list(db.session.scalars(select(Ticket).where(Ticket.id.in_(ids)).order_by(Ticket.id)))
    if len(tickets) != len(ids):
        raise NotFound("Some selected tickets no longer exist.")
    return tickets


def bulk_assign(ticket_ids: list[int], *, assignee_id: int | None, team_id: int | None, by: User) -> int:
    tickets = _selection(ticket_ids)
    for ticket in tickets:
        assign(ticket, assignee_id=assignee_id, team_id=team_id, by=by)
    return len(tickets)


def bulk_status(ticket_ids: list[int], target: str, *, by: User) -> int:
    """All or nothing: one ticket that may not move stops the whole change, naming it."""
    tickets = _selection(ticket_ids)
    for ticket in tickets:
        change_status(ticket, target, by=by)
    return len(tickets)



# --- the list page's choices (added for the browser list; one query) --------------------------------

@dataclass(frozen=True)
class ListChoices:
    """What the staff list's filter and bulk forms offer: (id, label, active) per kind."""
    categories: list[tuple[int, str, bool]]
    teams: list[tuple[int, str, bool]]
    staff: list[tuple[int, str, str]]        # (id, username, display name), active IT staff and admins
    my_team_ids: tuple[int, ...]


@functools.cache
def _list_choices_statement():
    """Built once: constructing this four-part union costs more than running it."""
    from sqlalchemy import bindparam, literal, union_all

    def part(kind: str, id_, label, extra, active):
        return select(literal(kind).label("kind"), id_.label("id"), label.label("label"), extra.label("extra"),
                      active.label("active"))

    none, yes = literal(""), literal(True)
    return union_all(
        part("category", Category.id, Category.name, none, Category.active),
        part("team", Team.id, Team.name, none, Team.active),
        part("staff", User.id, User.username, User.display_name, yes).where(
            User.active.is_(True), User.role.in_([Role.IT_STAFF.value, Role.ADMIN.value])),
        part("member", team_members.c.team_id, none, none, yes).where(
            team_members.c.user_id == bindparam("viewer_id")),
    )


def list_choices(viewer: User) -> ListChoices:
    """Categories, teams, staff people and the viewer's teams in ONE query: the list page costs at most 3."""
    rows = db.session.execute(_list_choices_statement(), {"viewer_id": viewer.id}).all()
    by_kind: dict[str, list] = {"category": [], "team": [], "staff": [], "member": []}
    for row in rows:
        by_kind[row.kind].append(row)
    return ListChoices(
        categories=sorted(((r.id, r.label, bool(r.active)) for r in by_kind["category"]), key=lambda c: c[1].lower()),
        teams=sorted(((r.id, r.label, bool(r.active)) for r in by_kind["team"]), key=lambda t: t[1].lower()),
        staff=sorted(((r.id, r.label, r.extra) for r in by_kind["staff"]), key=lambda s: s[1]),
        my_team_ids=tuple(sorted(r.id for r in by_kind["member"])))
