"""`flask itops assets ...`: CSV import and export. Each command commits at its end (the command boundary)."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from itops.assets import csv_io, queries, services
from itops.assets.choices import AssetKind, Status
from itops.core import jobs
from itops.core.errors import DomainError
from itops.extensions import db

assets_cli = AppGroup("assets", help="Assets: CSV import and export, agent enrollment tokens.")


def _fail(message: str, code: int = 1):
    db.session.rollback()
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


@assets_cli.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--dry-run", is_flag=True, help="Check the file and show what it would do; write nothing.")
@click.option("--valid-only", is_flag=True, help="Import the valid rows and leave the rows with errors out.")
def import_assets(file, dry_run, valid_only):
    """Create and update assets from a CSV FILE (columns as in the export; '-' reads standard input).

    Exits 1 when the file or a row has errors and nothing was imported.
    """
    try:
        preview = csv_io.check(csv_io.read_limited(file))
    except DomainError as exc:
        _fail(exc.detail)
    for row in preview.error_rows:
        click.echo(f"row {row.number} ({row.label}): " + " ".join(row.errors), err=True)
    counts = preview.counts
    click.echo(f"{counts['rows']} rows: {counts['create']} to create, {counts['update']} to update, "
               f"{counts['errors']} with errors")
    if dry_run:
        db.session.rollback()
        sys.exit(1 if counts["errors"] else 0)
    refusal = csv_io.refusal(preview, valid_only=valid_only)
    if refusal:
        _fail(refusal + (" (--valid-only imports the valid rows)" if counts["valid"] and not valid_only else ""))
    job = jobs.create_job("assets.import", "Import assets from CSV", total=counts["valid"])
    db.session.commit()
    job = jobs.run_job_with_bar(job, lambda progress: csv_io.apply(preview, by="cli", valid_only=valid_only,
                                                                   progress=progress), label="importing assets")
    if job.state != jobs.JobState.SUCCEEDED:
        _fail(job.error or "the import failed")
    click.echo(", ".join(f"{name}: {count}" for name, count in job.result.items()))


@assets_cli.command("export")
@click.option("--kind", type=click.Choice([k.value for k in AssetKind]))
@click.option("--status", type=click.Choice([s.value for s in Status]))
@click.option("--q", "text", help="Search tag, name, serial, IMEI, MAC and holder.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default="-",
              help="Write to this file (default: standard output).")
def export_assets(kind, status, text, output):
    """Write assets as CSV (the same columns import reads), with CSV-injection escaping."""
    filters = queries.AssetFilters(q=text, kind=kind, status=status).validated()
    with click.open_file(output, "wb") as handle:
        for chunk in csv_io.export_chunks(queries.iter_assets(filters)):
            handle.write(chunk.encode("utf-8"))
    db.session.rollback()  # only read; nothing to commit


@assets_cli.command("enrollment-token")
@click.argument("name")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True, help="How long it stays valid.")
def create_enrollment_token(name, days):
    """Create an agent enrollment token NAME and print it once (for `python -m itops.agent enroll`)."""
    try:
        issued = services.issue_enrollment_token(name, days=days, by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(issued.secret)
    click.echo(f"valid until {issued.token.expires_at:%Y-%m-%d %H:%M} UTC; shown once, not stored in clear.", err=True)
