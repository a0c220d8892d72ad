"""Scale-out polling: with ITOPS_EXECUTOR=celery the poll cycle's probes run on a real Celery worker
(Redis as broker) that reads the checks from the same database and writes the outcomes back."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itops.config import PROJECT_ROOT
from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring import poll, services
from itops.monitoring.choices import Health
from itops.monitoring.models import AssetHealth, Check, ProbeOutcome
from tests.peers import peer_unavailable


@pytest.fixture(scope="module")
def celery_worker(redis_url, database_url, instance_dir, tmp_path_factory):
    """One worker process (threads pool) on the test database and this Redis; stopped with a warm shutdown."""
    broker = f"{redis_url}/0"
    env = {key: value for key, value in os.environ.items() if not key.startswith("ITOPS_")}
    env.update(ITOPS_DATABASE_URL=database_url, ITOPS_INSTANCE_DIR=str(instance_dir), ITOPS_CELERY_BROKER_URL=broker)
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "itops.worker", "worker", "--pool=threads", "--concurrency=4",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", "itops-test@%h", "-Q", "itops",
             "--loglevel=INFO"],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    from itops.worker import celery

    celery.conf.broker_url = broker
    deadline = time.monotonic() + 30
    while not celery.control.ping(timeout=0.3):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            peer_unavailable("celery worker", log_path.read_text(errors="replace")[-2000:])
    yield broker
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def celery_executor(app, celery_worker):
    saved = {key: app.config[key] for key in ("ITOPS_EXECUTOR", "ITOPS_CELERY_BROKER_URL")}
    app.config.update(ITOPS_EXECUTOR="celery", ITOPS_CELERY_BROKER_URL=celery_worker)
    yield
    app.config.update(saved)


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


def test_a_cycle_runs_its_probes_on_the_worker(celery_executor, make_asset, make_user):
    admin = make_user("admin")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        up = make_asset("switch", name="sw-up", management_address="127.0.0.1")
        down = make_asset("switch", name="sw-down", management_address="127.0.0.1")
        laptop = make_asset("laptop", name="pc-1")
        laptop.last_seen_at = utcnow()
        services.add_check(up.id, "tcp", params={"port": listener.getsockname()[1]}, timeout_seconds=2, by=admin)
        services.add_check(down.id, "tcp", params={"port": _closed_port()}, timeout_seconds=2, by=admin)
        services.add_check(laptop.id, "agent", timeout_seconds=2, by=admin)
        db.session.commit()

        now = utcnow()
        for step in range(3):
            result = poll.run_cycle(now=now + timedelta(seconds=61 * step))
            db.session.commit()
            assert result["checks"] == 3
            errors = [c.last_error for c in db.session.scalars(select(Check))]
            assert "no worker answered in time" not in errors    # every probe came back, the first ones too
        checks = {c.asset_id: c for c in db.session.scalars(select(Check))}
        assert all(c.last_details["executed_by"].startswith("celery@") for c in checks.values())
        assert checks[up.id].last_status == "up" and checks[down.id].last_status == "down"
        states = dict(db.session.execute(select(AssetHealth.asset_id, AssetHealth.state)).all())
        assert states == {up.id: Health.UP, down.id: Health.DOWN, laptop.id: Health.UP}
        assert db.session.scalar(select(func.count()).select_from(ProbeOutcome)) == 0   # read and cleared
    finally:
        listener.close()


def test_checks_no_worker_answers_count_as_down(app, celery_executor, make_asset, make_user):
    app.config.update(ITOPS_CELERY_QUEUE="site-nobody-serves", ITOPS_CELERY_WAIT_SECONDS=1)
    try:
        switch = make_asset("switch", name="lonely", management_address="127.0.0.1")
        services.add_check(switch.id, "tcp", params={"port": _closed_port()}, timeout_seconds=0.5,
                           by=make_user("admin"))
        db.session.commit()
        poll.run_cycle()
        db.session.commit()
        check = db.session.scalar(select(Check))
        assert check.last_status == "down" and check.last_error == "no worker answered in time"
    finally:
        app.config.update(ITOPS_CELERY_QUEUE="itops", ITOPS_CELERY_WAIT_SECONDS=30)
