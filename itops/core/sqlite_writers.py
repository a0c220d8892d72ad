"""One writer at a time on a SQLite file, queued in the processes instead of in SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the write lock taken sleeps in SQLite's
busy handler, in steps that grow to 100 ms, and retries; it is not woken when the lock is freed. Under
concurrent writes (2 gunicorn workers x 2 threads filing tickets) most of a request's time went to those
sleeps. Here a connection takes a lock of its own before its first write of a transaction and gives it back
when the transaction ends: a `threading.Lock` for the threads of a process (woken at once) and an `flock` on
a file beside the database for the processes (polled every fraction of a millisecond). SQLite's own locking
is unchanged underneath, so writers that do not queue here (the sqlite3 shell, another program) are still
kept out by SQLite, and waits end with SQLite's own error ("database is locked") after the connection's busy
timeout.

Only data changes (INSERT, UPDATE, DELETE, REPLACE) queue: reads never take SQLite's write lock in WAL mode,
and pysqlite begins a transaction only before a data change, so a transaction's snapshot starts with the write
lock held and is never stale.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import re
import sqlite3
import threading
import time

DEFAULT_TIMEOUT = 10.0   # seconds; PRAGMA busy_timeout on a connection changes it for that connection
_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_BUSY_TIMEOUT = re.compile(r"\s*PRAGMA\s+busy_timeout\s*=\s*(\d+)", re.IGNORECASE)
_POLL_SECONDS = (0.0001, 0.0002, 0.0005)  # then 0.0005 on: the other process's write is about a millisecond

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


def _process_lock(path: str) -> threading.Lock:
    with _process_locks_guard:
        return _process_locks.setdefault(path, threading.Lock())


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection whose transactions queue for the database's write lock (see the module)."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        path = os.fspath(database)
        self._queued = path not in ("", ":memory:") and not path.startswith("file:")
        self._path = os.path.abspath(path) if self._queued else path
        self._in_process = _process_lock(self._path) if self._queued else None
        self._timeout = DEFAULT_TIMEOUT
        self._holding = False
        self._lock_file: int | None = None
        self._lock_file_pid = 0

    def cursor(self, factory=None):
        return super().cursor(factory or QueuedWriterCursor)

    # The connection's own shortcuts make a plain sqlite3 cursor; these go through the queue too.
    def execute(self, sql, parameters=()):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters):
        return self.cursor().executemany(sql, seq_of_parameters)

    def commit(self):
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self._release()

    def close(self):
        try:
            super().close()
        finally:
            self._release()
            if self._lock_file is not None and self._lock_file_pid == os.getpid():
                os.close(self._lock_file)
            self._lock_file = None

    def _before(self, sql: str) -> None:
        if not self._queued:
            return
        if _WRITE.match(sql):
            if not self._holding:
                self._acquire()
        else:
            timeout = _BUSY_TIMEOUT.match(sql)
            if timeout:
                self._timeout = int(timeout.group(1)) / 1000

    def _after(self) -> None:
        if self._holding and not self.in_transaction:  # the change was committed at once (autocommit)
            self._release()

    def _acquire(self) -> None:
        deadline = time.monotonic() + self._timeout
        in_process = self._in_process
        if not in_process.acquire(timeout=self._timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            lock_file = self._file()
            for attempt in itertools.count():
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise sqlite3.OperationalError("database is locked") from None
                    time.sleep(_POLL_SECONDS[min(attempt, len(_POLL_SECONDS) - 1)])
        except BaseException:
            in_process.release()
            raise
        self._holding = True

    def _release(self) -> None:
        if not self._holding:
            return
        self._holding = False
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._in_process.release()

    def _file(self) -> int:
        # A connection carried over a fork must not share its open file (and so its flock) with the parent.
        if self._lock_file is None or self._lock_file_pid != os.getpid():
            self._lock_file = os.open(f"{self._path}-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._lock_file_pid = os.getpid()
        return self._lock_file


class QueuedWriterCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=()):
        self.connection._before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection._after()

    def executemany(self, sql, seq_of_parameters):
        self.connection._before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection._after()
