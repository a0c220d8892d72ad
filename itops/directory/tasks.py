"""Clock-driven directory work for the scheduler and the CLI: the due steps, in committed chunks."""
from __future__ import annotations

from collections.abc import Callable

from itops.directory import services
from itops.extensions import db

CHUNK = 200


def run_due_steps(*, by="system", on_chunk: Callable[[services.RunSummary], None] | None = None) -> dict:
    """Run every due step, committing after each chunk (this is a task boundary), until none is left
    or the directory is unreachable (the rest wait for their retry time)."""
    totals = services.RunSummary()
    while True:
        summary = services.run_due(limit=CHUNK, by=by)
        db.session.commit()
        for name in ("done", "failed", "retrying", "held"):
            setattr(totals, name, getattr(totals, name) + getattr(summary, name))
        totals.unreachable = totals.unreachable or summary.unreachable
        if on_chunk is not None:
            on_chunk(summary)
        if summary.unreachable or summary.done + summary.failed + summary.retrying == 0:
            return totals.as_dict()
