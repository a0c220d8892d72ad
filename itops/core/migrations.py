"""Schema migrations (Flask-Migrate over Alembic), bound to the app only where they are used.

Web workers never migrate, and Alembic with Flask-Migrate adds about 10 MB to every process that
imports them. So `flask db ...` is a click group that loads them on first use, and tests and tools
that migrate in-process call `init_migrations(app)` first.
"""
from __future__ import annotations

import click
from flask import g
from flask.cli import with_appcontext

from itops.config import PROJECT_ROOT
from itops.core.database import include_in_autogenerate
from itops.extensions import db

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def init_migrations(app) -> None:
    """Bind Flask-Migrate to the app (once): what `flask_migrate.upgrade()` and migrations/env.py read."""
    if "migrate" in app.extensions:
        return
    from flask_migrate import Migrate

    Migrate(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True,
            include_object=include_in_autogenerate, compare_type=True)


class MigrationCommands(click.Group):
    """`flask db ...`: Flask-Migrate's own command group, imported when a db command is asked for."""

    def _commands(self, ctx: click.Context) -> click.Group:
        from flask.cli import ScriptInfo

        init_migrations(ctx.ensure_object(ScriptInfo).load_app())
        from flask_migrate.cli import db as flask_migrate_group

        return flask_migrate_group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return self._commands(ctx).list_commands(ctx)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self._commands(ctx).get_command(ctx, name)


@click.group("db", cls=MigrationCommands)
@click.option("-d", "--directory", default=None, help="Migration script directory (default: the project's)")
@click.option("-x", "--x-arg", multiple=True, help="Additional arguments consumed by custom env.py scripts")
@with_appcontext
def migration_commands(directory, x_arg):
    """Database migrations (Flask-Migrate): upgrade, downgrade, current, history, migrate ..."""
    g.directory, g.x_arg = directory, x_arg  # what Flask-Migrate's commands read, as its own group sets them
