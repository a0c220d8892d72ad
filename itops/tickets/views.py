"""Helpdesk pages: the list (own tickets for requesters, queues for IT staff), filing a ticket, the
ticket page with its conversation and controls, attachment downloads, and the admins' settings.

Routes parse a form and call one service; who may do what on which ticket is the services' rule
(`get_ticket_for`, `add_comment`, `change_status`, ...), the decorators only keep whole roles out.
"""
from __future__ import annotations

import functools
from collections import defaultdict

from flask import Blueprint, current_app, flash, get_template_attribute, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.util import identity_key
from wtforms.fields.choices import SelectChoice

from itops.assets import services as assets_services
from itops.core.auth import services as auth_services
from itops.core.auth.models import User
from itops.core.auth.forms import ConfirmForm
from itops.core.errors import NotFound, ValidationFailed, errors_onto_form, require_valid
from itops.core.policy import Role, require_area, require_role
from itops.extensions import db
from itops.monitoring import services as monitoring_services
from itops.tickets import attachments, queries, services
from itops.tickets.display import TEMPLATE_GLOBALS
from itops.tickets.choices import PRIORITY_MATRIX, TRANSITIONS, Level, Queue, TicketStatus
from itops.tickets.forms import (
    AssignForm, BulkAssignForm, BulkStatusForm, CannedResponseForm, CategoryForm, CloseForm,
    MAX_ID, MergeForm, NewTicketForm, PriorityForm, RateForm, ReplyForm, StatusForm, TeamForm, TicketFilterForm,
    checked_id,
)
from itops.tickets.models import Ticket, TicketComment

# Blank forms that the page only displays: the template writes one csrf_token() input per form itself.
NO_CSRF = {"csrf": False}

bp = Blueprint("tickets", __name__, url_prefix="/tickets")
# Ids in paths are 32-bit row ids: a bigger number is simply not found (404), never a database error.
ID = f"int(min=1, max={MAX_ID})"
for _name, _function in TEMPLATE_GLOBALS.items():
    bp.add_app_template_global(_function, _name)

LIST_ARGS = ("queue", "q", "status", "priority", "category_id", "team_id", "assignee", "requester", "asset",
             "created_from", "created_to", "updated_from", "updated_to", "sort")


def _uploads(files) -> list[services.Upload]:
    return [services.Upload(f.stream, f.filename) for f in files or () if f and f.filename]


# --- the list ------------------------------------------------------------------------------------

