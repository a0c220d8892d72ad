"""Administrators' pages. Each view parses, calls one service, and answers."""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from itops.core import audit, jobs
from itops.core.admin.forms import AuditFilterForm, RoleForm, UserFilterForm
from itops.core.audit import AuditEntry
from itops.core.auth import services
from itops.core.auth.forms import ConfirmForm
from itops.core.auth.models import User
from itops.core.errors import ValidationFailed
from itops.core.pagination import keyset_page
from itops.core.policy import Role, require_role
from itops.extensions import db

bp = Blueprint("admin", __name__, url_prefix="/admin")

PAGE_SIZE = 50


def _start_of(day) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=timezone.utc) if day else None


@bp.get("/users")
@require_role(Role.ADMIN)
def users():
    form = UserFilterForm(request.args)
    if not form.validate():
        raise ValidationFailed("Check the filters.", errors=form.errors)
    page = keyset_page(services.user_query(form.q.data, form.role.data), [(User.username, False)],
                       cursor=request.args.get("cursor"), limit=PAGE_SIZE)
    return render_template("admin/users.html", form=form, page=page, confirm=ConfirmForm(),
                           directory_configured=current_app.config["ITOPS_LDAP"] is not None)


@bp.get("/users/<int:user_id>")
@require_role(Role.ADMIN)
def user(user_id: int):
    target = services.get_user(user_id)
    history = keyset_page(audit.audit_query(audit.AuditFilters(object_type="user", object_id=str(user_id))),
                          [(AuditEntry.id, True)], cursor=None, limit=20)
    return render_template("admin/user.html", target=target, role_form=RoleForm(role=target.role),
                           confirm=ConfirmForm(), tokens=services.tokens_of(target), history=history.items)


@bp.post("/users/<int:user_id>/role")
@require_role(Role.ADMIN)
def change_role(user_id: int):
    target = services.get_user(user_id)
    form = RoleForm()
    if not form.validate_on_submit():
        raise ValidationFailed("Choose one of the listed roles.", errors=form.errors)
    services.change_role(target, form.role.data, by=current_user)
    flash(f"{target.username} is now {Role(form.role.data).label}.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/<any(enable, disable):action>")
@require_role(Role.ADMIN)
def set_active(user_id: int, action: str):
    target = services.get_user(user_id)
    services.set_active(target, action == "enable", by=current_user)
    flash(f"{target.username} {'enabled' if action == 'enable' else 'disabled and signed out'}.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/<any('revoke-sessions', 'revoke-all'):what>")
@require_role(Role.ADMIN)
def revoke(user_id: int, what: str):
    target = services.get_user(user_id)
    if what == "revoke-all":
        services.revoke_everything(target, by=current_user, reason="revoked by an administrator")
        flash(f"{target.username}'s sessions and API tokens are revoked.", "success")
    else:
        services.revoke_sessions(target, by=current_user)
        flash(f"{target.username} has been signed out of every session.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/directory-refresh")
@require_role(Role.ADMIN)
def directory_refresh():
    job = jobs.create_job("directory.refresh", "Refresh users from the directory", by=current_user)
    # The job row must be committed before the worker thread looks for it.
    db.session.commit()
    by_id = current_user.id
    jobs.launch_in_background(job, lambda progress: services.refresh_from_directory(
        progress, by=services.get_user(by_id)))
    return redirect(url_for("core.job", job_id=job.id))


@bp.get("/audit")
@require_role(Role.ADMIN)
def audit_log():
    form = AuditFilterForm(request.args)
    if not form.validate():
        raise ValidationFailed("Check the filters: dates are YYYY-MM-DD.", errors=form.errors)
    until = _start_of(form.until.data + timedelta(days=1)) if form.until.data else None
    filters = audit.AuditFilters(actor=form.actor.data or None, action=form.action.data or None,
                                 object_type=form.object_type.data or None, object_id=form.object_id.data or None,
                                 since=_start_of(form.since.data), until=until)
    page = keyset_page(audit.audit_query(filters), [(AuditEntry.id, True)], cursor=request.args.get("cursor"),
                       limit=PAGE_SIZE)
    return render_template("admin/audit.html", form=form, page=page)
