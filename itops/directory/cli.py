"""`flask itops directory ...`: run due steps, reconcile, HR CSV import, guarded batches.

Each command commits at its end (the command boundary). Exit codes: 0 done; 1 errors (nothing
written); 2 held for an administrator's approval; 3 the directory is unreachable (steps retry later).
"""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from itops.core import jobs
from itops.core.errors import DomainError
from itops.extensions import db

directory_cli = AppGroup("directory", help="Directory: dated joiner/mover/leaver steps, reconcile, HR CSV import.")

EXIT_ERRORS, EXIT_HELD, EXIT_UNREACHABLE = 1, 2, 3


def _fail(message: str, code: int = EXIT_ERRORS):
    db.session.rollback()
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _show_plan(plan) -> None:
    for line in plan.itops:
        click.echo(f"  itops: {line}")
    for op in plan.ldap:
        click.echo(f"  ldap:  {op['op']} {op['dn']} {op.get('changes') or op.get('attributes') or ''}".rstrip())
    for warning in plan.warnings:
        click.secho(f"  warning: {warning}", fg="yellow")


@directory_cli.command("run-due")
@click.option("--dry-run", is_flag=True, help="Show the LDAP operations and itops changes; change nothing.")
def run_due(dry_run):
    """Run the joiner, mover and leaver steps that are due (what the scheduler calls)."""
    from itops.directory import services, tasks  # ldap3 loads when a directory command runs

    try:
        if dry_run:
            _show_plan(services.preview_due())
            db.session.rollback()
            return
        due = services.count_due()
        with click.progressbar(length=max(due, 1), label="directory steps", show_pos=True) as bar:
            totals = tasks.run_due_steps(by="cli", on_chunk=lambda s: bar.update(s.done + s.failed + s.retrying))
    except DomainError as exc:
        _fail(exc.detail)
    click.echo(", ".join(f"{k}: {v}" for k, v in totals.items() if k != "directory_unreachable"))
    if totals["held"]:
        click.secho(f"{totals['held']} steps disable or delete more accounts than the mass-change guard allows; "
                    "they wait for approval: flask itops directory batches", fg="yellow", err=True)
        sys.exit(EXIT_HELD)
    if totals["directory_unreachable"]:
        click.secho("the directory is unreachable; the remaining steps are retried later", fg="yellow", err=True)
        sys.exit(EXIT_UNREACHABLE)
    if totals["failed"]:
        sys.exit(EXIT_ERRORS)


@directory_cli.command("reconcile")
@click.option("--apply", "apply_fixes", is_flag=True, help="Apply the fixes (after confirming); default: report only.")
@click.option("--only", "keys", multiple=True, help="Apply only this finding (repeatable), e.g. person:12 or orphan:jdoe.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reconcile(apply_fixes, keys, yes):
    """Compare HR's people with the directory: orphans, missing accounts, attribute and group drift."""
    from itops.directory import reconcile as reconcile_module

    job = jobs.create_job("directory.reconcile", "Reconcile the directory")
    db.session.commit()
    holder = {}

    def work(progress):
        holder["report"] = reconcile_module.reconcile(progress)
        return holder["report"].counts

    job = jobs.run_job_with_bar(job, work, label="reconciling")
    if job.state != jobs.JobState.SUCCEEDED:
        _fail(job.error or "reconcile failed")
    report = holder["report"]
    for finding in report.findings:
        click.echo(f"{finding.key:24} {finding.kind:10} {finding.detail}")
        for op in finding.operations:
            click.echo(f"    {op['op']} {op['dn']} {op.get('changes') or op.get('attributes') or ''}".rstrip())
    click.echo(", ".join(f"{k}: {v}" for k, v in report.counts.items()))
    if not apply_fixes or not report.findings:
        return
    chosen = set(keys) or {f.key for f in report.findings}
    if not yes and not click.confirm(f"Apply {len(chosen)} fixes?"):
        _fail("nothing applied")
    try:
        outcome = reconcile_module.apply(report, chosen, by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    if outcome.held_batch_id:
        click.secho(f"held for approval as batch {outcome.held_batch_id} (mass-change guard); nothing applied",
                    fg="yellow", err=True)
        sys.exit(EXIT_HELD)
    click.echo(f"applied {len(outcome.applied)} fixes")
    for username, password in outcome.passwords.items():
        click.echo(f"new initial password for {username}: {password}")


@directory_cli.command("import-csv")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check every row and show what would change; write nothing.")
def import_csv(file, dry_run):
    """Import HR's CSV FILE (joiners, movers, leavers); all rows or none. Initial passwords are printed once."""
    from itops.directory import csv_io

    try:
        outcome = csv_io.import_csv(file.read(), by="cli", dry_run=dry_run)
    except DomainError as exc:
        _fail(exc.detail)
    preview = outcome.preview
    for row in preview.rows:
        for error in row.errors:
            click.echo(f"line {row.number} ({row.employee_number or 'no employee number'}): {error}", err=True)
        for warning in row.warnings:
            click.echo(f"line {row.number}: warning: {warning}", err=True)
        if dry_run:
            for change in row.changes:
                click.echo(f"line {row.number} ({row.employee_number}): {change}")
            for op in row.ldap:
                click.echo(f"line {row.number} ({row.employee_number}): ldap {op['op']} {op['dn']}")
    counts = preview.counts
    click.echo(f"{counts['rows']} rows: {counts['create']} joiners, {counts['update']} changed, "
               f"{counts['unchanged']} unchanged, {counts['errors']} with errors")
    if not preview.ok:
        _fail("nothing imported: fix the rows above and import the whole file again")
    if dry_run:
        db.session.rollback()
        return
    db.session.commit()
    if outcome.held_batch is not None:
        click.secho(f"{preview.removals} leavers exceed the mass-change guard: held as batch {outcome.held_batch.id} "
                    "for an administrator's approval; nothing imported", fg="yellow", err=True)
        sys.exit(EXIT_HELD)
    for username, password in outcome.applied["passwords"].items():
        click.echo(f"initial password for {username}: {password}")
    click.echo("steps due today run with `flask itops directory run-due`")


@directory_cli.command("batches")
def batches():
    """Batches held by the mass-change guard."""
    from itops.directory import services

    for batch in services.batches_awaiting_approval():
        click.echo(f"{batch.id:6} {batch.kind:10} {batch.created_at:%Y-%m-%d %H:%M} {batch.created_by_label:12} "
                   f"{batch.summary}")


@directory_cli.command("approve")
@click.argument("batch_id", type=int)
def approve(batch_id):
    """Approve a held batch: its steps run at the next run-due."""
    _decide(batch_id, "approve_batch")


@directory_cli.command("reject")
@click.argument("batch_id", type=int)
def reject(batch_id):
    """Reject a held batch: its steps are cancelled."""
    _decide(batch_id, "reject_batch")


def _decide(batch_id: int, decision: str) -> None:
    from itops.directory import services

    try:
        batch = getattr(services, decision)(services.get_batch(batch_id), by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(f"batch {batch.id} {batch.state}")