def _asset_id(text: str | None) -> int | None:
    """The asset filter takes a tag (IT-000042) or an id."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        return int(text) if int(text) <= MAX_ID else -1  # no such asset: an empty list
    asset = assets_services.find_by_tag(text)
    if asset is None:
        raise ValidationFailed(f"No asset has the tag {text!r}.", errors={"asset": ["Unknown asset tag."]})
    return asset.id


def filters_from_request(form: TicketFilterForm, team_ids: tuple[int, ...] = ()) -> queries.TicketFilters:
    """The list's filters from the query string; a requester's are narrowed to their own tickets."""
    if not form.validate():
        raise ValidationFailed("Check the filters.", errors=form.errors)
    staff = services.is_staff(current_user)
    filters = queries.TicketFilters(
        queue=form.queue.data or Queue.OPEN.value, q=form.q.data or None, status=form.status.data or None,
        priority=form.priority.data or None, category_id=form.category_id.data, team_id=form.team_id.data,
        assignee=form.assignee.data or None, requester=form.requester.data or None,
        asset_id=_asset_id(form.asset.data) if staff else None,
        created_from=form.created_from.data, created_to=form.created_to.data,
        updated_from=form.updated_from.data, updated_to=form.updated_to.data, sort=form.sort.data or "-created",
        viewer_id=current_user.id, viewer_team_ids=team_ids)
    return filters if staff else filters.for_requester(current_user)


def _list_args() -> dict[str, str]:
    return {key: value for key, value in request.args.items() if key in LIST_ARGS and value}


# The choice lists below are built once per distinct list of staff, teams or categories (the same on
# nearly every request) and shared, never changed, by the forms that offer them.

@functools.lru_cache(maxsize=32)
def _assign_select_choices(staff: tuple, teams: tuple) -> tuple[tuple, tuple]:
    return ((SelectChoice("", "Nobody"), *(SelectChoice(person_id, f"{name} ({username})")
                                           for person_id, username, name in staff)),
            (SelectChoice("", "No team"), *(SelectChoice(team_id, name) for team_id, name, active in teams if active)))


@functools.lru_cache(maxsize=32)
def _filter_select_choices(categories: tuple, teams: tuple) -> tuple[tuple, tuple]:
    def label(name, active):
        return name if active else f"{name} (inactive)"
    return ((SelectChoice("", "Any category"), *(SelectChoice(i, label(name, active)) for i, name, active in categories)),
            (SelectChoice("", "Any team"), *(SelectChoice(i, label(name, active)) for i, name, active in teams)))


def _assign_choices(form, choices: services.ListChoices) -> None:
    """Who and which team a ticket can go to: active IT staff and admins, active teams."""
    form.assignee_id.choices, form.team_id.choices = _assign_select_choices(tuple(choices.staff), tuple(choices.teams))


@functools.lru_cache(maxsize=32)
def _bulk_selects(staff: tuple, teams: tuple) -> tuple[Markup, Markup, Markup]:
    """The bulk forms' three <select>s, written by the `select` macro once per list of staff and teams: blank
    forms (list.html writes their CSRF input; a post builds and checks the forms anew) offer nothing else."""
    assign_form = BulkAssignForm(prefix="bulk", formdata=None, meta=NO_CSRF)
    status_form = BulkStatusForm(prefix="bulk", formdata=None, meta=NO_CSRF)
    assign_form.assignee_id.choices, assign_form.team_id.choices = _assign_select_choices(staff, teams)
    select = get_template_attribute("_macros.html", "select")
    return select(assign_form.assignee_id), select(assign_form.team_id), select(status_form.status)


def _queue_urls(list_args: dict[str, str]) -> dict[str, str]:
    """Each queue's link, keeping the other filters: one url_for with a placeholder queue, then each queue's
    value (a plain word) in its place. Once encoded, "queue=%00" cannot occur anywhere else in the URL."""
    url = url_for("tickets.index", **dict(list_args, queue="\0"))
    return {queue.value: url.replace("queue=%00", f"queue={queue.value}", 1) for queue in Queue}


@bp.get("/")
@require_area("tickets")
def index():
    staff = services.is_staff(current_user)
    choices = services.list_choices(current_user) if staff else None
    form = TicketFilterForm(request.args)
    filters = filters_from_request(form, choices.my_team_ids if choices else ())
    page = queries.ticket_page(filters, cursor=request.args.get("cursor"), rows=True)
    # Rows link to "<prefix><id>": one url_for per page instead of one per row.
    context = {"page": page, "filters": filters, "form": form, "staff": staff, "choices": choices,
               "ticket_prefix": url_for("tickets.index")}
    if staff:
        form.category_id.choices, form.team_id.choices = _filter_select_choices(tuple(choices.categories),
                                                                                tuple(choices.teams))
        list_args = _list_args()
        # Not kept while templates reload (debug): an edited select macro shows at once.
        bulk_selects = _bulk_selects.__wrapped__ if current_app.jinja_env.auto_reload else _bulk_selects
        context.update(zip(("bulk_assignee_select", "bulk_team_select", "bulk_status_select"),
                           bulk_selects(tuple(choices.staff), tuple(choices.teams))),
                       team_names={i: name for i, name, _ in choices.teams},
                       category_names={i: name for i, name, _ in choices.categories},
                       queues=list(Queue), list_args=list_args, queue_urls=_queue_urls(list_args))
    return render_template("tickets/list.html", **context)


def _selected_ids() -> list[int]:
    try:
        return [checked_id(value) for value in request.form.getlist("ticket_id")]
    except ValueError:
        raise ValidationFailed("The selection is not valid.", errors={"ticket_id": ["Not ticket numbers."]}) from None


@bp.post("/bulk/assign")
@require_role(Role.IT_STAFF)
def bulk_assign():
    form = BulkAssignForm(prefix="bulk")
    _assign_choices(form, services.list_choices(current_user))
    require_valid(form)
    count = services.bulk_assign(_selected_ids(), assignee_id=form.assignee_id.data, team_id=form.team_id.data,
                                 by=current_user)
    flash(f"{count} ticket{'s' if count != 1 else ''} assigned.", "success")
    return redirect(url_for("tickets.index", **_list_args()))


@bp.post("/bulk/status")
@require_role(Role.IT_STAFF)
def bulk_status():
    form = BulkStatusForm(prefix="bulk")
    require_valid(form)
    count = services.bulk_status(_selected_ids(), form.status.data, by=current_user)
    flash(f"{count} ticket{'s' if count != 1 else ''} set to {TicketStatus(form.status.data).label.lower()}.",
          "success")
    return redirect(url_for("tickets.index", **_list_args()))


# --- filing a ticket -----------------------------------------------------------------------------

def _new_ticket_form(staff: bool) -> NewTicketForm:
    form = NewTicketForm()
    form = form.for_staff() if staff else form.for_requester()
    form.category_id.choices = [SelectChoice("", "Not sure / other")] + [
        SelectChoice(c.id, c.name) for c in services.categories()]
    if not staff:
        form.asset_id.choices = [SelectChoice("", "None")] + [
            SelectChoice(a.id, f"{a.tag} · {a.name}") for a in assets_services.assets_held_by(current_user)]
    return form


def _staff_requester_and_asset(form: NewTicketForm):
    """On-behalf filing: the requester by username and any asset by tag. None, None if a field is wrong."""
    requester, asset_id = current_user, None
    if form.requester.data:
        requester = auth_services.find_user(form.requester.data)
        if requester is None or not requester.active:
            form.requester.errors.append("No active person has this username.")
    if form.asset_tag.data:
        asset = assets_services.find_by_tag(form.asset_tag.data)
        if asset is None:
            form.asset_tag.errors.append("No asset has this tag.")
        else:
            asset_id = asset.id
    if form.requester.errors or form.asset_tag.errors:
        return None, None
    return requester, asset_id


@bp.route("/new", methods=["GET", "POST"])
@require_area("tickets")
def create():
    staff = services.is_staff(current_user)
    form, problem = _new_ticket_form(staff), None
    if form.validate_on_submit():
        requester, asset_id = _staff_requester_and_asset(form) if staff else (current_user, form.asset_id.data)
        if requester is not None:
            try:
                ticket = services.create_ticket(
                    requester, title=form.title.data, body=form.body.data, category_id=form.category_id.data,
                    impact=form.impact.data, urgency=form.urgency.data, asset_id=asset_id,
                    uploads=_uploads(form.attachments.data), by=current_user,
                    priority=(form.priority.data or None) if staff else None)
            except ValidationFailed as exc:  # e.g. an attachment of a forbidden type: keep what was typed
                problem = exc.detail
                errors_onto_form(form, exc)
            else:
                flash(f"Ticket {ticket.number} filed. You will get an email when IT answers.", "success")
                return redirect(url_for("tickets.detail", ticket_id=ticket.id))
    page = render_template("tickets/new.html", form=form, staff=staff, problem=problem, matrix=_matrix_rows())
    return page, 422 if request.method == "POST" else 200


def _matrix_rows():
    """The impact x urgency table shown next to the form (and read by tickets.js for a live preview)."""
    return [(impact, [(urgency, PRIORITY_MATRIX[(impact, urgency)]) for urgency in Level]) for impact in Level]


# --- the ticket page -----------------------------------------------------------------------------

def _linked_asset(ticket):
    """The linked asset if the viewer may see it; (None, True) when one is linked but not theirs to see."""
    if ticket.asset_id is None:
        return None, False
    try:
        return assets_services.get_asset_for(current_user, ticket.asset_id), False
    except NotFound:
        return None, True




@functools.cache
def _ticket_with_people_statement():
    """Built once: SQLAlchemy keeps a statement's cache key, which it computes anew for each new statement."""
    return select(Ticket).where(Ticket.id == bindparam("ticket_id")).options(
        joinedload(Ticket.requester), joinedload(Ticket.assignee), joinedload(Ticket.team), joinedload(Ticket.category))


