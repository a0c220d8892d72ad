"""HR's and administrators' directory pages: people, joiners, movers and leavers with dry runs, the HR
CSV import, reconcile, batches held by the mass-change guard, group mappings and kit templates.

Every change is previewed first: the form posts to itself, the page shows the plan (the exact LDAP
operations and itops changes), and confirming posts the same values back with `confirmed=yes`.
Initial passwords are shown once, on a page the browser must not keep (Cache-Control: no-store).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from itops.assets import csv_io as asset_uploads, services as assets_services
from itops.core import crypto, jobs
from itops.core.auth import services as auth_services
from itops.core.auth.forms import ConfirmForm
from itops.core.errors import Conflict, DomainError, NotFound, ValidationFailed, require_valid
from itops.core.policy import Role, require_area, require_role
from itops.directory import csv_io, queries, reconcile, services
from itops.directory.tasks import RECONCILE_JOB
from itops.directory.choices import LIVE_STATES, ActionState
from itops.directory.forms import (
    EditPersonForm, GroupMappingForm, ImportForm, KitTemplateForm, MoveForm, OffboardForm, OnboardForm,
    PersonFilterForm, PreviewedForm,
)
from itops.extensions import db

bp = Blueprint("directory", __name__, url_prefix="/directory")

NO_STORE = {"Cache-Control": "no-store"}
IMPORT_JOB = "directory.import"
SEALED_PASSWORDS = "sealed_passwords"
# Service error fields that a form names differently.
FIELD_ALIASES = {"manager": ("manager", "manager_employee_number"), "end_date": ("end_date",),
                 "effective": ("effective",)}


def _show_errors(form, exc: DomainError) -> None:
    """Put a service's refusal above the form, and its field messages on the fields it names."""
    for name, messages in (exc.errors or {}).items():
        for alias in FIELD_ALIASES.get(name, (name,)):
            if alias in form:
                form[alias].errors = list(form[alias].errors) + list(messages)
    form.form_errors.append(exc.detail)


# --- people ----------------------------------------------------------------------------------------

@bp.get("/")
@require_area("directory")
def index():
    form = PersonFilterForm(request.args)
    if not form.validate():
        raise ValidationFailed("Check the filters.", errors=form.errors)
    filters = queries.PeopleFilters(q=form.q.data, state=form.state.data or None, department=form.department.data,
                                    location=form.location.data, manager=form.manager.data,
                                    sort=form.sort.data or "name")
    page = queries.people_page(filters, cursor=request.args.get("cursor"))
    return render_template("directory/list.html", page=page, form=form, departments=queries.departments())


@bp.get("/people/<int:person_id>")
@require_area("directory")
def person(person_id: int):
    person = services.get_person(person_id)
    return render_template(
        "directory/person.html", person=person, actions=services.actions_of(person),
        mapped_groups=sorted(services.groups_for(person.department, person.title)),
        directory=queries.directory_account(person),
        assets=assets_services.assets_held_by(person.user) if person.user else [],
        tickets=queries.open_tickets_of(person), reserved=services.kit_reserved_for(person),
        can_change=current_user.role in (Role.HR, Role.ADMIN), live=person.state_enum in LIVE_STATES,
        confirm=ConfirmForm())


def _previewed(form: PreviewedForm, template: str, *, preview: Callable[[], services.Plan],
               confirm: Callable[[], object], **context):
    """Form, then its dry run, then the change: one flow for every previewed change."""
    if not form.validate_on_submit():
        return render_template(template, form=form, **context), 422 if request.method == "POST" else 200
    try:
        if not form.is_confirmed:
            return render_template("directory/preview.html", form=form, plan=preview(), action=request.path,
                                   **context)
        return confirm()
    except (ValidationFailed, Conflict, NotFound) as exc:  # an unreachable directory has its own page (503)
        _show_errors(form, exc)
        return render_template(template, form=form, **context), exc.status


def _dry_run(person, change: Callable[[], object]) -> services.Plan:
    """What `change` (scheduled, never run now) would do, without doing it: it runs in a savepoint that is
    rolled back, and the plan is what changed in the record plus each new step's previewed operations."""
    before = services.person_summary(person)
    states = {action.id: action.state for action in services.actions_of(person)}
    savepoint = db.session.begin_nested()
    try:
        change()
        plan = services.Plan()
        after = services.person_summary(person)
        plan.itops += [f"{name.replace('_', ' ')}: {before[name] or '—'} → {after[name] or '—'}"
                       for name in after if after[name] != before[name]]
        for action in reversed(services.actions_of(person)):
            if action.id not in states:
                plan.itops.append(f"schedule the {action.kind} step for {action.effective_date}"
                                  + (" (runs at once)" if action.effective_date <= date.today() else ""))
                plan.extend(services.preview_action(action))
            elif action.state != states[action.id]:
                plan.itops.append(f"the {action.kind} step of {action.effective_date}: {states[action.id]} → "
                                  f"{action.state}")
        return plan
    finally:
        savepoint.rollback()


