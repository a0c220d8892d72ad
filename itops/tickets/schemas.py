"""/api/v1/tickets input and output. Input schemas refuse unknown fields (marshmallow's default);
the services still hold every rule (who may set what, which moves are allowed)."""
from __future__ import annotations

from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from itops.tickets.choices import BODY_MAX, SORTS, TITLE_MAX, Level, Priority, Queue, TicketStatus
from itops.tickets.queries import DEFAULT_PAGE_SIZE, MIN_PREFIX
from itops.tickets.services import MAX_ATTACHMENTS

MAX_PAGE = 100
RATING_COMMENT_MAX = 2000
USERNAME_MAX = 64

_STATUSES = [s.value for s in TicketStatus]
_PRIORITIES = [p.value for p in Priority]
_LEVELS = [level.value for level in Level]


def _one_of(values, **kwargs):
    return fields.String(validate=validate.OneOf(values), **kwargs)  # apispec documents OneOf as an enum


def _id(**kwargs):
    """An id in a JSON body: a real integer, not "5" or 5.0."""
    return fields.Integer(strict=True, validate=validate.Range(min=1), **kwargs)


# --- input --------------------------------------------------------------------------------------

class TicketListQuerySchema(Schema):
    queue = _one_of([q.value for q in Queue], load_default=Queue.OPEN.value,
                    metadata={"description": "Staff views: unassigned, mine, team, open, breaching, all. "
                                             "Employees get open (the default) or all of their own."})
    q = fields.String(load_default=None, validate=validate.Length(max=200),
                      metadata={"description": "Full-text search over titles, bodies and comments: tickets "
                                               "with every word. Operators and quotes are ignored; when nothing "
                                               f"matches, the last word ({MIN_PREFIX} characters or more) matches "
                                               "as the beginning of a word."})
    status = _one_of(_STATUSES, load_default=None)
    priority = _one_of(_PRIORITIES, load_default=None)
    category_id = fields.Integer(load_default=None)
    team_id = fields.Integer(load_default=None)
    assignee = fields.String(load_default=None, validate=validate.Length(max=USERNAME_MAX),
                             metadata={"description": "Username of the assignee."})
    requester = fields.String(load_default=None, validate=validate.Length(max=USERNAME_MAX),
                              metadata={"description": "Username of the requester (ignored for employees)."})
    asset_id = fields.Integer(load_default=None)
    created_from = fields.Date(load_default=None, metadata={"description": "First day, inclusive (UTC)."})
    created_to = fields.Date(load_default=None, metadata={"description": "Last day, inclusive (UTC)."})
    updated_from = fields.Date(load_default=None)
    updated_to = fields.Date(load_default=None)
    sort = _one_of(list(SORTS), load_default="-created")
    cursor = fields.String(load_default=None, validate=validate.Length(max=500),
                           metadata={"description": "next_cursor from the previous page."})
    limit = fields.Integer(load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE))


class TicketCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(min=1, max=TITLE_MAX))
    body = fields.String(required=True, validate=validate.Length(min=1, max=BODY_MAX))
    category_id = _id(load_default=None, allow_none=True)
    impact = _one_of(_LEVELS, load_default=Level.MEDIUM.value,
                     metadata={"description": "How many people it hurts; with urgency it gives the priority."})
    urgency = _one_of(_LEVELS, load_default=Level.MEDIUM.value, metadata={"description": "How soon it hurts."})
    asset_id = _id(load_default=None, allow_none=True,
                   metadata={"description": "An asset the requester holds (IT staff: any asset)."})
    requester = fields.String(load_default=None, validate=validate.Length(min=1, max=USERNAME_MAX),
                              metadata={"description": "IT staff only: file on behalf of this username."})
    priority = _one_of(_PRIORITIES, load_default=None,
                       metadata={"description": "IT staff only: set the priority instead of deriving it."})


class TicketUpdateSchema(Schema):
    status = _one_of(_STATUSES, metadata={"description": "IT staff: any allowed move; the requester: closed only."})
    priority = _one_of(_PRIORITIES, metadata={"description": "IT staff only."})
    assignee = fields.String(allow_none=True, validate=validate.Length(min=1, max=USERNAME_MAX),
                             metadata={"description": "IT staff only: a staff username, or null to unassign."})
    team_id = _id(allow_none=True, metadata={"description": "IT staff only: a team id, or null."})

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Send at least one of: status, priority, assignee, team_id.", "_schema")


class TicketCommentCreateSchema(Schema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=BODY_MAX))
    internal = fields.Boolean(load_default=False,
                              metadata={"description": "An internal note, never shown or mailed to the requester "
                                                       "(IT staff only)."})