def _load_ticket_people(ticket_id: int):
    """The ticket with requester, assignee, team and category in one query instead of a lazy load each.
    The caller keeps the result: the session holds loaded rows only while something refers to them, and
    get_ticket_for then finds this one without SQL."""
    return db.session.scalars(_ticket_with_people_statement(), {"ticket_id": ticket_id}).first()


def _load_authors(items) -> list:
    """The comment authors not loaded yet, in one query instead of a lazy load each (keep the result)."""
    ids = {item.author_id for item in items if isinstance(item, TicketComment) and item.author_id}
    missing = [i for i in ids if db.session.identity_map.get(identity_key(User, i)) is None]
    return db.session.scalars(select(User).where(User.id.in_(missing))).all() if missing else []


def _detail(ticket, status: int = 200, **forms):
    """The ticket page; `forms` replaces a blank form by a submitted one that carries errors."""
    staff = services.is_staff(current_user)
    items = [item for item in services.conversation(ticket, current_user)
             if staff or not (getattr(item, "internal", False) or getattr(item, "public", True) is False)]
    authors = _load_authors(items)  # referred to until the page is rendered (see _load_ticket_people)
    files_by_comment = defaultdict(list)
    for item in services.attachments_of(ticket, current_user):
        files_by_comment[item.comment_id].append(item)
    asset, asset_hidden = _linked_asset(ticket)
    open_for_replies = ticket.status != TicketStatus.CLOSED.value
    may_rate = ticket.requester_id == current_user.id and ticket.resolved_at is not None and not ticket.rating
    # IT staff see the linked device's current health from monitoring (None when it is not monitored).
    health = monitoring_services.current_health(asset.id) if staff and asset is not None else None
    context = {"ticket": ticket, "staff": staff, "asset": asset, "asset_hidden": asset_hidden, "health": health,
               "items": [("comment" if isinstance(item, TicketComment) else "event", item) for item in items],
               "files_by_comment": files_by_comment, "is_requester": ticket.requester_id == current_user.id,
               # Each blank form only where detail.html shows it (a closed ticket takes no reply, ...).
               "reply_form": forms.get("reply") or (ReplyForm(formdata=None, meta=NO_CSRF) if open_for_replies
                                                    else None),
               "rate_form": forms.get("rate") or (RateForm(formdata=None, meta=NO_CSRF) if may_rate else None),
               "reopen_days": current_app.config["ITOPS_TICKET_REOPEN_DAYS"]}
    if staff:
        canned = services.canned_responses()
        chosen = next((c for c in canned if c.id == request.args.get("canned", type=int)), None)
        if chosen is not None and "reply" not in forms and open_for_replies:
            context["reply_form"].body.data = services.render_canned(chosen, ticket, current_user)
        assign_form = forms.get("assign") or AssignForm(assignee_id=ticket.assignee_id, team_id=ticket.team_id,
                                                        formdata=None, meta=NO_CSRF)
        _assign_choices(assign_form, services.list_choices(current_user))  # one light query, no User rows
        context.update(
            canned=[(c, services.render_canned(c, ticket, current_user)) for c in canned],
            assign_form=assign_form, status_form=forms.get("status") or StatusForm(formdata=None, meta=NO_CSRF),
            allowed_statuses=TRANSITIONS[ticket.status_enum],
            priority_form=forms.get("priority") or PriorityForm(priority=ticket.priority, formdata=None, meta=NO_CSRF),
            merge_form=forms.get("merge") or (MergeForm(formdata=None, meta=NO_CSRF) if open_for_replies else None))
    page = render_template("tickets/detail.html", **context)
    del authors
    return page, status