@bp.route("/people/new", methods=["GET", "POST"])
@require_role(Role.HR)
def onboard():
    form = OnboardForm()

    def confirm():
        result = services.onboard(form.values(), by=current_user)
        return render_template("directory/onboarded.html", result=result), 201, NO_STORE

    return _previewed(form, "directory/onboard.html", preview=lambda: services.preview_onboard(form.values()),
                      confirm=confirm, person=None, heading="Onboard a person")


def _person_change(person, form: PreviewedForm, heading: str, change: Callable[[bool], object],
                   done: Callable[[object], str]):
    """A previewed change to a person: `change(run_now)` calls the service, `done(result)` says what happened."""
    def confirm():
        flash(done(change(True)), "success")
        return redirect(url_for("directory.person", person_id=person.id))

    return _previewed(form, "directory/change.html", preview=lambda: _dry_run(person, lambda: change(False)),
                      confirm=confirm, person=person, heading=heading)


@bp.route("/people/<int:person_id>/edit", methods=["GET", "POST"])
@require_role(Role.HR)
def edit(person_id: int):
    person = services.get_person(person_id)
    form = EditPersonForm(obj=person)
    return _person_change(
        person, form, "Edit HR record",
        lambda run_now: services.update_person(person, form.values(), by=current_user, run_now=run_now),
        lambda _: f"{person.display_name}'s record saved.")


@bp.route("/people/<int:person_id>/move", methods=["GET", "POST"])
@require_role(Role.HR)
def move(person_id: int):
    person = services.get_person(person_id)
    form = MoveForm(data={"effective": date.today(), "department": person.department, "title": person.title,
                          "manager": person.manager.employee_number if person.manager else None})
    return _person_change(
        person, form, "Move (department, title, manager)",
        lambda run_now: services.move(person, effective=form.effective.data, by=current_user,
                                      department=form.department.data, title=form.title.data,
                                      manager=form.manager.data or None, run_now=run_now),
        lambda action: f"{person.display_name} moves on {action.effective_date}"
                       + (" (done)." if action.state == ActionState.DONE else "."))


@bp.route("/people/<int:person_id>/offboard", methods=["GET", "POST"])
@require_role(Role.HR)
def offboard(person_id: int):
    person = services.get_person(person_id)
    form = OffboardForm(data={"end_date": person.end_date or date.today()})
    return _person_change(
        person, form, "Offboard",
        lambda run_now: services.offboard(person, end_date=form.end_date.data, by=current_user, run_now=run_now),
        lambda action: f"{person.display_name} leaves on {action.effective_date}"
                       + ("; the account is disabled." if action.state == ActionState.DONE else "."))


def _confirm_page(person, heading: str, change: Callable[[], object]):
    """A change with nothing to fill in: its dry run and a confirm button."""
    return render_template("directory/preview.html", form=ConfirmForm(), action=request.path, person=person,
                           heading=heading, plan=_dry_run(person, change))


@bp.route("/people/<int:person_id>/cancel-offboard", methods=["GET", "POST"])
@require_role(Role.HR)
def cancel_offboard(person_id: int):
    person = services.get_person(person_id)
    if request.method == "GET":
        return _confirm_page(person, "Cancel offboarding", lambda: services.cancel_offboard(person, by=current_user))
    require_valid(ConfirmForm())
    services.cancel_offboard(person, by=current_user)
    flash(f"{person.display_name} no longer leaves.", "success")
    return redirect(url_for("directory.person", person_id=person.id))


@bp.route("/people/<int:person_id>/restore", methods=["GET", "POST"])
@require_role(Role.HR)
def restore(person_id: int):
    person = services.get_person(person_id)
    if request.method == "GET":
        return _confirm_page(person, "Restore the account",
                             lambda: services.restore(person, by=current_user, run_now=False))
    require_valid(ConfirmForm())
    result = services.restore(person, by=current_user)
    return render_template("directory/passwords.html", heading=f"{person.display_name}'s account restored",
                           person=person, passwords={person.username: result.initial_password},
                           state=result.action.state), 200, NO_STORE


@bp.get("/actions/<int:action_id>/preview")
@require_area("directory")
def preview_action(action_id: int):
    action = services.get_action(action_id)
    return render_template("directory/action.html", action=action, plan=services.preview_action(action))


# --- HR CSV import ---------------------------------------------------------------------------------

