"""The `flask itops` command group. Each command commits at its end (the command boundary)."""
from __future__ import annotations

import os
import sys

import click
from flask import current_app
from flask.cli import AppGroup

from itops.assets.cli import assets_cli
from itops.core import jobs
from itops.core.auth import services
from itops.core.errors import DomainError
from itops.core.outbox import outbox_cli
from itops.core.policy import Role
from itops.directory.cli import directory_cli
from itops.directory.scim_cli import scim_token_cli
from itops.monitoring.cli import scheduler_cli
from itops.tickets.cli import tickets_cli
from itops.extensions import db

itops_cli = AppGroup("itops", help="itops administration commands.")
users_cli = AppGroup("users", help="Local users, roles, sessions and API tokens.")
demo_cli = AppGroup("demo", help="Demo data for `make run`.")
itops_cli.add_command(users_cli)
itops_cli.add_command(demo_cli)
itops_cli.add_command(assets_cli)
itops_cli.add_command(outbox_cli)
itops_cli.add_command(tickets_cli)
itops_cli.add_command(directory_cli)
directory_cli.add_command(scim_token_cli)
itops_cli.add_command(scheduler_cli)

ROLE_CHOICE = click.Choice([r.value for r in Role])


def register_cli(app) -> None:
    from itops.core.migrations import migration_commands

    app.cli.add_command(itops_cli)
    app.cli.add_command(migration_commands)


def _fail(message: str, code: int = 1):
    db.session.rollback()
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def _user_or_fail(username: str):
    user = services.find_user(username)
    if user is None:
        _fail(f"no user named {username!r}", 2)
    return user


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_cli.command("create")
@click.argument("username")
@click.option("--role", type=ROLE_CHOICE, required=True)
@click.option("--display-name")
@click.option("--email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
def create_user(username, role, display_name, email, password_stdin):
    """Create a local user (for administrators and service accounts; staff sign in with the directory)."""
    try:
        user = services.create_local_user(username, _read_password(password_stdin), role=role,
                                          display_name=display_name, email=email, by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(f"created {user.username} ({Role(user.role).label})")


@users_cli.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True)
def set_password(username, password_stdin):
    """Set a local user's password; their other sessions end."""
    user = _user_or_fail(username)
    try:
        services.set_password(user, _read_password(password_stdin), by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(f"password changed for {user.username}; their sessions were signed out")


@users_cli.command("list")
def list_users():
    """Every user with role, source and state."""
    for user in db.session.scalars(services.user_query().order_by("username")):
        state = "active" if user.active else "disabled"
        click.echo(f"{user.username:24} {user.role:9} {user.source:10} {state}")


@users_cli.command("revoke-sessions")
@click.argument("username")
@click.option("--tokens", is_flag=True, help="Also revoke every API token.")
def revoke_sessions(username, tokens):
    """Sign a user out of every session (and, with --tokens, revoke their API tokens)."""
    user = _user_or_fail(username)
    if tokens:
        services.revoke_everything(user, by="cli", reason="revoked from the command line")
    else:
        services.revoke_sessions(user, by="cli", reason="revoked from the command line")
    db.session.commit()
    click.echo(f"{user.username}: sessions revoked" + (" and API tokens revoked" if tokens else ""))


@users_cli.command("create-token")
@click.argument("username")
@click.argument("name")
def create_token(username, name):
    """Issue a personal API token for USERNAME; the secret is printed once."""
    user = _user_or_fail(username)
    try:
        issued = services.issue_token(user, name, by="cli")
    except DomainError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(issued.secret)


@users_cli.command("refresh-directory")
def refresh_directory():
    """Re-read every directory user: names and roles, and disable those gone or locked."""
    job = jobs.create_job("directory.refresh", "Refresh users from the directory")
    db.session.commit()
    job = jobs.run_job_with_bar(job, lambda progress: services.refresh_from_directory(progress, by="cli"),
                                label="directory users")
    if job.state != jobs.JobState.SUCCEEDED:
        _fail(job.error or "the refresh failed")
    click.echo(", ".join(f"{k}: {v}" for k, v in job.result.items()))


def _demo_switches() -> tuple[list[int], str, str, str]:
    """The simulated switches `make run` started: their ports, and the login from its 0600 file."""
    import json

    login = json.loads(open(os.environ["ITOPS_DEMO_SWITCH_LOGIN_FILE"]).read())
    ports = [int(port) for port in os.environ["ITOPS_DEMO_SWITCHES"].split(",") if port]
    return ports, login["username"], login["password"], login["enable_secret"]


@demo_cli.command("load")
def load_demo():
    """Create the demo's local administrator on first start (idempotent); prints the demo logins."""
    from itops.demo import data

    instance_dir = current_app.config["ITOPS_INSTANCE_DIR"]
    logins = data.demo_logins(instance_dir)
    created = data.load_local_users(logins)
    with_directory = current_app.config["ITOPS_LDAP"] is not None  # the demo people live in the directory
    assets = data.load_demo_assets() if with_directory else 0
    tickets = data.load_demo_tickets() if with_directory else 0
    checks = data.load_demo_monitoring(*_demo_switches()) if os.environ.get("ITOPS_DEMO_SWITCHES") else 0
    data.demo_enrollment_token(instance_dir)
    db.session.commit()
    if assets:
        created.append(f"{assets} assets")
    if tickets:
        created.append(f"{tickets} tickets")
    if checks:
        created.append(f"{checks} monitoring checks")
    click.echo("created: " + (", ".join(created) if created else "nothing (already loaded)"))
