"""Migrations: one head, the migrated schema equals the models, and a full down/up round trip."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
import flask_migrate
from sqlalchemy import inspect

from itops.core.database import include_in_autogenerate
from itops.extensions import db
from tests.conftest import build_test_app


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())


def test_there_is_a_single_head():
    assert len(_script().get_heads()) == 1


def test_migrated_schema_matches_the_models():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True,
                                                               "include_object": include_in_autogenerate})
        assert context.get_current_revision() == _script().get_current_head()
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_and_upgrade_again(tmp_path):
    scratch = build_test_app(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    with scratch.app_context():
        flask_migrate.upgrade()
        flask_migrate.downgrade(revision="base")
        assert inspect(db.engine).get_table_names() == ["alembic_version"]
        flask_migrate.upgrade()
        assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
        db.engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys():
    if db.engine.dialect.name != "sqlite":
        assert db.engine.dialect.name == "postgresql"
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_every_model_table_exists():
    assert set(db.metadata.tables) <= set(inspect(db.engine).get_table_names())
