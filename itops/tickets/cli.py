"""`flask itops tickets ...`: the clock-driven helpdesk work, runnable by hand or from cron."""
from __future__ import annotations

import click
from flask.cli import AppGroup

from itops.tickets import tasks

tickets_cli = AppGroup("tickets", help="Helpdesk: SLA breach sweep and auto-close.")


@tickets_cli.command("sweep")
def sweep():
    """Flag tickets past their SLA due times and close tickets resolved long enough ago."""
    flagged = tasks.sweep_sla()
    closed = tasks.close_resolved()
    click.echo(f"SLA breaches flagged: {flagged}; resolved tickets closed: {closed}")
