"""`flask itops directory scim-token create|list|revoke`: the HR systems' SCIM bearer tokens.

Each command commits at its end. The secret is printed once, by `create`, and never again.
"""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from itops.directory import scim_services
from itops.directory.scim_filter import ScimError
from itops.extensions import db

scim_token_cli = AppGroup("scim-token", help="Bearer tokens for HR systems calling /scim/v2.")


def _fail(message: str) -> None:
    db.session.rollback()
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


@scim_token_cli.command("create")
@click.argument("name")
def create_token(name):
    """Create a token named NAME (the HR system: it is the actor in the audit log) and print it once."""
    try:
        issued = scim_services.issue_token(name, by="cli")
    except ScimError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(f"SCIM token {issued.token.name} (shown once, store it in the HR system now):")
    click.echo(issued.secret)


@scim_token_cli.command("list")
def list_tokens():
    """Every SCIM token: name, prefix, created, last used, revoked."""
    for token in scim_services.tokens():
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        created = f"{token.created_at:%Y-%m-%d %H:%M}"
        click.echo(f"{token.name}\t{token.prefix}…\tcreated {created}\tlast used {used}\t{state}")


@scim_token_cli.command("revoke")
@click.argument("name")
def revoke_token(name):
    """Revoke the token named NAME: the HR system's next call is refused."""
    try:
        scim_services.revoke_token(name, by="cli")
    except ScimError as exc:
        _fail(exc.detail)
    db.session.commit()
    click.echo(f"revoked SCIM token {name}")
