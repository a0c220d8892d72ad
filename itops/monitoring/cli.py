"""`flask itops scheduler`: run the periodic work (see itops/monitoring/scheduler.py)."""
from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from itops.monitoring import scheduler as scheduler_module


@click.command("scheduler")
@click.option("--list", "list_only", is_flag=True, help="Print the tasks and their intervals, then exit.")
@with_appcontext
def scheduler_cli(list_only: bool) -> None:
    """Run the scheduler: one leader runs the periodic tasks, further copies wait as standbys."""
    app = current_app._get_current_object()
    try:
        seconds = scheduler_module.intervals(app)
    except scheduler_module.UnknownTask as exc:
        click.secho(f"error: {exc}", fg="red", err=True)
        sys.exit(2)
    if list_only:
        for task in scheduler_module.TASKS:
            click.echo(f"{task.name:22} {scheduler_module.describe_when(seconds[task.name]):>20}  {task.describe}")
        return
    scheduler_module.run_scheduler(app, echo=lambda line: click.echo(line, err=True))