def _import_page(form: ImportForm):
    return render_template("directory/import.html", form=form, columns=csv_io.CSV_COLUMNS,
                           required=csv_io.CSV_REQUIRED)


@bp.route("/import", methods=["GET", "POST"])
@require_role(Role.HR)
def import_csv():
    """Upload HR's CSV and see every row's changes and errors; nothing is written until it is confirmed."""
    form = ImportForm()
    if not form.validate_on_submit():
        return _import_page(form), 422 if request.method == "POST" else 200
    data = form.file.data.stream.read(csv_io.MAX_BYTES + 1)
    try:
        preview = csv_io.check(csv_io.read_rows(data))
    except ValidationFailed as exc:
        form.file.errors.append(exc.detail)
        return _import_page(form), 422
    import_id = asset_uploads.store_upload(data, owner_id=current_user.id) if preview.ok else None
    return render_template("directory/import_preview.html", preview=preview, import_id=import_id,
                           filename=form.file.data.filename, confirm=ConfirmForm())


def _import_and_run(data: bytes, user_id: int, progress: jobs.Progress) -> dict:
    """The job's work: import all rows or none, then run the steps due today (joiners starting now).

    The joiners' initial passwords are kept only encrypted in the job's result, until its owner views them once."""
    by = auth_services.get_user(user_id)
    progress.note("checking and importing the rows")
    outcome = csv_io.import_csv(data, by=by)
    if not outcome.preview.ok:
        raise ValidationFailed(f"{len(outcome.preview.error_rows)} rows have errors now; nothing was imported.")
    if outcome.held_batch is not None:
        return {"held for approval": f"batch {outcome.held_batch.id}: {outcome.held_batch.summary}"}
    applied = dict(outcome.applied)
    passwords = applied.pop("passwords")
    progress.note("running the steps due today")
    applied.update({f"steps {name}": count for name, count in services.run_due(progress=progress, by=by)
                    .as_dict().items() if count})
    if passwords:
        applied[SEALED_PASSWORDS] = crypto.encrypt(json.dumps(passwords))
    return applied


@bp.post("/import/<import_id>/confirm")
@require_role(Role.HR)
def confirm_import(import_id: str):
    require_valid(ConfirmForm())
    data = asset_uploads.load_upload(import_id, owner_id=current_user.id)
    asset_uploads.discard_upload(import_id, owner_id=current_user.id)  # a double click imports once
    job = jobs.create_job(IMPORT_JOB, "Import people from HR's CSV", by=current_user)
    db.session.commit()  # the job thread must find the job row
    user_id = current_user.id
    jobs.launch_in_background(job, lambda progress: _import_and_run(data, user_id, progress))
    return redirect(url_for("directory.import_job", job_id=job.id))


def _job_of_kind(job_id: int, kind: str) -> jobs.Job:
    job = jobs.get_job_for(current_user, job_id)
    if job.kind != kind:
        raise NotFound("No such job.")
    return job


@bp.get("/import/jobs/<int:job_id>")
@require_role(Role.HR)
def import_job(job_id: int):
    job = _job_of_kind(job_id, IMPORT_JOB)
    result = {k: v for k, v in (job.result or {}).items() if k != SEALED_PASSWORDS}
    return render_template("directory/import_job.html", job=job, result=result,
                           sealed=bool((job.result or {}).get(SEALED_PASSWORDS)), confirm=ConfirmForm())


@bp.post("/import/jobs/<int:job_id>/passwords")
@require_role(Role.HR)
def import_passwords(job_id: int):
    """Show the joiners' initial passwords once, to the person who ran the import, and forget them."""
    require_valid(ConfirmForm())
    job = _job_of_kind(job_id, IMPORT_JOB)
    sealed = (job.result or {}).get(SEALED_PASSWORDS)
    if job.created_by_id != current_user.id or not sealed:
        raise NotFound("These passwords were shown already, or were never yours to see.")
    job.result = {k: v for k, v in job.result.items() if k != SEALED_PASSWORDS}
    return render_template("directory/passwords.html", passwords=json.loads(crypto.decrypt(sealed)),
                           heading="Initial passwords of the imported joiners"), 200, NO_STORE


# --- reconcile -------------------------------------------------------------------------------------

