"""Database helpers shared by every model: UTC timestamps, SQLite connection settings, ids for batches."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, event, false, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime given; use itops.core.database.utcnow()")
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


def configure_sqlite(engine: Engine) -> None:
    """WAL lets the web and scheduler processes read while one writes; foreign keys are off by default."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


# Full-text search objects are created by hand in migrations because they differ per database (FTS5
# tables and triggers on SQLite, a generated tsvector column and GIN index on PostgreSQL) and the
# models cannot describe them. Autogenerate and the schema test leave them alone by these names.
SEARCH_TABLE_PREFIX = "fts_"
SEARCH_COLUMN = "search_vector"
SEARCH_INDEX_PREFIX = "ix_fts_"


def include_in_autogenerate(obj, name, type_, reflected, compare_to) -> bool:
    if type_ == "table" and name and name.startswith(SEARCH_TABLE_PREFIX):
        return False
    if type_ == "column" and name == SEARCH_COLUMN:
        return False
    if type_ == "index" and name and name.startswith(SEARCH_INDEX_PREFIX):
        return False
    return True


def assign_ids(session, model) -> None:
    """Give the session's new rows of `model` their ids before they are written, so that the ORM sends them
    in one executemany: without ids it inserts them one at a time on SQLite, to read each id back (SQLite
    does not promise the order of RETURNING rows). For batches; a single row gains nothing.

    PostgreSQL hands the ids out from the table's sequence. SQLite has one writer at a time: an empty
    UPDATE takes the write lock (held to the end of the transaction) before the table's highest id is
    read, so no one else can take the ids after it.
    """
    key = model.__table__.primary_key.columns[0]
    pending = [obj for obj in session.new if isinstance(obj, model)]
    waiting = [obj for obj in pending if getattr(obj, key.key) is None]
    if len(waiting) < 2:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        ids = connection.execute(text("SELECT nextval(pg_get_serial_sequence(:table, :column)) "
                                      "FROM generate_series(1, :count)"),
                                 {"table": model.__table__.name, "column": key.name, "count": len(waiting)}).scalars()
    else:
        connection.execute(update(model.__table__).values({key.name: key}).where(false()))
        top = max([connection.execute(select(func.max(key))).scalar() or 0,
                   *(getattr(obj, key.key) or 0 for obj in pending)])
        ids = range(top + 1, top + 1 + len(waiting))
    for obj, new_id in zip(waiting, ids):
        setattr(obj, key.key, new_id)
