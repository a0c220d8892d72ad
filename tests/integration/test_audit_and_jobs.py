"""The audit log (records, scrubbing, the admin page) and jobs with progress."""
import time

from sqlalchemy import select

from itops.core import audit, jobs
from itops.core.audit import AuditEntry
from itops.core.errors import Conflict
from itops.core.jobs import Job, JobState
from itops.core.policy import Role
from itops.extensions import db
from tests.conftest import csrf_token


def test_a_role_change_is_audited_with_who_and_before_after(client_as, make_user):
    admin = client_as(Role.ADMIN)
    target = make_user(Role.EMPLOYEE)
    admin.post(f"/admin/users/{target.id}/role", data={"role": "hr", "csrf_token": csrf_token(admin)})
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.role")).one()
    assert entry.actor_id == admin.user.id and entry.actor_label == admin.user.username
    assert (entry.object_type, entry.object_id) == ("user", str(target.id))
    assert entry.before == {"role": "employee"} and entry.after == {"role": "hr"}
    assert entry.remote_addr == "127.0.0.1"


def test_secret_fields_never_reach_the_audit_log():
    audit.record("test.secret", "thing", 1, summary="x", before={"password": "hunter2", "name": "a"},
                 after={"token": "itops_abc", "name": "b"}, actor="test")
    db.session.commit()
    entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.before == {"password": "***", "name": "a"} and entry.after == {"token": "***", "name": "b"}


def test_a_refused_change_leaves_no_audit_entry(client_as):
    admin = client_as(Role.ADMIN)
    admin.post(f"/admin/users/{admin.user.id}/disable", data={"csrf_token": csrf_token(admin)})
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "user.disable")).all() == []


def test_admin_audit_page_filters(client_as, make_user):
    admin = client_as(Role.ADMIN)
    target = make_user(Role.EMPLOYEE, username="target")
    token = csrf_token(admin)
    admin.post(f"/admin/users/{target.id}/revoke-sessions", data={"csrf_token": token})
    admin.post(f"/admin/users/{target.id}/role", data={"role": "hr", "csrf_token": token})
    everything = admin.get("/admin/audit").get_data(as_text=True)
    assert "user.revoke_sessions" in everything and "user.role" in everything
    only_roles = admin.get("/admin/audit?action=user.role").get_data(as_text=True)
    assert "user.role" in only_roles and "user.revoke_sessions" not in only_roles
    by_object = admin.get(f"/admin/audit?object_type=user&object_id={target.id}").get_data(as_text=True)
    assert "user.create" in by_object  # make_user's creation of target
    assert admin.get("/admin/audit?since=not-a-date").status_code == 422


def test_audit_page_is_admin_only(client_as):
    for role in (Role.EMPLOYEE, Role.IT_STAFF, Role.HR):
        assert client_as(role).get("/admin/audit").status_code == 403


def _committed_job(**fields) -> Job:
    job = jobs.create_job("test.kind", "Counting", **fields)
    db.session.commit()
    return job


def test_progress_is_visible_outside_the_work_transaction_while_it_runs():
    job = _committed_job(total=3)
    seen = []

    def work(progress):
        for n in range(3):
            progress.set_total(3)  # forces a write
            progress.advance(message=f"step {n}")
            with db.engine.connect() as other:  # what another process (the browser) would read
                seen.append(other.execute(select(Job.done, Job.state).where(Job.id == job.id)).one())
        return {"counted": 3}

    job = jobs.run_job(job, work)
    # set_total() forces a write of the count so far; advance() right after it is throttled.
    assert [done for done, _ in seen] == [0, 1, 2]
    assert all(state == "running" for _, state in seen)
    assert (job.state, job.done, job.total, job.result) == (JobState.SUCCEEDED, 3, 3, {"counted": 3})
    assert job.started_at and job.finished_at and job.percent == 100


def test_a_failing_job_records_the_error_and_rolls_back_its_work(make_user):
    job = _committed_job()

    def work(progress):
        audit.record("test.half_done", "thing", 1, summary="should be rolled back", actor="test")
        db.session.flush()
        raise Conflict("The thing is locked by someone else.")

    job = jobs.run_job(job, work)
    assert job.state == JobState.FAILED and job.error == "The thing is locked by someone else."
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "test.half_done")).all() == []


def test_job_page_shows_progress_to_its_owner_only(client_as):
    owner = client_as(Role.IT_STAFF)
    job = _committed_job(by=owner.user, total=10)
    page = owner.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "Counting" in page and 'http-equiv="refresh"' in page  # refreshes itself without JavaScript
    assert client_as(Role.IT_STAFF).get(f"/jobs/{job.id}").status_code == 404
    jobs.run_job(job, lambda progress: {"ok": 1})
    finished = owner.get(f"/jobs/{job.id}").get_data(as_text=True)
    assert "succeeded" in finished and 'http-equiv="refresh"' not in finished


def test_admin_starts_a_directory_refresh_from_the_browser(client_as, directory):
    admin = client_as(Role.ADMIN)
    response = admin.post("/admin/directory-refresh", data={"csrf_token": csrf_token(admin, "/admin/users")})
    assert response.status_code == 302 and response.headers["Location"].startswith("/jobs/")
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 10
    while True:  # the job runs on the web process's job thread; wait for it like the browser does
        db.session.expire_all()
        job = db.session.get(Job, job_id)
        if job.is_finished or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["checked"] == 0


def test_employee_cannot_start_a_directory_refresh(client_as):
    employee = client_as(Role.EMPLOYEE)
    assert employee.post("/admin/directory-refresh", data={"csrf_token": csrf_token(employee, "/")}).status_code == 403
    assert db.session.scalars(select(Job)).all() == []
