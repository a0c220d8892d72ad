"""Assets pages: the list (everything for IT staff, your own for employees), an asset, its lifecycle, labels."""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from itops.assets import csv_io, display, labels, queries, services
from itops.assets.choices import CHECKIN_TARGETS, AssetKind, Status
from itops.assets.forms import (
    AssetFilterForm, AssetForm, CheckinForm, CheckoutForm, CredentialForm, EnrollmentTokenForm, ImportConfirmForm,
    ImportForm, StatusForm,
)
from itops.core import jobs
from itops.core.auth import services as auth_services
from itops.core.auth.forms import ConfirmForm
from itops.core.errors import ValidationFailed, require_valid
from itops.core.policy import Role, require_area, require_role
from itops.extensions import db

bp = Blueprint("assets", __name__, url_prefix="/assets")

MAX_LABELS = 200


def filters_from_request(form: AssetFilterForm | None = None) -> queries.AssetFilters:
    """The list's filters from the query string, for the page and the export alike."""
    form = form or AssetFilterForm(request.args)
    if not form.validate():
        raise ValidationFailed("Check the filters.", errors=form.errors)
    filters = queries.AssetFilters(q=form.q.data, kind=form.kind.data or None, status=form.status.data or None,
                                   location=form.location.data, holder=form.holder.data,
                                   warranty_days=form.warranty_days.data, sort=form.sort.data or "tag")
    return services.visible_to(current_user, filters)


@bp.get("/")
@require_area("assets")
def index():
    form = AssetFilterForm(request.args)
    filters = filters_from_request(form)
    page = queries.asset_page(filters, cursor=request.args.get("cursor"), shape=queries.LIST_ROW)
    manage = services.can_manage(current_user)
    detail_url = url_for("assets.detail", asset_id=0)[:-1]  # + id: one url_for, not one per row
    rows = display.list_rows(page.items, detail_url=detail_url, selectable=manage)
    return render_template("assets/list.html", page=page, rows=rows, filters=filters, form=form, manage=manage)


def _credential_choices(form: AssetForm) -> None:
    form.credential_id.choices = [SelectChoice("", "—")] + [SelectChoice(c.id, f"{c.name} ({c.username})")
                                                            for c in services.credentials()]


@bp.route("/new", methods=["GET", "POST"])
@require_role(Role.IT_STAFF)
def create():
    form = AssetForm(kind=request.args.get("kind", AssetKind.LAPTOP.value))
    _credential_choices(form)
    if not form.validate_on_submit():
        return render_template("assets/form.html", form=form, asset=None), 422 if request.method == "POST" else 200
    asset = services.create_asset(form.kind.data, form.values(), by=current_user)
    flash(f"{asset.kind_enum.label} {asset.tag} created.", "success")
    return redirect(url_for("assets.detail", asset_id=asset.id))


@bp.get("/<int:asset_id>")
@require_area("assets")
def detail(asset_id: int):
    asset = services.get_asset_for(current_user, asset_id)
    suggested, manage = services.suggested_holder(asset), services.can_manage(current_user)
    people = display.people_options() if manage and asset.can_check_out else None
    return render_template("assets/detail.html", asset=asset, history=services.history(asset), manage=manage,
                           suggested=suggested, people=people, checkin_targets=CHECKIN_TARGETS)


@bp.route("/<int:asset_id>/edit", methods=["GET", "POST"])
@require_role(Role.IT_STAFF)
def edit(asset_id: int):
    asset = services.get_asset(asset_id)
    form = AssetForm(obj=asset)
    _credential_choices(form)
    if not form.validate_on_submit():
        return render_template("assets/form.html", form=form, asset=asset), 422 if request.method == "POST" else 200
    changed = services.update_asset(asset, form.values(), by=current_user)
    flash(f"{asset.tag} saved." if changed else "Nothing changed.", "success" if changed else "info")
    return redirect(url_for("assets.detail", asset_id=asset.id))


@bp.post("/<int:asset_id>/checkout")
@require_role(Role.IT_STAFF)
def checkout(asset_id: int):
    form = CheckoutForm()
    require_valid(form)
    asset = services.checkout(services.get_asset(asset_id), services.resolve_holder(form.holder.data),
                              by=current_user, expected_return=form.expected_return.data,
                              condition=form.condition.data)
    flash(f"{asset.tag} checked out to {asset.holder.display_name}.", "success")
    return redirect(url_for("assets.detail", asset_id=asset_id))


@bp.post("/<int:asset_id>/checkin")
@require_role(Role.IT_STAFF)
def checkin(asset_id: int):
    form = CheckinForm()
    require_valid(form)
    asset = services.checkin(services.get_asset(asset_id), by=current_user, condition=form.condition.data,
                             status=form.status.data)
    flash(f"{asset.tag} checked in ({asset.status_enum.label.lower()}).", "success")
    return redirect(url_for("assets.detail", asset_id=asset_id))