@bp.route("/reconcile", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def reconcile_start():
    if request.method == "GET":
        return render_template("directory/reconcile_start.html", confirm=ConfirmForm(),
                               recent=jobs.recent_jobs(RECONCILE_JOB))
    require_valid(ConfirmForm())
    job = jobs.create_job(RECONCILE_JOB, "Reconcile people with the directory", by=current_user)
    db.session.commit()
    jobs.launch_in_background(job, lambda progress: reconcile.reconcile(progress).as_dict())
    return redirect(url_for("directory.reconcile_report", job_id=job.id))


@bp.get("/reconcile/<int:job_id>")
@require_role(Role.ADMIN)
def reconcile_report(job_id: int):
    job = _job_of_kind(job_id, RECONCILE_JOB)
    return render_template("directory/reconcile.html", job=job, report=job.result or {}, confirm=ConfirmForm())


@bp.post("/reconcile/<int:job_id>/apply")
@require_role(Role.ADMIN)
def reconcile_apply(job_id: int):
    """Apply the ticked findings, checked against a fresh read: one fixed meanwhile is left alone."""
    require_valid(ConfirmForm())
    _job_of_kind(job_id, RECONCILE_JOB)
    chosen = set(request.form.getlist("key"))
    if not chosen:
        raise ValidationFailed("Tick at least one finding to apply.", errors={"key": ["Tick at least one."]})
    report = reconcile.reconcile()
    still_there = chosen & {finding.key for finding in report.findings}
    outcome = reconcile.apply(report, still_there, by=current_user)
    return render_template("directory/reconciled.html", outcome=outcome, gone=sorted(chosen - still_there),
                           job_id=job_id), 200, NO_STORE


# --- batches held by the mass-change guard -----------------------------------------------------------

@bp.get("/batches")
@require_role(Role.ADMIN)
def batches():
    held = services.batches_awaiting_approval()
    return render_template("directory/batches.html", batches=held, steps=queries.held_steps(held),
                           confirm=ConfirmForm())


@bp.post("/batches/<int:batch_id>/<any(approve, reject):decision>")
@require_role(Role.ADMIN)
def decide_batch(batch_id: int, decision: str):
    require_valid(ConfirmForm())
    decide = services.approve_batch if decision == "approve" else services.reject_batch
    batch = decide(services.get_batch(batch_id), by=current_user)
    flash(f"Batch {batch.id} {batch.state.replace('_', ' ')}"
          + (": its steps run at the next run of due steps." if decision == "approve" else "."), "success")
    return redirect(url_for("directory.batches"))


# --- group mappings and kit templates ----------------------------------------------------------------

def _mappings_page(form: GroupMappingForm, mapping=None, status: int = 200):
    return render_template("directory/mappings.html", form=form, mapping=mapping,
                           mappings=services.group_mappings(), confirm=ConfirmForm()), status


@bp.route("/mappings", methods=["GET", "POST"])
@bp.route("/mappings/<int:mapping_id>", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def mappings(mapping_id: int | None = None):
    mapping = services.get_group_mapping(mapping_id) if mapping_id else None
    form = GroupMappingForm(data={"department": mapping.department, "title": mapping.title,
                                  "groups": "\n".join(mapping.groups)} if mapping else None)
    if not form.validate_on_submit():
        return _mappings_page(form, mapping, 422 if request.method == "POST" else 200)
    try:
        saved = services.save_group_mapping(department=form.department.data, title=form.title.data,
                                            groups=form.group_names(), by=current_user, mapping=mapping)
    except DomainError as exc:
        _show_errors(form, exc)
        return _mappings_page(form, mapping, exc.status)
    flash(f"Mapping saved: {saved.department or 'any department'} / {saved.title or 'any title'} → "
          f"{', '.join(saved.groups)}.", "success")
    return redirect(url_for("directory.mappings"))


@bp.post("/mappings/<int:mapping_id>/delete")
@require_role(Role.ADMIN)
def delete_mapping(mapping_id: int):
    require_valid(ConfirmForm())
    services.delete_group_mapping(services.get_group_mapping(mapping_id), by=current_user)
    flash("Mapping removed; accounts leave its groups at their next change or reconcile.", "success")
    return redirect(url_for("directory.mappings"))


@bp.route("/kits", methods=["GET", "POST"])
@require_role(Role.ADMIN)
def kits():
    templates = services.kit_templates()
    chosen = next((t for t in templates if t.department == request.args.get("department")), None)
    form = KitTemplateForm(data={"department": chosen.department, "items": "\n".join(
        f"{i['kind']}: {i['model']}" if i["model"] else i["kind"] for i in chosen.items)} if chosen else None)
    status = 422 if request.method == "POST" else 200
    if form.validate_on_submit():
        try:
            saved = services.save_kit_template(form.department.data, form.kit_items(), by=current_user)
        except DomainError as exc:
            _show_errors(form, exc)
            status = exc.status
        else:
            flash(f"Kit for {saved.department} saved.", "success")
            return redirect(url_for("directory.kits"))
    return render_template("directory/kits.html", form=form, templates=templates), status
