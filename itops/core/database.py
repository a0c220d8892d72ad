"""Database helpers shared by every model: UTC timestamps, SQLite connection settings, ids for batches."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, bindparam, event, false, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import MANYTOONE, Session, make_transient_to_detached, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
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
    """WAL lets the web and scheduler processes read while one writes; foreign keys are off by default;
    writers queue for the write lock in the processes (itops.core.sqlite_writers), not in SQLite's sleeps."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "do_connect")
    def _queued_writers(_dialect, _record, _cargs, cparams):
        from itops.core.sqlite_writers import QueuedWriterConnection

        cparams.setdefault("factory", QueuedWriterConnection)

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


def insert_now(session, model, objects: list) -> None:
    """Write new objects of `model` at once, in one statement, and put them in the session as written: their
    ids, column defaults and many-to-one foreign keys set, without the unit of work, whose bookkeeping costs
    a batch several times the INSERT itself. The rows they refer to must be written already; the objects
    must not refer to each other. For batches of plain rows (no insert events are used in this project)."""
    if not objects:
        return
    if isinstance(session, scoped_session):
        session = session()
    mapper, table = inspect(model), model.__table__
    key = table.primary_key.columns[0]
    for obj in objects:
        if obj in session:  # pending: the unit of work must not write it a second time
            session.expunge(obj)
    waiting = [obj for obj in objects if getattr(obj, key.key) is None]
    # One new row takes the id the database gives it on insert; a batch reserves its ids first.
    one_new_row = len(objects) == 1 and len(waiting) == 1
    if waiting and not one_new_row:
        for obj, new_id in zip(waiting, _next_ids(session, model, len(waiting))):
            setattr(obj, key.key, new_id)
    # Looked up once for the batch, not per row: (attribute, [(foreign key attribute, remote column)]) of each
    # many-to-one relationship, and (column, attribute, default) of each column.
    references = [(relation.key, [(mapper.get_property_by_column(local).key, remote)
                                  for local, remote in relation.local_remote_pairs])
                  for relation in mapper.relationships if relation.direction is MANYTOONE]
    columns = [(column.key, mapper.get_property_by_column(column).key, column.default) for column in table.columns]
    rows = []
    for obj in objects:
        values = obj.__dict__
        for name, pairs in references:
            target = values.get(name)
            if target is not None:
                target_mapper = inspect(target.__class__)  # __class__: also through a proxy (current_user)
                for local, remote in pairs:
                    setattr(obj, local, getattr(target, target_mapper.get_property_by_column(remote).key))
        row = {}
        for column, name, default in columns:
            if name not in values:
                setattr(obj, name, None if default is None else default.arg(None) if default.is_callable
                        else default.arg)
            row[column] = values[name]
        rows.append(row)
    if one_new_row:
        del rows[0][key.key]
        result = session.connection().execute(table.insert(), rows[0])
        setattr(objects[0], key.key, result.inserted_primary_key[0])
    else:
        session.connection().execute(table.insert(), rows)
    for obj in objects:
        make_transient_to_detached(obj)
        session.add(obj)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_INSERTED, []).append((transaction, list(objects)))


_INSERTED = "itops.inserted_now"   # session.info: (transaction, objects) written by insert_now
_UPDATED = "itops.updated_now"     # session.info: (transaction, objects) written by update_now


def update_now(session, model, objects: list, columns: tuple[str, ...]) -> None:
    """Write these columns of many persistent objects of `model` in one executemany UPDATE (by primary key),
    and take them as written. An object with no other change leaves the session's dirty set: the unit of
    work's bookkeeping of each dirty object (its relationships' histories above all) costs a batch far more
    than the UPDATE. A rollback (of a savepoint too) expires them, so they are read again as they are.
    Column attributes only, named as their columns."""
    if not objects:
        return
    if isinstance(session, scoped_session):
        session = session()
    table = model.__table__
    key = table.primary_key.columns[0]
    statement = update(table).where(key == bindparam("_key")).values({name: bindparam(name) for name in columns})
    with session.no_autoflush:  # reading an expired object's values must not flush the objects' other changes
        rows = [{"_key": getattr(obj, key.key), **{name: getattr(obj, name) for name in columns}} for obj in objects]
    session.connection().execute(statement, rows)
    written = set(columns)
    for obj in objects:
        state = inspect(obj)
        if written.issuperset(state.committed_state):
            # Nothing else changed: clean, as after a flush (no public call does this for one object).
            state._commit_all(state.dict, session.identity_map)
        else:
            for name in columns:
                set_committed_value(obj, name, getattr(obj, name))
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_UPDATED, []).append((transaction, list(objects)))


def forget_rolled_back_writes() -> None:
    """Make a rollback (of a savepoint too) take insert_now's objects out of the session and expire
    update_now's: the unit of work undoes what it wrote itself, but it did not see these writes, and a later
    row given the same id would clash with an inserted one. Installed once per process, by create_app."""
    if not event.contains(Session, "after_soft_rollback", _forget_rolled_back):
        event.listen(Session, "after_soft_rollback", _forget_rolled_back)
        event.listen(Session, "after_commit", _forget_committed)


def _forget_rolled_back(session, previous_transaction) -> None:
    _undo_writes(session, _UPDATED, previous_transaction, session.expire)   # read again as the database has them
    _undo_writes(session, _INSERTED, previous_transaction, session.expunge)  # gone from the database


def _undo_writes(session, key: str, rolled_back, undo) -> None:
    """`undo` each object of the writes recorded under `key` that were made inside the rolled-back transaction."""
    kept = []
    for transaction, objects in session.info.get(key) or ():
        if _inside(transaction, rolled_back):
            for obj in objects:
                if obj in session:
                    undo(obj)
        else:
            kept.append((transaction, objects))
    session.info[key] = kept


def _forget_committed(session) -> None:
    session.info.pop(_INSERTED, None)  # after_commit: the outermost transaction only
    session.info.pop(_UPDATED, None)


def _inside(transaction, outer) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


def _next_ids(session, model, count: int):
    """`count` ids for new rows of `model`. PostgreSQL hands them out from the table's sequence. SQLite has
    one writer at a time: an empty UPDATE takes the write lock (held to the end of the transaction) before
    the table's highest id is read, so no one else takes them."""
    key = model.__table__.primary_key.columns[0]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        return connection.execute(text("SELECT nextval(pg_get_serial_sequence(:table, :column)) "
                                       "FROM generate_series(1, :count)"),
                                  {"table": model.__table__.name, "column": key.name, "count": count}).scalars()
    connection.execute(update(model.__table__).values({key.name: key}).where(false()))
    highest = connection.execute(select(func.max(key))).scalar() or 0
    return range(highest + 1, highest + 1 + count)
