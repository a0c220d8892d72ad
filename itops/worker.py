"""Celery workers for scale-out polling: `celery -A itops.worker worker` (queue "itops";
ITOPS_CELERY_QUEUE names another, e.g. one per site: `-Q site-berlin`).

With ITOPS_EXECUTOR=celery the scheduler's poll cycle sends each due check to the `itops.probe_check`
task instead of its own thread pool. A worker loads the check and the device's login from the app
database itself (so no secret travels through the broker), runs the same probe function, and writes
the outcome back to the database, where the scheduler picks it up. Workers can run on any machine
that reaches the devices and the database.

The Celery object below is only configuration (no connection is made until a worker or a sender
uses it); the Flask app is created on the first task.
"""
from __future__ import annotations

import os
import socket
import threading

from celery import Celery

celery = Celery("itops")
celery.conf.update(
    broker_url=os.environ.get("ITOPS_CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"),
    task_serializer="json", accept_content=["json"], result_backend=None, task_ignore_result=True,
    task_default_queue="itops",
    broker_connection_retry_on_startup=True, worker_prefetch_multiplier=4, task_acks_late=True,
    task_reject_on_worker_lost=True,
)
app = celery  # what `celery -A itops.worker` looks for

_flask_app = None
_flask_lock = threading.Lock()


def _flask():
    """The Flask app, made once per worker process; the first tasks arrive on several threads at once."""
    global _flask_app
    with _flask_lock:
        if _flask_app is None:
            from itops import create_app

            _flask_app = create_app()
    return _flask_app


@celery.task(name="itops.probe_check")
def probe_check(cycle_id: int, check_id: int) -> None:
    from itops.extensions import db
    from itops.monitoring import poll

    with _flask().app_context():
        try:
            poll.probe_and_store(cycle_id, check_id, executed_by=f"celery@{socket.gethostname()}:{os.getpid()}")
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        finally:
            db.session.remove()