@bp.post("/<int:asset_id>/status")
@require_role(Role.IT_STAFF)
def change_status(asset_id: int):
    form = StatusForm()
    require_valid(form)
    asset = services.change_status(services.get_asset(asset_id), form.status.data, by=current_user,
                                   note=form.note.data)
    flash(f"{asset.tag} is now {Status(asset.status).label.lower()}.", "success")
    return redirect(url_for("assets.detail", asset_id=asset_id))


@bp.get("/<int:asset_id>/software")
@require_area("assets")
def software(asset_id: int):
    asset = services.get_asset_for(current_user, asset_id)
    return render_template("assets/software.html", asset=asset, packages=services.software_of(asset))


@bp.get("/<int:asset_id>/label")
@require_area("assets")
def label(asset_id: int):
    asset = services.get_asset_for(current_user, asset_id)
    return render_template("assets/labels.html", labels=[labels.label_for(asset)])


@bp.get("/labels")
@require_role(Role.IT_STAFF)
def label_sheet():
    ids = request.args.getlist("id", type=int)
    if not ids:
        raise ValidationFailed("Select at least one asset to print labels for.")
    if len(ids) > MAX_LABELS:
        raise ValidationFailed(f"Print at most {MAX_LABELS} labels at a time.")
    return render_template("assets/labels.html", labels=[labels.label_for(a) for a in services.get_assets(ids)])


@bp.route("/credentials", methods=["GET", "POST"])
@require_role(Role.IT_STAFF)
def credentials():
    form = CredentialForm()
    if form.validate_on_submit():
        credential = services.create_credential(form.name.data, form.username.data, form.password.data,
                                                enable_secret=form.enable_secret.data, by=current_user)
        flash(f"Credential {credential.name!r} stored (encrypted).", "success")
        return redirect(url_for("assets.credentials"))
    return render_template("assets/credentials.html", form=form, credentials=services.credentials()), \
        422 if request.method == "POST" else 200


@bp.route("/enrollment", methods=["GET", "POST"])
@require_role(Role.IT_STAFF)
def enrollment():
    form, issued, status = EnrollmentTokenForm(), None, 200
    if form.validate_on_submit():
        issued = services.issue_enrollment_token(form.name.data, days=form.days.data, by=current_user)
        form, status = EnrollmentTokenForm(formdata=None), 201
    elif request.method == "POST":
        status = 422
    page = render_template("assets/enrollment.html", form=form, issued=issued, tokens=services.enrollment_tokens(),
                           confirm=ConfirmForm())
    return page, status, {"Cache-Control": "no-store"}


@bp.post("/enrollment/<int:token_id>/revoke")
@require_role(Role.IT_STAFF)
def revoke_enrollment(token_id: int):
    token = services.revoke_enrollment_token(token_id, by=current_user)
    flash(f"Enrollment token {token.name!r} revoked; machines already enrolled keep reporting.", "success")
    return redirect(url_for("assets.enrollment"))


# --- CSV import and export ---

@bp.get("/export.csv")
@require_area("assets")
def export_csv():
    """The list's rows (same filters; employees get what they hold) as CSV, streamed a page at a time."""
    filters = filters_from_request().validated()
    chunks = csv_io.export_chunks(queries.iter_assets(filters), bom=True)
    disposition = f'attachment; filename="itops-assets-{date.today().isoformat()}.csv"'
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


def _import_page(form: ImportForm) -> str:
    return render_template("assets/import.html", form=form, columns=csv_io.COLUMNS)


@bp.route("/import", methods=["GET", "POST"])
@require_role(Role.IT_STAFF)
def import_csv():
    """Upload a CSV and see what it would do; nothing is written until it is confirmed."""
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(form), 422 if request.method == "POST" else 200
    try:
        data = csv_io.read_limited(form.file.data.stream)
        preview = csv_io.check(data)
    except csv_io.UnusableFile as exc:
        form.file.errors.append(exc.detail)
        return _import_page(form), 422
    import_id = csv_io.store_upload(data, owner_id=current_user.id)
    return render_template("assets/import_preview.html", preview=preview, import_id=import_id,
                           filename=form.file.data.filename, form=ImportConfirmForm())


@bp.post("/import/<import_id>/confirm")
@require_role(Role.IT_STAFF)
def confirm_import(import_id: str):
    """Import a previewed file as a job: all rows (only if all are valid) or only the valid ones."""
    form = ImportConfirmForm()
    require_valid(form)
    data = csv_io.load_upload(import_id, owner_id=current_user.id)
    preview, valid_only = csv_io.check(data), form.mode.data == "valid_only"
    refusal = csv_io.refusal(preview, valid_only=valid_only)
    if refusal:
        return render_template("assets/import_preview.html", preview=preview, import_id=import_id, filename=None,
                               form=form, refusal=refusal), 422
    csv_io.discard_upload(import_id, owner_id=current_user.id)
    job = jobs.create_job("assets.import", "Import assets from CSV", by=current_user, total=preview.counts["valid"])
    db.session.commit()  # the job thread must find the job row
    by_id = current_user.id
    jobs.launch_in_background(job, lambda progress: csv_io.import_file(
        data, by=auth_services.get_user(by_id), valid_only=valid_only, progress=progress))
    return redirect(url_for("core.job", job_id=job.id))
