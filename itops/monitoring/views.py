"""IT staff's monitoring pages: the live dashboard, a device's health page with charts, and the poll
cycles. The dashboard's body refreshes itself (htmx polls /monitoring/board). Employees and HR see
none of it: the whole area is for IT staff and admins."""
from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from itops.assets import services as assets_services
from itops.core.auth.forms import ConfirmForm
from itops.core.errors import ValidationFailed, errors_onto_form, require_valid
from itops.core.policy import require_area
from itops.monitoring import queries, services
from itops.monitoring.choices import CheckKind, Health
from itops.monitoring.forms import BulkCheckForm, CheckForm
from itops.monitoring.probes.config_backup import config_diff

bp = Blueprint("monitoring", __name__, url_prefix="/monitoring")
ID = "int(min=1, max=2147483647)"


def _board_context() -> dict:
    filters = queries.BoardFilters(state=request.args.get("state") or None)
    page = queries.board_page(filters, cursor=request.args.get("cursor"))
    assets = {a.id: a for a in assets_services.get_assets([h.asset_id for h in page.items])}
    return {"page": page, "filters": filters, "assets": assets, "counts": queries.state_counts(),
            "states": list(Health), "cycle": next(iter(queries.recent_cycles(1)), None)}


@bp.get("/")
@require_area("monitoring")
def index():
    return render_template("monitoring/index.html", **_board_context())


@bp.get("/board")
@require_area("monitoring")
def board():
    """The dashboard's body alone: what htmx swaps in every few seconds."""
    return render_template("monitoring/_board.html", **_board_context())


def _device_page(asset_id: int, form: CheckForm | None = None, status: int = 200):
    asset = assets_services.get_asset(asset_id)
    checks = queries.checks_of(asset.id)
    interfaces = next((c.last_details.get("interfaces") for c in checks
                       if c.last_details and c.last_details.get("interfaces")), None)
    versions = services.config_versions(asset.id)
    return render_template("monitoring/device.html", asset=asset, health=services.current_health(asset.id),
                           checks=checks, interfaces=interfaces, kinds=CheckKind, periods=list(queries.PERIODS),
                           form=form or CheckForm(formdata=None), confirm=ConfirmForm(), versions=versions[:10],
                           version_count=len(versions)), status


@bp.get(f"/assets/<{ID}:asset_id>")
@require_area("monitoring")
def device(asset_id: int):
    return _device_page(asset_id)


@bp.post(f"/assets/<{ID}:asset_id>/checks")
@require_area("monitoring")
def add_check(asset_id: int):
    form = CheckForm()
    if form.validate():
        try:
            services.add_check(asset_id, form.kind.data, params=form.params(),
                               interval_seconds=form.interval_seconds.data, timeout_seconds=float(form.timeout_seconds.data),
                               by=current_user)
        except ValidationFailed as exc:
            errors_onto_form(form, exc, fallback="kind")
        else:
            flash(f"{CheckKind(form.kind.data).label} check added; it runs at the next poll cycle.", "success")
            return redirect(url_for("monitoring.device", asset_id=asset_id))
    return _device_page(asset_id, form, 422)


@bp.post(f"/checks/<{ID}:check_id>/<any(pause, resume, delete):action>")
@require_area("monitoring")
def change_check(check_id: int, action: str):
    require_valid(ConfirmForm())
    check = services.get_check(check_id)
    if action == "delete":
        services.delete_check(check, by=current_user)
    else:
        services.set_check_enabled(check, action == "resume", by=current_user)
    flash({"pause": "Check paused.", "resume": "Check resumed.", "delete": "Check removed."}[action], "success")
    return redirect(url_for("monitoring.device", asset_id=check.asset_id))


@bp.route("/checks/bulk", methods=["GET", "POST"])
@require_area("monitoring")
def bulk_checks():
    """The same check on every asset a filter matches: preview first, then add."""
    form = BulkCheckForm() if request.method == "POST" else BulkCheckForm(formdata=None)
    outcome, status = None, 200
    if request.method == "POST":
        if form.validate():
            apply = request.form.get("action") == "apply"
            try:
                outcome = services.add_check_to_many(
                    form.asset_filters(), form.kind.data, params=form.params(),
                    interval_seconds=form.interval_seconds.data, timeout_seconds=float(form.timeout_seconds.data),
                    by=current_user, dry_run=not apply)
            except ValidationFailed as exc:
                errors_onto_form(form, exc, fallback="kind")
                status = 422
            else:
                if apply:
                    flash(f"{len(outcome['added'])} checks added.", "success")
                    return redirect(url_for("monitoring.index"))
        else:
            status = 422
    return render_template("monitoring/bulk.html", form=form, outcome=outcome), status


@bp.get(f"/assets/<{ID}:asset_id>/config/<{ID}:backup_id>")
@require_area("monitoring")
def config_version(asset_id: int, backup_id: int):
    asset = assets_services.get_asset(asset_id)
    backup = services.get_config(asset.id, backup_id)
    versions = services.config_versions(asset.id)
    against = request.args.get("diff", type=int)
    previous = (services.get_config(asset.id, against) if against
                else next((v for v in versions if (v.taken_at, v.id) < (backup.taken_at, backup.id)), None))
    diff = config_diff(previous.text, backup.text, old_label=f"{previous.taken_at:%Y-%m-%d %H:%M} UTC",
                       new_label=f"{backup.taken_at:%Y-%m-%d %H:%M} UTC") if previous else None
    return render_template("monitoring/config.html", asset=asset, backup=backup, previous=previous, diff=diff,
                           versions=versions)


@bp.get(f"/checks/<{ID}:check_id>/series")
@require_area("monitoring")
def series(check_id: int):
    check = services.get_check(check_id)
    return jsonify(queries.series(check.id, request.args.get("period", "24h")))


@bp.get("/cycles")
@require_area("monitoring")
def cycles():
    return render_template("monitoring/cycles.html", cycles=queries.recent_cycles(30))

