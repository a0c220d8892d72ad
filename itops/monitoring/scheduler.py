"""`flask itops scheduler`: the one process that runs periodic work, with a leader lease and a standby.

Every copy loops: take or renew the lease (itops.monitoring.lease); while it holds it, an APScheduler
BackgroundScheduler runs the periodic tasks below from a persistent SQLAlchemy job store in the app
database (coalesce, one instance per job, a misfire grace time). A copy that does not get the lease
waits as a standby and tries again every third of the lease time, so it takes over within one lease
time (30 s by default) after the leader dies. A leader that cannot renew stops its scheduler at once:
two schedulers must never run the same work.

Tasks are named; the job store keeps the name, and `run_task` runs it in an app context, committing at
its end (the task boundary) or rolling back on error. The functions are the ones the domains already
expose for their CLI commands.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from typing import Callable

from flask import Flask

from itops.extensions import db
from itops.monitoring import lease
from itops.monitoring.models import SCHEDULER_JOBS_TABLE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    default: int | str   # seconds between runs, or "HH:MM" (UTC) for once a day
    describe: str
    target: str          # "module:function", imported when the task runs


TASKS: tuple[PeriodicTask, ...] = (
    PeriodicTask("monitoring.poll", 10, "run the checks that are due", "itops.monitoring.poll:run_cycle"),
    PeriodicTask("monitoring.config_backup", 21600, "save network devices' running configurations that changed",
                 "itops.monitoring.services:backup_configs"),
    PeriodicTask("monitoring.ssh_tidy", 300, "close SSH sessions no check has used for a while",
                 "itops.monitoring.services:tidy_ssh_sessions"),
    PeriodicTask("monitoring.retention", 3600, "roll old samples up per hour, drop expired history",
                 "itops.monitoring.retention:apply_retention"),
    PeriodicTask("outbox.send", 30, "send queued email", "itops.core.outbox:send_due"),
    PeriodicTask("tickets.sla_sweep", 60, "flag tickets that breached their SLA", "itops.tickets.tasks:sweep_sla"),
    PeriodicTask("tickets.auto_close", 3600, "close tickets resolved long enough ago",
                 "itops.tickets.tasks:close_resolved"),
    PeriodicTask("directory.run_due", 60, "run the directory steps that are due (joiners, movers, leavers)",
                 "itops.directory.tasks:scheduled_run_due"),
    PeriodicTask("directory.reconcile", "02:30", "the nightly reconcile report (reads only)",
                 "itops.directory.tasks:nightly_reconcile_report"),
)
TASKS_BY_NAME = {task.name: task for task in TASKS}

# The app the running scheduler's tasks use and the lease holder they run for; set by the Runner,
# never at import.
_app: Flask | None = None
_holder: str | None = None


def _import(target: str) -> Callable:
    module_name, _, function_name = target.partition(":")
    module = __import__(module_name, fromlist=[function_name])
    return getattr(module, function_name)


def run_task(name: str) -> None:
    """What each scheduled job calls: the named task in an app context, committed at its end."""
    task = TASKS_BY_NAME.get(name)
    if task is None or _app is None:
        log.warning("scheduler: unknown task %r, or no app (skipped)", name)
        return
    with _app.app_context():
        if _holder is not None and not lease.holds(_holder):
            db.session.remove()
            log.warning("scheduler: %s skipped: this scheduler no longer holds the lease", name)
            return
        started = time.monotonic()
        try:
            result = _import(task.target)()
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("scheduler: task %s failed", name)
            return
        finally:
            db.session.remove()
        log.info("scheduler: %s done in %.2f s: %s", name, time.monotonic() - started, result)


class UnknownTask(ValueError):
    pass


def intervals(app: Flask) -> dict[str, int | str]:
    """When each task runs: seconds between runs or a daily "HH:MM" (UTC); the defaults, overridden by
    ITOPS_SCHEDULE (name=seconds or name=HH:MM, ...)."""
    configured = app.config.get("ITOPS_SCHEDULE") or {}
    unknown = sorted(set(configured) - set(TASKS_BY_NAME))
    if unknown:
        raise UnknownTask(f"ITOPS_SCHEDULE names unknown tasks: {', '.join(unknown)}; "
                          f"known: {', '.join(TASKS_BY_NAME)}")
    return {task.name: configured.get(task.name, task.default) for task in TASKS}


def describe_when(when: int | str) -> str:
    return f"daily at {when} UTC" if isinstance(when, str) else f"every {when} s"


def build_scheduler(app: Flask):
    """A BackgroundScheduler on the app database's job store with every task (re)added."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    with app.app_context():
        engine = db.engine
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename=SCHEDULER_JOBS_TABLE)},
        executors={"default": ThreadPoolExecutor(app.config["ITOPS_SCHEDULER_THREADS"])},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": app.config["ITOPS_SCHEDULER_MISFIRE_GRACE_SECONDS"]},
        timezone="UTC")
    return scheduler


def schedule_tasks(scheduler, app: Flask) -> None:
    """Put every task in the job store with today's interval; drop jobs of tasks that no longer exist."""
    wanted = intervals(app)
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            job.remove()
    for name, when in wanted.items():
        if isinstance(when, str):
            hour, minute = (int(part) for part in when.split(":"))
            trigger = {"trigger": "cron", "hour": hour, "minute": minute}
        else:
            trigger = {"trigger": "interval", "seconds": when}
        scheduler.add_job(run_task, args=[name], id=name, name=name, replace_existing=True, **trigger)


class Runner:
    """The lease loop: leader runs the scheduler, standby waits. stop() ends it from a signal handler."""

    def __init__(self, app: Flask, *, echo: Callable[[str], None] = print):
        self.app = app
        self.echo = echo
        self.holder = lease.new_holder_id()
        self.ttl = app.config["ITOPS_SCHEDULER_LEASE_SECONDS"]
        self.scheduler = None
        self._stop = threading.Event()

    def stop(self, *_signal_args) -> None:
        self._stop.set()

    def _hold_lease(self) -> bool:
        with self.app.app_context():
            try:
                return lease.acquire(self.holder, self.ttl)
            finally:
                db.session.remove()

    def _lead(self) -> None:
        self.scheduler = build_scheduler(self.app)
        self.scheduler.start(paused=True)
        schedule_tasks(self.scheduler, self.app)
        self.scheduler.resume()
        self.echo(f"scheduler: leader ({self.holder}); tasks: "
                  + ", ".join(f"{name} {describe_when(when)}" for name, when in intervals(self.app).items()))

    def _step_down(self, reason: str) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
            self.echo(f"scheduler: stepped down ({reason})")

    def run(self) -> None:
        global _app, _holder
        _app, _holder = self.app, self.holder
        self.echo(f"scheduler: starting as {self.holder}; lease {self.ttl} s")
        standby_said = False
        try:
            while not self._stop.is_set():
                held = self._hold_lease()
                if held and self.scheduler is None:
                    self._lead()
                elif not held and self.scheduler is not None:
                    self._step_down("lost the lease")
                elif not held and not standby_said:
                    self.echo("scheduler: standby (another scheduler holds the lease)")
                standby_said = not held
                self._stop.wait(max(1.0, self.ttl / 3))
        finally:
            self._step_down("stopping")
            with self.app.app_context():
                lease.release(self.holder)
                db.session.remove()


def run_scheduler(app: Flask, *, echo: Callable[[str], None] = print) -> None:
    runner = Runner(app, echo=echo)
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    runner.run()
