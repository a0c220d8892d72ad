"""Clock-driven directory work for the scheduler and the CLI: the due steps, in committed chunks."""
from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from itops.core import jobs
from itops.directory import services
from itops.directory.batching import LongRun
from itops.directory.ldap import gateway
from itops.extensions import db

RECONCILE_JOB = "directory.reconcile"

# Steps per committed chunk. Each chunk ends with this process waiting for the writers' last adds and
# commits before the next starts, a cost per chunk: 500 rather than 200 took 10-15% off onboarding 10,000
# people. A chunk holds SQLite's write lock for about a second (PostgreSQL locks only its rows).
CHUNK = 500


def run_due_steps(*, by="system", on_chunk: Callable[[services.RunSummary], None] | None = None) -> dict:
    """Run every due step, committing after each chunk (this is a task boundary), until none is left
    or the directory is unreachable (the rest wait for their retry time)."""
    totals = services.RunSummary()
    long_run = LongRun(gateway())
    try:
        while True:
            summary = services.run_due(limit=CHUNK, by=by, long_run=long_run)
            db.session.commit()
            _add_up(totals, summary)
            if on_chunk is not None:
                on_chunk(summary)
            if summary.unreachable or summary.done + summary.failed + summary.retrying == 0:
                break
        last = services.RunSummary()
        services.record_joins(long_run.joins, last)  # the last chunk's
        db.session.commit()
        _add_up(totals, last)
        return totals.as_dict()
    finally:
        long_run.close()


def _add_up(totals: services.RunSummary, summary: services.RunSummary) -> None:
    for name in ("done", "failed", "retrying", "held"):
        setattr(totals, name, getattr(totals, name) + getattr(summary, name))
    totals.unreachable = totals.unreachable or summary.unreachable


def scheduled_run_due() -> dict:
    """The scheduler's entry: the due steps, or nothing at all when no directory is configured."""
    if current_app.config.get("ITOPS_LDAP") is None:
        return {"skipped": "no directory configured"}
    return run_due_steps(by="scheduler")


def nightly_reconcile_report() -> dict:
    """A reconcile report as a job, listed on the admins' reconcile page; it reads only, applies nothing."""
    if current_app.config.get("ITOPS_LDAP") is None:
        return {"skipped": "no directory configured"}
    from itops.directory import reconcile

    job = jobs.create_job(RECONCILE_JOB, "Nightly reconcile report")
    db.session.commit()  # watchers (and run_job's progress writes) must find the job row
    finished = jobs.run_job(job, lambda progress: reconcile.reconcile(progress).as_dict())
    return {"job_id": finished.id, "state": finished.state}