@bp.get(f"/<{ID}:ticket_id>")
@require_area("tickets")
def detail(ticket_id: int):
    loaded = _load_ticket_people(ticket_id)
    ticket = services.get_ticket_for(current_user, ticket_id)  # the access rule; finds `loaded` without SQL
    del loaded
    return _detail(ticket)


@bp.post(f"/<{ID}:ticket_id>/reply")
@require_area("tickets")
def reply(ticket_id: int):
    ticket = services.get_ticket_for(current_user, ticket_id)
    form = ReplyForm()  # the internal-note choice is shown to IT staff only; the service refuses it from others
    if not form.validate_on_submit():
        return _detail(ticket, 422, reply=form)
    before = ticket.status_enum
    comment = services.add_comment(ticket, current_user, form.body.data, internal=form.internal,
                                   uploads=_uploads(form.attachments.data))
    if form.internal:
        flash("Internal note added (IT staff only).", "success")
    elif before == TicketStatus.RESOLVED and ticket.status_enum != before:
        flash(f"Reply sent; ticket {ticket.number} is open again.", "success")
    else:
        flash("Reply sent.", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id, _anchor=f"comment-{comment.id}"))


def _staff_action(ticket_id: int, form, name: str):
    """The ticket and a validated form; on bad input, the ticket page again with the form's errors."""
    ticket = services.get_ticket_for(current_user, ticket_id)
    if not form.validate_on_submit():
        return ticket, _detail(ticket, 422, **{name: form})
    return ticket, None