class TicketAttachmentUploadSchema(Schema):
    file = fields.List(Upload(), required=True, validate=validate.Length(min=1, max=MAX_ATTACHMENTS),
                       metadata={"description": f"The file; repeat the field for up to {MAX_ATTACHMENTS} files. "
                                                "The type is checked by content and must match the name."})
    comment_id = fields.Integer(load_default=None, validate=validate.Range(min=1),
                                metadata={"description": "Attach to this comment of the ticket."})


class TicketRatingSchema(Schema):
    rating = fields.Integer(strict=True, required=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=RATING_COMMENT_MAX))


class TicketMergeSchema(Schema):
    into = _id(required=True, metadata={"description": "The ticket that carries on; this one is closed."})


# --- output -------------------------------------------------------------------------------------

class TicketPersonSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()


class TicketNamedSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class TicketAssetSchema(Schema):
    id = fields.Integer()
    tag = fields.String()
    name = fields.String()
    kind = fields.String()
    status = fields.String()
    holder = fields.String(allow_none=True, metadata={"description": "Username of the holder (for the requester: "
                                                                     "only when it is them)."})


class TicketAssetHealthSchema(Schema):
    state = fields.String(metadata={"enum": ["down", "degraded", "unreachable", "unknown", "maintenance", "up"]})
    since = fields.DateTime()
    flapping = fields.Boolean()


class TicketSchema(Schema):
    """A list row: everything loaded by the list's one query."""
    id = fields.Integer()
    number = fields.String()
    title = fields.String()
    status = fields.String(metadata={"enum": _STATUSES})
    priority = fields.String(metadata={"enum": _PRIORITIES})
    impact = fields.String(metadata={"enum": _LEVELS})
    urgency = fields.String(metadata={"enum": _LEVELS})
    source = fields.String()
    requester = fields.Nested(TicketPersonSchema)
    assignee = fields.Nested(TicketPersonSchema, allow_none=True)
    team_id = fields.Integer(allow_none=True)
    category_id = fields.Integer(allow_none=True)
    asset_id = fields.Integer(allow_none=True)
    merged_into_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    first_response_due = fields.DateTime(allow_none=True)
    resolution_due = fields.DateTime(allow_none=True)
    response_breached = fields.Boolean()
    resolution_breached = fields.Boolean()
    breached = fields.Boolean()
    paused = fields.Function(lambda t: t.status == TicketStatus.PENDING.value, metadata={
        "type": "boolean", "description": "Pending on the requester: the SLA clock is stopped."})


class TicketDetailSchema(TicketSchema):
    body = fields.String()
    team = fields.Nested(TicketNamedSchema, allow_none=True)
    category = fields.Nested(TicketNamedSchema, allow_none=True)
    asset = fields.Nested(TicketAssetSchema, attribute="asset_summary", allow_none=True,
                          metadata={"description": "The linked asset."})
    asset_health = fields.Nested(TicketAssetHealthSchema, attribute="asset_health_summary", allow_none=True,
                                 metadata={"description": "The linked asset's monitoring health (IT staff only; "
                                                          "null when it is not monitored)."})
    first_response_at = fields.DateTime(allow_none=True)
    paused_at = fields.DateTime(allow_none=True)
    paused_minutes = fields.Integer(metadata={"description": "Business minutes spent pending so far; the due "
                                                             "times are pushed back by them."})
    resolved_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    rating = fields.Integer(allow_none=True)
    rating_comment = fields.String(allow_none=True)
    allowed_next_statuses = fields.List(fields.String(), metadata={
        "description": "The statuses the caller may move the ticket to."})


class TicketPageSchema(Schema):
    items = fields.List(fields.Nested(TicketSchema))
    next_cursor = fields.String(allow_none=True)


class TicketAttachmentSchema(Schema):
    id = fields.Integer()
    ticket_id = fields.Integer()
    comment_id = fields.Integer(allow_none=True)
    filename = fields.String(metadata={"description": "As the uploader named it; display it escaped."})
    content_type = fields.String(metadata={"description": "As detected from the content."})
    size = fields.Integer()
    sha256 = fields.String()
    created_at = fields.DateTime()
    download_url = fields.Function(lambda a: url_for("tickets_api.download_attachment", ticket_id=a.ticket_id,
                                                     attachment_id=a.id), metadata={"type": "string"})


class TicketCommentSchema(Schema):
    id = fields.Integer()
    author = fields.Nested(TicketPersonSchema, allow_none=True)
    body = fields.String(metadata={"description": "Plain text; display it escaped."})
    internal = fields.Boolean()
    created_at = fields.DateTime()
    attachments = fields.List(fields.Nested(TicketAttachmentSchema))
