"""SQLite writers queue for the write lock in the processes (itops.core.sqlite_writers), on a real database file."""
import fcntl
import multiprocessing
import os
import sqlite3
import threading

import pytest

from itops.core.sqlite_writers import QueuedWriterConnection


def _connect(path, busy_timeout_ms: int | None = None) -> sqlite3.Connection:
    connection = sqlite3.connect(path, factory=QueuedWriterConnection, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    if busy_timeout_ms is not None:
        connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return connection


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "queue.db")
    with _connect(path) as connection:
        connection.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, who TEXT)")
    return path


def _insert_in_thread(path, who, busy_timeout_ms=5000):
    outcome = {}

    def write():
        connection = _connect(path, busy_timeout_ms)
        try:
            connection.execute("INSERT INTO rows (who) VALUES (?)", (who,))
            connection.commit()
            outcome["done"] = True
        except sqlite3.OperationalError as error:
            outcome["error"] = str(error)
        finally:
            connection.close()

    thread = threading.Thread(target=write)
    thread.start()
    return thread, outcome


def _rows(path):
    with _connect(path) as connection:
        return [who for (who,) in connection.execute("SELECT who FROM rows ORDER BY id")]


def _writer_lock_is_free(path) -> bool:
    """Whether another process could take the queue's lock now (flock on a separate open file)."""
    descriptor = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)


def test_a_write_transaction_holds_the_queue_from_its_first_change_to_its_end(database):
    connection = _connect(database)
    connection.execute("SELECT count(*) FROM rows").fetchone()
    assert _writer_lock_is_free(database)  # reads do not queue
    connection.execute("INSERT INTO rows (who) VALUES ('one')")
    assert not _writer_lock_is_free(database)
    connection.execute("UPDATE rows SET who = 'two'")
    assert not _writer_lock_is_free(database)
    connection.commit()
    assert _writer_lock_is_free(database)


def test_a_second_writer_waits_for_the_first_to_commit_instead_of_failing(database):
    first = _connect(database)
    first.execute("INSERT INTO rows (who) VALUES ('first')")
    thread, outcome = _insert_in_thread(database, "second")
    thread.join(0.3)
    assert thread.is_alive() and outcome == {}  # queued behind the open write
    first.commit()
    thread.join(5)
    assert outcome == {"done": True}
    assert _rows(database) == ["first", "second"]


def test_a_writer_gives_up_after_its_busy_timeout_with_sqlites_own_error(database):
    first = _connect(database)
    first.execute("INSERT INTO rows (who) VALUES ('first')")
    thread, outcome = _insert_in_thread(database, "impatient", busy_timeout_ms=50)
    thread.join(5)
    assert outcome == {"error": "database is locked"}
    first.rollback()  # a rollback ends the write too
    thread, outcome = _insert_in_thread(database, "later")
    thread.join(5)
    assert outcome == {"done": True} and _rows(database) == ["later"]


def test_reads_do_not_queue_behind_a_write(database):
    first = _connect(database)
    first.execute("INSERT INTO rows (who) VALUES ('uncommitted')")
    reader = _connect(database, busy_timeout_ms=0)
    assert reader.execute("SELECT count(*) FROM rows").fetchone() == (0,)
    first.rollback()


def test_an_autocommitted_change_and_a_closed_connection_free_the_queue(database):
    autocommit = sqlite3.connect(database, factory=QueuedWriterConnection, isolation_level=None)
    autocommit.execute("INSERT INTO rows (who) VALUES ('autocommit')")
    thread, outcome = _insert_in_thread(database, "after autocommit", busy_timeout_ms=200)
    thread.join(5)
    assert outcome == {"done": True}
    closing = _connect(database)
    closing.execute("INSERT INTO rows (who) VALUES ('never committed')")
    closing.close()
    thread, outcome = _insert_in_thread(database, "after close", busy_timeout_ms=200)
    thread.join(5)
    assert outcome == {"done": True}
    assert _rows(database) == ["autocommit", "after autocommit", "after close"]


def _hold_a_write(path, started, release):
    connection = _connect(path)
    connection.execute("INSERT INTO rows (who) VALUES ('other process')")
    started.set()
    release.wait(10)
    connection.commit()
    connection.close()


def test_writers_of_other_processes_queue_too(database):
    context = multiprocessing.get_context("spawn")
    started, release = context.Event(), context.Event()
    other = context.Process(target=_hold_a_write, args=(database, started, release))
    other.start()
    try:
        assert started.wait(30)
        thread, outcome = _insert_in_thread(database, "this process")
        thread.join(0.3)
        assert thread.is_alive() and outcome == {}
        release.set()
        thread.join(10)
        assert outcome == {"done": True}
    finally:
        release.set()
        other.join(10)
    assert other.exitcode == 0
    assert _rows(database) == ["other process", "this process"]


def test_the_app_queues_its_sqlite_writers(app):
    from itops.extensions import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL queues its writers itself (row locks)")
    connection = db.engine.raw_connection()
    try:
        assert isinstance(connection.dbapi_connection, QueuedWriterConnection)
    finally:
        connection.close()