@bp.post(f"/<{ID}:ticket_id>/assign")
@require_role(Role.IT_STAFF)
def assign(ticket_id: int):
    form = AssignForm()
    _assign_choices(form, services.list_choices(current_user))
    ticket, refused = _staff_action(ticket_id, form, "assign")
    if refused:
        return refused
    services.assign(ticket, assignee_id=form.assignee_id.data, team_id=form.team_id.data, by=current_user)
    who = ticket.assignee.display_name if ticket.assignee else "nobody"
    flash(f"{ticket.number} assigned to {who}" + (f" in {ticket.team.name}." if ticket.team else "."), "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post(f"/<{ID}:ticket_id>/status")
@require_role(Role.IT_STAFF)
def change_status(ticket_id: int):
    form = StatusForm()
    ticket, refused = _staff_action(ticket_id, form, "status")
    if refused:
        return refused
    services.change_status(ticket, form.status.data, by=current_user)
    flash(f"{ticket.number} is now {ticket.status_enum.label.lower()}.", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post(f"/<{ID}:ticket_id>/priority")
@require_role(Role.IT_STAFF)
def set_priority(ticket_id: int):
    form = PriorityForm()
    ticket, refused = _staff_action(ticket_id, form, "priority")
    if refused:
        return refused
    services.set_priority(ticket, form.priority.data, by=current_user)
    flash(f"{ticket.number} priority is {ticket.priority_enum.label.lower()}.", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post(f"/<{ID}:ticket_id>/merge")
@require_role(Role.IT_STAFF)
def merge(ticket_id: int):
    form = MergeForm()
    ticket, refused = _staff_action(ticket_id, form, "merge")
    if refused:
        return refused
    into = services.merge(ticket, services.get_ticket_for(current_user, form.into.data), by=current_user)
    flash(f"{ticket.number} merged into {into.number}.", "success")
    return redirect(url_for("tickets.detail", ticket_id=into.id))


@bp.post(f"/<{ID}:ticket_id>/close")
@require_area("tickets")
def close(ticket_id: int):
    ticket = services.get_ticket_for(current_user, ticket_id)
    require_valid(CloseForm())
    services.change_status(ticket, TicketStatus.CLOSED, by=current_user)
    flash(f"Ticket {ticket.number} closed.", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.post(f"/<{ID}:ticket_id>/rate")
@require_area("tickets")
def rate(ticket_id: int):
    ticket = services.get_ticket_for(current_user, ticket_id)
    form = RateForm()
    if not form.validate_on_submit():
        return _detail(ticket, 422, rate=form)
    services.rate(ticket, by=current_user, rating=form.rating.data, comment=form.comment.data)
    flash("Thank you for your rating.", "success")
    return redirect(url_for("tickets.detail", ticket_id=ticket.id))


@bp.get(f"/<{ID}:ticket_id>/attachments/<{ID}:attachment_id>")
@require_area("tickets")
def download(ticket_id: int, attachment_id: int):
    """Always a download, never rendered by the browser: the type is the detected one, sniffing is off and
    a sandbox CSP applies should a browser open it anyway."""
    return attachments.download_response(services.get_attachment_for(current_user, ticket_id, attachment_id))


# --- administrators' settings: teams, categories, canned responses ------------------------------

def _one(items, item_id: int, what: str):
    for item in items:
        if item.id == item_id:
            return item
    raise NotFound(f"No such {what}.")


def _settings_form(kind: str, form, item, status_code: int | None = None):
    placeholders = services.PLACEHOLDERS if kind == "canned" else ()
    page = render_template("tickets/settings_form.html", kind=kind, form=form, item=item, placeholders=placeholders)
    return page, status_code or (422 if request.method == "POST" else 200)


@bp.get("/settings/")
@require_role(Role.ADMIN)
def settings():
    return redirect(url_for("tickets.settings_teams"))


@bp.get("/settings/teams")
@require_role(Role.ADMIN)
def settings_teams():
    return render_template("tickets/settings.html", kind="teams", items=services.teams(active_only=False),
                           toggle=ConfirmForm())


@bp.route("/settings/teams/new", methods=["GET", "POST"], defaults={"team_id": None})
@bp.route(f"/settings/teams/<{ID}:team_id>", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def team_form(team_id: int | None):
    team = _one(services.teams(active_only=False), team_id, "team") if team_id else None
    form = TeamForm(obj=team, member_ids=[m.id for m in team.members] if team else [])
    form.member_ids.choices = [SelectChoice(u.id, f"{u.display_name} ({u.username})") for u in services.staff_people()]
    if not form.validate_on_submit():
        return _settings_form("team", form, team)
    team = services.save_team(form.name.data, email=form.email.data, member_ids=form.member_ids.data,
                              active=form.active.data, team=team, by=current_user)
    flash(f"Team {team.name!r} saved.", "success")
    return redirect(url_for("tickets.settings_teams"))


@bp.post(f"/settings/teams/<{ID}:team_id>/active")
@require_role(Role.ADMIN)
def team_active(team_id: int):
    require_valid(ConfirmForm())
    team = _one(services.teams(active_only=False), team_id, "team")
    services.save_team(team.name, email=team.email, member_ids=[m.id for m in team.members], active=not team.active,
                       team=team, by=current_user)
    flash(f"Team {team.name!r} {'reactivated' if team.active else 'deactivated'}.", "success")
    return redirect(url_for("tickets.settings_teams"))


@bp.get("/settings/categories")
@require_role(Role.ADMIN)
def settings_categories():
    return render_template("tickets/settings.html", kind="categories", items=services.categories(active_only=False),
                           toggle=ConfirmForm())


def _category_choices(form: CategoryForm) -> None:
    form.default_team_id.choices = [SelectChoice("", "None")] + [SelectChoice(t.id, t.name) for t in services.teams()]
    form.default_assignee_id.choices = [SelectChoice("", "Nobody")] + [
        SelectChoice(u.id, f"{u.display_name} ({u.username})") for u in services.staff_people()]


@bp.route("/settings/categories/new", methods=["GET", "POST"], defaults={"category_id": None})
@bp.route(f"/settings/categories/<{ID}:category_id>", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def category_form(category_id: int | None):
    category = _one(services.categories(active_only=False), category_id, "category") if category_id else None
    form = CategoryForm(obj=category)
    _category_choices(form)
    if not form.validate_on_submit():
        return _settings_form("category", form, category)
    category = services.save_category(form.name.data, default_team_id=form.default_team_id.data,
                                      default_assignee_id=form.default_assignee_id.data, active=form.active.data,
                                      category=category, by=current_user)
    flash(f"Category {category.name!r} saved.", "success")
    return redirect(url_for("tickets.settings_categories"))


@bp.post(f"/settings/categories/<{ID}:category_id>/active")
@require_role(Role.ADMIN)
def category_active(category_id: int):
    require_valid(ConfirmForm())
    category = _one(services.categories(active_only=False), category_id, "category")
    services.save_category(category.name, default_team_id=category.default_team_id,
                           default_assignee_id=category.default_assignee_id, active=not category.active,
                           category=category, by=current_user)
    flash(f"Category {category.name!r} {'reactivated' if category.active else 'deactivated'}.", "success")
    return redirect(url_for("tickets.settings_categories"))


@bp.get("/settings/canned")
@require_role(Role.ADMIN)
def settings_canned():
    return render_template("tickets/settings.html", kind="canned", items=services.canned_responses(active_only=False),
                           toggle=ConfirmForm(), placeholders=services.PLACEHOLDERS)


@bp.route("/settings/canned/new", methods=["GET", "POST"], defaults={"canned_id": None})
@bp.route(f"/settings/canned/<{ID}:canned_id>", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def canned_form(canned_id: int | None):
    canned = _one(services.canned_responses(active_only=False), canned_id, "canned response") if canned_id else None
    form = CannedResponseForm(obj=canned)
    if not form.validate_on_submit():
        return _settings_form("canned", form, canned)
    canned = services.save_canned_response(form.title.data, form.body.data, active=form.active.data, canned=canned,
                                           by=current_user)
    flash(f"Canned response {canned.title!r} saved.", "success")
    return redirect(url_for("tickets.settings_canned"))


@bp.post(f"/settings/canned/<{ID}:canned_id>/active")
@require_role(Role.ADMIN)
def canned_active(canned_id: int):
    require_valid(ConfirmForm())
    canned = _one(services.canned_responses(active_only=False), canned_id, "canned response")
    services.save_canned_response(canned.title, canned.body, active=not canned.active, canned=canned, by=current_user)
    flash(f"Canned response {canned.title!r} {'reactivated' if canned.active else 'deactivated'}.", "success")
    return redirect(url_for("tickets.settings_canned"))
