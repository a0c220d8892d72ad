"""Long-running work with progress: a Job row that the CLI shows as a bar and the browser as a page.

The work itself runs in its own transaction and commits at its end (the task boundary). Progress
is written through a separate short connection so that other processes see it while the work
runs; if the database is busy (SQLite holds one writer at a time) an intermediate update is
skipped rather than waited for, and the final state is always written.
"""
from __future__ import annotations

import enum
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Callable

import click
from flask import current_app
from sqlalchemy import JSON, ForeignKey, Index, String, Text, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Mapped, mapped_column

from itops.core.database import UTCDateTime, utcnow
from itops.core.errors import DomainError, NotFound
from itops.core.policy import Role
from itops.extensions import db

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 0.5


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED)


class Job(db.Model):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_created_by_created", "created_by_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value, index=True)
    total: Mapped[int | None] = mapped_column()
    done: Mapped[int] = mapped_column(default=0)
    message: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.state == JobState.SUCCEEDED else None
        return min(100, int(self.done * 100 / self.total))

    @property
    def is_finished(self) -> bool:
        return JobState(self.state).finished


def create_job(kind: str, title: str, *, by=None, total: int | None = None) -> Job:
    job = Job(kind=kind, title=title, total=total, created_by_id=getattr(by, "id", None))
    db.session.add(job)
    db.session.flush()
    return job


def _write(job_id: int, *, best_effort: bool, **values) -> None:
    """Update the job row outside the work's transaction."""
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite and best_effort:
            connection.exec_driver_sql("PRAGMA busy_timeout=50")
        try:
            connection.execute(update(Job).where(Job.id == job_id).values(**values))
            connection.commit()
        except OperationalError:
            if not best_effort:
                raise
            connection.rollback()
            log.debug("job %s progress update skipped: database busy", job_id)
        finally:
            if sqlite and best_effort:
                connection.exec_driver_sql("PRAGMA busy_timeout=10000")


class Progress:
    """What long work calls as it goes: set_total(), advance(), note()."""

    def __init__(self, job: Job, on_change: Callable[[int, int | None], None] | None = None):
        self.job_id = job.id
        self.total = job.total
        self.done = 0
        self.message: str | None = None
        self._on_change = on_change
        self._last_write = 0.0

    def set_total(self, total: int) -> None:
        self.total = total
        self._flush(force=True)

    def advance(self, steps: int = 1, message: str | None = None) -> None:
        self.done += steps
        if message is not None:
            self.message = message[:500]
        self._flush()

    def note(self, message: str) -> None:
        self.message = message[:500]
        self._flush()

    def _flush(self, force: bool = False) -> None:
        if self._on_change:
            self._on_change(self.done, self.total)
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_INTERVAL_SECONDS:
            self._last_write = now
            _write(self.job_id, best_effort=True, done=self.done, total=self.total, message=self.message)


def run_job(job: Job, work: Callable[[Progress], dict | None], *, on_change=None) -> Job:
    """Run `work(progress)`, commit its transaction, and record success or failure on the job.

    The job row must already be committed so that watchers can find it.
    """
    _write(job.id, best_effort=False, state=JobState.RUNNING.value, started_at=utcnow())
    progress = Progress(job, on_change)
    try:
        result = work(progress)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        log.exception("job %s (%s) failed", job.id, job.kind)
        _write(job.id, best_effort=False, state=JobState.FAILED.value, finished_at=utcnow(),
               done=progress.done, total=progress.total, error=_error_text(exc))
    else:
        _write(job.id, best_effort=False, state=JobState.SUCCEEDED.value, finished_at=utcnow(),
               done=progress.done if progress.total is None else max(progress.done, progress.total),
               total=progress.total, message=progress.message, result=result)
    db.session.refresh(job)
    return job


def _error_text(exc: Exception) -> str:
    # Domain errors carry a message written for users; anything else is summarised, not dumped.
    if isinstance(exc, DomainError):
        return exc.detail
    return f"{type(exc).__name__}: {exc}"[:2000]


def run_job_with_bar(job: Job, work: Callable[[Progress], dict | None], *, label: str) -> Job:
    """Run a job from the CLI with a progress bar on the terminal."""
    bar = click.progressbar(length=job.total or 1, label=label, show_pos=True, show_percent=True)
    with bar:
        def on_change(done: int, total: int | None) -> None:
            if total and bar.length != total:
                bar.length = total
            bar.update(done - bar.pos)

        job = run_job(job, work, on_change=on_change)
    return job


_executor: ThreadPoolExecutor | None = None


def launch_in_background(job: Job, work: Callable[[Progress], dict | None]) -> None:
    """Run a committed job on a small thread pool inside this web process.

    Foundation-level work (directory refresh) is short enough for this; the scheduler process
    takes over heavier kinds of work.
    """
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="itops-job")
    app = current_app._get_current_object()
    job_id = job.id

    def in_context():
        with app.app_context():
            run_job(db.session.get(Job, job_id), work)

    return _executor.submit(in_context)


def recent_jobs(kind: str, limit: int = 5) -> list[Job]:
    return list(db.session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id.desc()).limit(limit)))


def get_job_for(user, job_id: int) -> Job:
    """A job its creator or an administrator may watch; anyone else gets 404, not a hint it exists."""
    job = db.session.get(Job, job_id)
    if job is None or (job.created_by_id != user.id and user.role != Role.ADMIN):
        raise NotFound("No such job.")
    return job
