"""The directory work the scheduler runs: due steps and the nightly reconcile report (a job the admins
find on the reconcile page), and both doing nothing when no directory is configured."""
from __future__ import annotations

from datetime import timedelta

from itops.core import jobs
from itops.directory import services, tasks
from itops.directory.choices import PersonState
from itops.extensions import db
from itops.monitoring import scheduler
from tests.conftest import sign_in
from tests.integration import directory_support
from tests.integration.directory_support import TODAY, entry, joiner

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings


def test_without_a_directory_both_tasks_skip(app):
    assert app.config["ITOPS_LDAP"] is None
    assert tasks.scheduled_run_due() == {"skipped": "no directory configured"}
    assert tasks.nightly_reconcile_report() == {"skipped": "no directory configured"}


def test_the_scheduled_task_creates_a_joiner_whose_start_date_has_come(app, hr):
    person = services.onboard(joiner("E7", "Nia", "Okafor", start_date=TODAY + timedelta(days=1)),
                              by="hr-test").person
    db.session.commit()
    assert entry(hr, "nokafor") is None
    summary = tasks.scheduled_run_due()
    assert summary["done"] == 0                     # tomorrow's joiner waits
    person.start_date = TODAY
    for action in services.actions_of(person):
        action.effective_date = TODAY
    db.session.commit()
    # The scheduler calls this very function by name.
    assert scheduler.TASKS_BY_NAME["directory.run_due"].target == "itops.directory.tasks:scheduled_run_due"
    assert tasks.scheduled_run_due()["done"] == 1
    db.session.refresh(person)
    assert person.state == PersonState.ACTIVE and entry(hr, "nokafor") is not None


def test_the_nightly_report_is_a_job_on_the_reconcile_page(app, hr, client, make_user):
    services.onboard(joiner("E8", "Ola", "Berg"), by="hr-test")
    db.session.commit()
    outcome = tasks.nightly_reconcile_report()
    job = jobs.get_job_for(make_user("admin", "root2"), outcome["job_id"])
    assert job.state == "succeeded" and job.kind == tasks.RECONCILE_JOB and "people" in str(job.result)
    sign_in(client, make_user("admin"))
    page = client.get("/directory/reconcile").get_data(as_text=True)
    assert "Nightly reconcile report" in page and f"/directory/reconcile/{job.id}" in page
