"""/api/v1/tickets: the helpdesk over JSON. Employees see and act on their own tickets only; IT staff
work the queues. Each call parses its input with a schema and hands it to one service, which holds
the rules; the list goes through queries.ticket_page, the same query path as the HTML list."""
from __future__ import annotations

from dataclasses import replace

from flask_login import current_user
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from itops.assets import services as assets_services
from itops.monitoring import services as monitoring_services
from itops.core.auth import services as auth_services
from itops.core.errors import Forbidden, NotFound, ValidationFailed
from itops.core.policy import Role, require_area, require_role
from itops.tickets import attachments, queries, schemas, services
from itops.tickets.choices import TRANSITIONS, Queue, Source, TicketStatus
from itops.tickets.models import Ticket, TicketComment

# Fields only IT staff may send; a requester sending one gets a 403 naming it (the services refuse too).
STAFF_ONLY_ON_CREATE = ("requester", "priority")
STAFF_ONLY_ON_UPDATE = ("priority", "assignee", "team_id")
# A download is never rendered by the browser: no scripts, no plugins, no same-origin access.


class _Parser(FlaskParser):
    """Adds the `form_and_files` location: a multipart body's fields and files read by one schema."""
    __location_map__ = dict(form_and_files="load_form_and_files", **FlaskParser.__location_map__)

    def load_form_and_files(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class _Blueprint(Blueprint):
    ARGUMENTS_PARSER = _Parser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {**Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
                                             "form_and_files": "multipart/form-data"}


blp = _Blueprint("tickets_api", __name__, url_prefix="/api/v1/tickets",
                 description="Helpdesk tickets: filing, queues, conversation, attachments, SLA. Employees see "
                             "only their own tickets.")


# --- helpers --------------------------------------------------------------------------------------

def _refuse_staff_fields(sent: list[str]) -> None:
    if sent and not services.is_staff(current_user):
        raise Forbidden(f"Your role may not set: {', '.join(sent)}. Only IT staff set these fields.")


def _person(username: str, field: str):
    user = auth_services.find_user(username)
    if user is None or not user.active:
        raise ValidationFailed(f"No active person with username {username!r}.",
                               errors={field: ["Unknown or disabled username."]})
    return user


def _asset_summary(ticket: Ticket) -> dict | None:
    if ticket.asset_id is None:
        return None
    asset = assets_services.get_asset(ticket.asset_id)
    holder = asset.holder
    show_holder = holder is not None and (services.is_staff(current_user) or holder.id == current_user.id)
    return {"id": asset.id, "tag": asset.tag, "name": asset.name, "kind": asset.kind, "status": asset.status,
            "holder": holder.username if show_holder else None}


def _allowed_next(ticket: Ticket) -> list[str]:
    moves = TRANSITIONS[ticket.status_enum]
    if not services.is_staff(current_user):
        moves = tuple(m for m in moves if m == TicketStatus.CLOSED)
    return [m.value for m in moves]


def _asset_health(ticket: Ticket) -> dict | None:
    """The linked device's monitoring health, for IT staff (requesters see the asset, not its monitoring)."""
    if ticket.asset_id is None or not services.is_staff(current_user):
        return None
    health = monitoring_services.current_health(ticket.asset_id)
    return {"state": health.state, "since": health.changed_at, "flapping": health.flapping} if health else None


def _detail(ticket: Ticket) -> Ticket:
    """The ticket with what the detail schema adds for this caller (not stored)."""
    ticket.asset_summary = _asset_summary(ticket)
    ticket.asset_health_summary = _asset_health(ticket)
    ticket.allowed_next_statuses = _allowed_next(ticket)
    return ticket


# --- tickets --------------------------------------------------------------------------------------

@blp.get("")
@blp.arguments(schemas.TicketListQuerySchema(), location="query")
@blp.response(200, schemas.TicketPageSchema)
@require_area("tickets")
def list_tickets(args):
    """Tickets matching the filters and search, a page at a time (employees: only their own)."""
    cursor, limit = args.pop("cursor"), args.pop("limit")
    filters = queries.TicketFilters(**args)
    if services.is_staff(current_user):
        team_ids = tuple(services.team_ids_of(current_user)) if filters.queue == Queue.TEAM.value else ()
        filters = replace(filters, viewer_id=current_user.id, viewer_team_ids=team_ids)
    else:
        filters = filters.for_requester(current_user)
    page = queries.ticket_page(filters, cursor=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@blp.post("")
@blp.arguments(schemas.TicketCreateSchema())
@blp.response(201, schemas.TicketDetailSchema)
@blp.alt_response(403, description="A requester sent a field only IT staff may set.")
@require_area("tickets")
def create_ticket(body):
    """File a ticket; impact and urgency give the priority (IT staff may file for others and set it)."""
    _refuse_staff_fields([name for name in STAFF_ONLY_ON_CREATE if body[name] is not None])
    requester = _person(body["requester"], "requester") if body["requester"] else current_user
    try:
        ticket = services.create_ticket(requester, title=body["title"], body=body["body"],
                                        category_id=body["category_id"], impact=body["impact"],
                                        urgency=body["urgency"], asset_id=body["asset_id"], priority=body["priority"],
                                        by=current_user, source=Source.API)
    except NotFound as exc:  # the asset: unknown, or not the requester's. Bad input here, not a missing URL.
        if body["asset_id"] is None:
            raise
        raise ValidationFailed(exc.detail, errors={"asset_id": ["Not an asset the requester holds."]}) from None
    return _detail(ticket)


@blp.get("/<int:ticket_id>")
@blp.response(200, schemas.TicketDetailSchema)
@blp.alt_response(404, description="No such ticket, or not one the caller may see.")
@require_area("tickets")
def get_ticket(ticket_id):
    """One ticket with its SLA times, people, team, category and linked asset."""
    return _detail(services.get_ticket_for(current_user, ticket_id))


@blp.patch("/<int:ticket_id>")
@blp.arguments(schemas.TicketUpdateSchema())
@blp.response(200, schemas.TicketDetailSchema)
@blp.alt_response(403, description="A field or status the caller's role may not set.")
@blp.alt_response(409, description="The status change is not allowed from the current status.")
@require_area("tickets")
def update_ticket(body, ticket_id):
    """Change status, priority, assignee or team (requesters: close their own ticket only)."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    _refuse_staff_fields([name for name in STAFF_ONLY_ON_UPDATE if name in body])  # null counts: it unassigns
    if body.get("priority"):
        services.set_priority(ticket, body["priority"], by=current_user)
    if "assignee" in body or "team_id" in body:
        assignee_id, team_id = ticket.assignee_id, ticket.team_id
        if "assignee" in body:
            assignee_id = _person(body["assignee"], "assignee").id if body["assignee"] else None
        if "team_id" in body:
            team_id = body["team_id"]
        try:
            services.assign(ticket, assignee_id=assignee_id, team_id=team_id, by=current_user)
        except ValidationFailed as exc:  # name the field as the client sent it
            if exc.errors and "assignee_id" in exc.errors:
                exc.errors = {"assignee": exc.errors["assignee_id"]}
            raise
    if body.get("status"):
        services.change_status(ticket, body["status"], by=current_user)
    return _detail(ticket)


@blp.post("/<int:ticket_id>/merge")
@blp.arguments(schemas.TicketMergeSchema())
@blp.response(200, schemas.TicketDetailSchema)
@blp.alt_response(409, description="The target is not open, or this ticket is already closed.")
@require_role(Role.IT_STAFF)
def merge_ticket(body, ticket_id):
    """Merge this duplicate into another ticket (IT staff); this one is closed, the other is returned."""
    duplicate = services.get_ticket(ticket_id)
    try:
        into = services.get_ticket(body["into"])
    except NotFound:
        raise ValidationFailed("No such ticket to merge into.", errors={"into": ["No such ticket."]}) from None
    return _detail(services.merge(duplicate, into, by=current_user))


@blp.post("/<int:ticket_id>/rating")
@blp.arguments(schemas.TicketRatingSchema())
@blp.response(200, schemas.TicketDetailSchema)
@blp.alt_response(409, description="Not resolved yet, or already rated.")
@require_area("tickets")
def rate_ticket(body, ticket_id):
    """Rate the resolution from 1 to 5 with an optional comment (the requester, once resolved)."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    return _detail(services.rate(ticket, by=current_user, rating=body["rating"], comment=body["comment"]))


# --- conversation -----------------------------------------------------------------------------

@blp.get("/<int:ticket_id>/comments")
@blp.response(200, schemas.TicketCommentSchema(many=True))
@require_area("tickets")
def list_comments(ticket_id):
    """The comments, oldest first; requesters never see internal notes."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    return [item for item in services.conversation(ticket, current_user) if isinstance(item, TicketComment)]


@blp.post("/<int:ticket_id>/comments")
@blp.arguments(schemas.TicketCommentCreateSchema())
@blp.response(201, schemas.TicketCommentSchema)
@blp.alt_response(403, description="An internal note from someone who is not IT staff.")
@blp.alt_response(409, description="The ticket is closed (or resolved too long ago to reopen).")
@require_area("tickets")
def add_comment(body, ticket_id):
    """Reply publicly, or (IT staff) add an internal note; a requester's reply reopens a resolved ticket."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    return services.add_comment(ticket, current_user, body["body"], internal=body["internal"])


# --- attachments ------------------------------------------------------------------------------

@blp.get("/<int:ticket_id>/attachments")
@blp.response(200, schemas.TicketAttachmentSchema(many=True))
@require_area("tickets")
def list_attachments(ticket_id):
    """The ticket's files (requesters: not those on internal notes)."""
    return services.attachments_of(services.get_ticket_for(current_user, ticket_id), current_user)


@blp.post("/<int:ticket_id>/attachments")
@blp.arguments(schemas.TicketAttachmentUploadSchema(), location="form_and_files")
@blp.response(201, schemas.TicketAttachmentSchema(many=True))
@blp.alt_response(409, description="The ticket is closed.")
@blp.alt_response(413, description="The request body is larger than the server accepts.")
@require_area("tickets")
def upload_attachments(args, ticket_id):
    """Attach files (multipart field `file`); the type is checked by content, the size limited."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    uploads = [services.Upload(stream=item.stream, filename=item.filename or "") for item in args["file"]]
    return services.attach_files(ticket, uploads, by=current_user, comment_id=args["comment_id"])


@blp.get("/<int:ticket_id>/attachments/<int:attachment_id>")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
              description="The file, always as a download (Content-Disposition: attachment).")
@blp.alt_response(404, description="No such attachment on a ticket the caller may see.")
@require_area("tickets")
def download_attachment(ticket_id, attachment_id):
    """Download one file, never rendered inline."""
    return attachments.download_response(services.get_attachment_for(current_user, ticket_id, attachment_id))
