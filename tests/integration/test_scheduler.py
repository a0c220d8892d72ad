"""The scheduler: the leader lease, the persistent job store, and two real `flask itops scheduler`
processes against the test database and the SMTP sink: the leader sends queued mail, the standby waits,
and takes over when the leader is killed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select, text

from itops.config import PROJECT_ROOT
from itops.core.database import utcnow
from itops.core.outbox import OutboxMessage, queue
from itops.extensions import db
from itops.monitoring import lease, scheduler
from itops.monitoring.cli import scheduler_cli


def test_one_holder_at_a_time_and_a_standby_takes_an_expired_lease():
    now = utcnow()
    assert lease.acquire("leader", 30, now=now)
    assert not lease.acquire("standby", 30, now=now + timedelta(seconds=10))
    assert lease.acquire("leader", 30, now=now + timedelta(seconds=20))          # renewed until +50 s
    assert not lease.acquire("standby", 30, now=now + timedelta(seconds=45))
    assert lease.acquire("standby", 30, now=now + timedelta(seconds=51))         # expired: taken over
    assert not lease.acquire("leader", 30, now=now + timedelta(seconds=52))      # the old leader is out
    held = lease.current()
    assert held.holder == "standby" and held.acquired_at == now + timedelta(seconds=51)


def test_a_released_lease_is_free_at_once():
    assert lease.acquire("leader", 30)
    lease.release("someone-else")
    assert not lease.acquire("standby", 30)
    lease.release("leader")
    assert lease.acquire("standby", 30)


def test_every_task_is_stored_in_the_job_store_with_its_interval(app):
    app.config["ITOPS_SCHEDULE"] = {"outbox.send": 5}
    runner = scheduler.build_scheduler(app)
    runner.start(paused=True)
    try:
        db.session.execute(text("INSERT INTO scheduler_jobs (id, next_run_time, job_state) "
                                "VALUES ('retired.task', NULL, :state)"), {"state": b"x"})
        db.session.commit()
        scheduler.schedule_tasks(runner, app)
        jobs = {job.id: job for job in runner.get_jobs()}
        assert set(jobs) == {task.name for task in scheduler.TASKS}
        assert jobs["outbox.send"].trigger.interval == timedelta(seconds=5)
        assert jobs["tickets.sla_sweep"].trigger.interval == timedelta(seconds=60)
        assert str(jobs["directory.reconcile"].trigger) == "cron[hour='2', minute='30']"
        assert all(job.coalesce and job.max_instances == 1 and job.misfire_grace_time == 60
                   for job in jobs.values())
        stored = set(db.session.scalars(text("SELECT id FROM scheduler_jobs")))
        assert stored == set(jobs)  # persisted in the app database; the retired task is gone
    finally:
        runner.shutdown(wait=False)
        app.config["ITOPS_SCHEDULE"] = {}


def test_the_list_option_and_an_unknown_task_in_the_schedule(app):
    runner = CliRunner()
    listed = runner.invoke(scheduler_cli, ["--list"], obj=None)
    assert listed.exit_code == 0
    assert "outbox.send" in listed.output and "every 30 s" in listed.output
    assert "directory.reconcile" in listed.output and "daily at 02:30 UTC" in listed.output
    app.config["ITOPS_SCHEDULE"] = {"outbox.sned": 5}
    try:
        refused = runner.invoke(scheduler_cli, [])
    finally:
        app.config["ITOPS_SCHEDULE"] = {}
    assert refused.exit_code == 2
    assert "unknown tasks: outbox.sned" in refused.output


def test_a_failing_task_is_rolled_back_and_logged(app, monkeypatch, caplog):
    monkeypatch.setattr(scheduler, "_app", app)
    monkeypatch.setitem(scheduler.TASKS_BY_NAME, "broken", scheduler.PeriodicTask(
        "broken", 1, "fails", "tests.integration.test_scheduler:_half_write_then_fail"))
    scheduler.run_task("broken")
    assert "task broken failed" in caplog.text
    assert db.session.scalar(select(OutboxMessage.id)) is None  # the half-written message was rolled back


def _half_write_then_fail():
    queue("someone@example.org", "never sent", "rolled back")
    db.session.flush()
    raise RuntimeError("the task broke")


# --- two real scheduler processes -------------------------------------------------------------------

def _start_scheduler(env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "itops", "scheduler"], env=env, cwd=PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _holder() -> str | None:
    db.session.expire_all()
    held = lease.current()
    return held.holder if held and held.expires_at > utcnow() else None


def _queue_and_commit(subject: str) -> None:
    queue("eve@example.org", subject, "body")
    db.session.commit()


def _subjects(sink) -> list[str]:
    return [received.message["Subject"] for received in sink.messages]


def test_the_leader_sends_mail_and_the_standby_takes_over_when_it_is_killed(app, database_url, instance_dir,
                                                                              smtp_sink):
    smtp_sink.start()
    smtp_sink.clear()
    env = {key: value for key, value in os.environ.items() if not key.startswith("ITOPS_")}
    env.update(FLASK_APP="app", ITOPS_INSTANCE_DIR=str(instance_dir), ITOPS_DATABASE_URL=database_url,
               ITOPS_SMTP_HOST=smtp_sink.host, ITOPS_SMTP_PORT=str(smtp_sink.port),
               ITOPS_MAIL_FROM="helpdesk@example.org", ITOPS_SCHEDULE="outbox.send=1",
               # Long enough that a leader starved by a busy machine still renews in time.
               ITOPS_SCHEDULER_LEASE_SECONDS="6")
    first = _start_scheduler(env)
    second = None
    try:
        leader = _wait_for(_holder, 30, "the first scheduler to take the lease")
        second = _start_scheduler(env)
        _queue_and_commit("sent by the leader")
        _wait_for(lambda: "sent by the leader" in _subjects(smtp_sink), 30, "the leader to send the mail")
        assert _holder() == leader  # the second one is a standby

        os.killpg(first.pid, signal.SIGKILL)  # no clean release: the standby must wait the lease out
        first.wait(10)
        killed_at = time.monotonic()
        new_leader = _wait_for(lambda: (_holder() or leader) != leader and _holder(), 30, "the standby to lead")
        assert time.monotonic() - killed_at < 20   # one lease time, plus the standby's next try
        _queue_and_commit("sent by the new leader")
        _wait_for(lambda: "sent by the new leader" in _subjects(smtp_sink), 30, "the new leader to send the mail")
        assert sorted(smtp_sink.by_message_id().values()) == [1, 1]  # each message once

        second.send_signal(signal.SIGTERM)  # a clean stop gives the lease back
        assert second.wait(20) == 0
        assert _holder() is None
        log = second.stderr.read()
        assert "standby" in log and "leader" in log and new_leader.split(":")[1] == str(second.pid)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        smtp_sink.clear()


def _cycle_times() -> list:
    from itops.monitoring.models import PollCycle

    db.session.expire_all()
    return list(db.session.scalars(select(PollCycle.started_at).order_by(PollCycle.started_at)))


def test_two_schedulers_run_each_slot_once_and_a_killed_leaders_misfired_run_happens_once(app, database_url,
                                                                                            instance_dir):
    """The poll task every 2 s (each run leaves a poll-cycle row): with a standby beside the leader no slot runs
    twice; after the leader is SIGKILLed the standby takes over and runs the missed slot once, not once per
    missed interval."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("ITOPS_")}
    env.update(FLASK_APP="app", ITOPS_INSTANCE_DIR=str(instance_dir), ITOPS_DATABASE_URL=database_url,
               ITOPS_SCHEDULE="monitoring.poll=2", ITOPS_SCHEDULER_LEASE_SECONDS="2")
    first = _start_scheduler(env)
    second = None
    try:
        leader = _wait_for(_holder, 30, "the first scheduler to take the lease")
        second = _start_scheduler(env)
        _wait_for(lambda: len(_cycle_times()) >= 4, 30, "four poll cycles")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        killed = len(_cycle_times())
        _wait_for(lambda: (_holder() or leader) != leader, 30, "the standby to lead")
        _wait_for(lambda: len(_cycle_times()) >= killed + 3, 30, "three more cycles under the new leader")
        times = _cycle_times()
        gaps = [(later - earlier).total_seconds() for earlier, later in zip(times, times[1:])]
        assert min(gaps) > 1.0, gaps        # never two runs of one slot (2 s apart, give or take)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def test_a_task_is_skipped_when_its_scheduler_lost_the_lease(app, monkeypatch, caplog):
    monkeypatch.setattr(scheduler, "_app", app)
    monkeypatch.setattr(scheduler, "_holder", "stalled-leader")
    assert lease.acquire("successor", 30)
    scheduler.run_task("monitoring.poll")
    assert "skipped: this scheduler no longer holds the lease" in caplog.text
    from itops.monitoring.models import PollCycle
    assert db.session.scalar(select(PollCycle.id)) is None
