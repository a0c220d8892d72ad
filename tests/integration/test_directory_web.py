"""HR's and admins' directory pages through HTTP, against a real slapd: who may open what, the people list
(filters, pages, query count), joiners, movers and leavers with their dry runs, the HR import job,
reconcile, approvals, mappings and kit templates, and bad input."""
from __future__ import annotations

import io
import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itops.core.jobs import Job, JobState
from itops.directory import services
from itops.directory.choices import BatchKind, PersonState
from itops.directory.models import DirectoryAction, GroupMapping, KitTemplate, Person
from itops.extensions import db
from tests.conftest import csrf_token
from tests.integration.test_tickets_web import _statements_for
from tests.integration.directory_support import (  # noqa: F401 (fixtures)
    TODAY, entry, group_members, hr, joiner, onboard, own_slapd,
)

PEOPLE = "/directory/"


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def text_of(response) -> str:
    return response.get_data(as_text=True)


def post(client, path, data=None, **kwargs):
    return client.post(path, data={"csrf_token": csrf_token(client, PEOPLE), **(data or {})}, **kwargs)


def form_values(**values) -> dict:
    base = {"employee_number": "E100", "given_name": "Jane", "family_name": "Roe", "email": "jane@example.org",
            "department": "Sales", "title": "Account manager", "location": "Berlin", "start_date": TODAY.isoformat()}
    return {**base, **values}


@pytest.fixture
def hr_client(client_as):
    return client_as("hr", display_name="Hana HR")


@pytest.fixture
def admin_client(client_as):
    return client_as("admin", display_name="Ada Admin")


# --- who may open what ---------------------------------------------------------------------------

HR_PAGES = ["/directory/", "/directory/people/{person}", "/directory/people/new", "/directory/people/{person}/edit",
            "/directory/people/{person}/move", "/directory/people/{person}/offboard", "/directory/import"]
ADMIN_PAGES = ["/directory/reconcile", "/directory/batches", "/directory/mappings", "/directory/kits"]
POSTS = ["/directory/people/new", "/directory/people/{person}/offboard", "/directory/people/{person}/restore",
         "/directory/people/{person}/cancel-offboard", "/directory/import", "/directory/reconcile",
         "/directory/batches/1/approve", "/directory/mappings", "/directory/mappings/1/delete", "/directory/kits"]


@pytest.fixture
def pending_person(app):
    """A joiner starting next month: no account yet, so no directory is needed to show them."""
    result = services.onboard(joiner("E9", start_date=TODAY + timedelta(days=30)), by="test", run_now=False)
    db.session.commit()
    return result.person


@pytest.mark.parametrize("role", ["employee", "it_staff"])
def test_employees_and_it_staff_cannot_open_or_post_to_any_directory_page(client_as, pending_person, role):
    client = client_as(role)
    token = csrf_token(client, "/account")
    for path in HR_PAGES + ADMIN_PAGES:
        assert client.get(path.format(person=pending_person.id)).status_code == 403, path
    for path in POSTS:
        response = client.post(path.format(person=pending_person.id), data={"csrf_token": token})
        assert response.status_code == 403, path
    assert count(DirectoryAction) == 1 and count(GroupMapping) == 0


def test_hr_opens_the_hr_pages_but_not_the_admin_pages(hr_client, pending_person):
    for path in HR_PAGES:
        assert hr_client.get(path.format(person=pending_person.id)).status_code == 200, path
    for path in ADMIN_PAGES:
        assert hr_client.get(path).status_code == 403, path
    token = csrf_token(hr_client, PEOPLE)
    assert hr_client.post("/directory/mappings", data={"csrf_token": token, "department": "Sales",
                                                       "groups": "sales"}).status_code == 403
    assert count(GroupMapping) == 0


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(PEOPLE)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_and_huge_ids_are_404(hr_client, admin_client):
    for path in ("/directory/people/999", "/directory/people/99999999999", "/directory/actions/999/preview"):
        assert hr_client.get(path).status_code == 404, path
    assert admin_client.get("/directory/mappings/999").status_code == 404
    assert admin_client.get("/directory/reconcile/999").status_code == 404


def test_a_post_without_csrf_token_is_refused_and_writes_nothing(hr_client):
    response = hr_client.post("/directory/people/new", data={**form_values(), "confirmed": "yes"})
    assert response.status_code in (400, 422)
    assert count(Person) == 0


# --- the people list -----------------------------------------------------------------------------------

@pytest.fixture
def staff(app):
    """Twelve people over three departments, each reporting to the first."""
    boss = services.onboard(joiner("B1", "Bella", "Boss", department="Board", start_date=TODAY + timedelta(days=9)),
                            by="test", run_now=False).person
    for i in range(11):
        services.onboard(joiner(f"S{i:02}", f"Sam{i:02}", f"Staff{i:02}", department=["Sales", "Ops"][i % 2],
                                location=["Berlin", "Lisbon"][i % 2], manager_employee_number="B1",
                                start_date=TODAY + timedelta(days=10 + i)), by="test", run_now=False)
    db.session.commit()
    return boss


@pytest.mark.parametrize("path", [PEOPLE, "/directory/?q=sam0&sort=department", "/directory/?state=pending&manager=B1",
                                  "/directory/?department=sales&location=Berlin&sort=-start"])
def test_list_page_costs_at_most_three_queries(hr_client, staff, path):
    statements = _statements_for(hr_client, path)
    assert len(statements) <= 3, statements


def test_list_search_filters_and_manager_names(hr_client, staff):
    page = text_of(hr_client.get("/directory/?q=STAFF03"))
    assert "Sam03 Staff03" in page and "Sam04" not in page
    page = text_of(hr_client.get("/directory/?department=Ops&location=lisbon"))
    assert page.count("Sam0") + page.count("Sam1") == 5 and "Bella Boss" in page  # as everyone's manager
    page = text_of(hr_client.get("/directory/?manager=B1&q=sam1"))
    assert "Sam10 Staff10" in page
    assert "Sam00" not in text_of(hr_client.get("/directory/?state=active"))


@pytest.mark.parametrize("sort", ["name", "employee_number", "department", "state", "-start"])
def test_keyset_pages_cover_everyone_once_in_every_sort(app, hr_client, staff, sort, monkeypatch):
    from itops.directory import queries

    monkeypatch.setattr(queries, "DEFAULT_PAGE_SIZE", 5)
    seen, cursor = [], None
    for _ in range(5):
        page = text_of(hr_client.get(f"/directory/?sort={sort}" + (f"&cursor={cursor}" if cursor else "")))
        seen += re.findall(r'href="/directory/people/(\d+)"', page)
        match = re.search(r"cursor=([\w-]+)", page)
        if not match or "Next page" not in page:
            break
        cursor = match.group(1)
    assert sorted(seen, key=int) == [str(p.id) for p in db.session.scalars(select(Person).order_by(Person.id))]


@pytest.mark.parametrize("query", ["?state=bogus", "?sort=evil", "?cursor=garbage!", "?q=" + "x" * 101])
def test_bad_list_input_is_422(hr_client, query):
    assert hr_client.get(PEOPLE + query).status_code == 422


@pytest.mark.parametrize("q", ["*", "a*)(uid=*", "\\", "%", "_", "')--", "\x00"])
def test_awkward_search_text_never_fails(hr_client, staff, q):
    assert hr_client.get(PEOPLE, query_string={"q": q}).status_code in (200, 422)


# --- joiner ----------------------------------------------------------------------------------------------

def test_onboard_previews_the_exact_ldap_add_then_shows_the_password_once(app, hr, hr_client):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    db.session.commit()
    preview = post(hr_client, "/directory/people/new", form_values())
    page = text_of(preview)
    assert preview.status_code == 200 and "Dry run" in page
    assert f"uid=jroe,{hr.people_dn}" in page and "inetOrgPerson" in page and "sales" in page
    assert count(Person) == 0 and entry(hr, "jroe") is None  # the preview wrote nothing

    done = post(hr_client, "/directory/people/new", {**form_values(), "confirmed": "yes"})
    assert done.status_code == 201 and done.headers["Cache-Control"] == "no-store"
    password = re.search(r'data-initial-password="jroe">([^<]+)<', text_of(done)).group(1)
    person = db.session.scalar(select(Person))
    assert person.state == PersonState.ACTIVE and entry(hr, "jroe") is not None
    assert f"uid=jroe,{hr.people_dn}".lower() in group_members(hr, "sales")
    for action in services.actions_of(person):
        assert password not in (action.secret_encrypted or "") and password not in repr(action.result)

    page = text_of(hr_client.get(f"/directory/people/{person.id}"))
    assert "jroe" in page and f"uid=jroe,{hr.people_dn}" in page and "Onboard" in page and "Done" in page
    assert password not in page


def test_onboard_warns_of_a_department_without_groups(hr, hr_client):
    page = text_of(post(hr_client, "/directory/people/new", form_values(department="Nowhere")))
    assert "No group mapping names the department" in page


@pytest.mark.parametrize("values, status, message", [
    ({"given_name": ""}, 422, "This field is required"),
    ({"start_date": "31/12/2024"}, 422, "Not a valid date"),
    ({"end_date": (TODAY - timedelta(days=5)).isoformat()}, 422, "Before the start date"),
    ({"manager_employee_number": "NOBODY"}, 422, "No such person"),
    ({"given_name": "李", "family_name": "小龍"}, 422, ""),
    ({"email": "not-an-address"}, 422, "Not an email address"),
    ({"given_name": "Jane\x00"}, 422, "Control characters"),
])
def test_bad_joiner_input_is_a_form_error_and_writes_nothing(hr, hr_client, values, status, message):
    response = post(hr_client, "/directory/people/new", {**form_values(**values), "confirmed": "yes"})
    assert response.status_code == status
    assert message in text_of(response)
    assert count(Person) == 0


def test_a_duplicate_employee_number_is_a_form_error(hr, hr_client, pending_person):
    response = post(hr_client, "/directory/people/new", {**form_values(employee_number="E9"), "confirmed": "yes"})
    assert response.status_code == 409 and "already belongs to" in text_of(response)
    assert count(Person) == 1


def test_ldap_metacharacters_in_names_are_data(hr, hr_client):
    response = post(hr_client, "/directory/people/new",
                    {**form_values(family_name="Ro*e)(uid=*", title="a\\b"), "confirmed": "yes"})
    assert response.status_code == 201
    person = db.session.scalar(select(Person))
    assert person.family_name == "Ro*e)(uid=*" and entry(hr, person.username)["sn"] == ["Ro*e)(uid=*"]


# --- mover, leaver, restore ------------------------------------------------------------------------------

def test_move_is_previewed_then_applied_with_groups_following(hr, hr_client):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    services.save_group_mapping(department="Ops", title=None, groups=["ops"], by="admin")
    person = onboard(joiner()).person
    path = f"/directory/people/{person.id}/move"
    values = {"effective": TODAY.isoformat(), "department": "Ops", "title": "Planner", "manager": ""}
    page = text_of(post(hr_client, path, values))
    assert "department: Sales → Ops" in page or "department -&gt; Ops" in page
    assert "cn=ops," in page and "cn=sales," in page  # added to one group, removed from the other
    assert entry(hr, "jdoe")["departmentNumber"] == ["Sales"]

    done = post(hr_client, path, {**values, "confirmed": "yes"})
    assert done.status_code == 302
    db.session.expire_all()
    assert person.department == "Ops" and entry(hr, "jdoe")["departmentNumber"] == ["Ops"]
    assert f"uid=jdoe,{hr.people_dn}".lower() in group_members(hr, "ops")
    assert post(hr_client, path, {**values, "confirmed": "yes"}).status_code == 422  # nothing changes now


def test_offboard_today_disables_at_once_and_restore_shows_a_new_password(hr, hr_client):
    person = onboard(joiner()).person
    path = f"/directory/people/{person.id}/offboard"
    page = text_of(post(hr_client, path, {"end_date": TODAY.isoformat()}))
    assert "Dry run" in page and f"{hr.disabled_dn}" in page and "sessions and API tokens revoked" in page
    db.session.expire_all()
    assert person.state == PersonState.ACTIVE and person.end_date is None

    assert post(hr_client, path, {"end_date": TODAY.isoformat(), "confirmed": "yes"}).status_code == 302
    db.session.expire_all()
    assert person.state == PersonState.DISABLED and entry(hr, "jdoe")["dn"].endswith(hr.disabled_dn)

    restore = f"/directory/people/{person.id}/restore"
    assert "Dry run" in text_of(hr_client.get(restore))
    done = post(hr_client, restore)
    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert re.search(r'data-initial-password="jdoe">[^<]+<', text_of(done))
    db.session.expire_all()
    assert person.state == PersonState.ACTIVE and entry(hr, "jdoe")["dn"].endswith(hr.people_dn)


def test_a_future_leaver_is_cancelled_after_a_dry_run(hr, hr_client):
    person = onboard(joiner()).person
    later = (TODAY + timedelta(days=20)).isoformat()
    post(hr_client, f"/directory/people/{person.id}/offboard", {"end_date": later, "confirmed": "yes"})
    db.session.expire_all()
    assert person.state == PersonState.LEAVING
    page = text_of(hr_client.get(f"/directory/people/{person.id}/cancel-offboard"))
    assert "pending → cancelled" in page and "leaving → active" in page
    assert post(hr_client, f"/directory/people/{person.id}/cancel-offboard").status_code == 302
    db.session.expire_all()
    assert person.state == PersonState.ACTIVE and person.end_date is None


def test_impossible_changes_are_refused_without_a_500(hr, hr_client, pending_person):
    assert hr_client.get(f"/directory/people/{pending_person.id}/restore").status_code == 409
    assert post(hr_client, f"/directory/people/{pending_person.id}/restore").status_code == 409
    assert post(hr_client, f"/directory/people/{pending_person.id}/cancel-offboard").status_code == 409
    response = post(hr_client, f"/directory/people/{pending_person.id}/offboard",
                    {"end_date": (TODAY - timedelta(days=1)).isoformat(), "confirmed": "yes"})
    assert response.status_code == 422 and "Before the start date" in text_of(response)


def test_edit_corrects_the_record_and_the_account_follows(hr, hr_client):
    person = onboard(joiner()).person
    values = {"employee_number": "E1", "given_name": "John", "family_name": "Doe", "preferred_name": "Jack",
              "email": "jack@example.org", "location": "Paris", "start_date": TODAY.isoformat()}
    page = text_of(post(hr_client, f"/directory/people/{person.id}/edit", values))
    assert "email: E1@example.org → jack@example.org" in page
    assert post(hr_client, f"/directory/people/{person.id}/edit", {**values, "confirmed": "yes"}).status_code == 302
    assert entry(hr, "jdoe")["mail"] == ["jack@example.org"] and entry(hr, "jdoe")["l"] == ["Paris"]


# --- HR import -----------------------------------------------------------------------------------------

CSV_HEADER = "employee_number,given_name,family_name,email,department,title,manager_employee_number,start_date\n"


def upload(client, text: str, name: str = "hr.csv"):
    return client.post("/directory/import", data={"csrf_token": csrf_token(client, "/directory/import"),
                                                  "file": (io.BytesIO(text.encode()), name)},
                       content_type="multipart/form-data")


def wait_for(job_id: int) -> Job:
    deadline = time.monotonic() + 30
    while True:
        db.session.remove()
        job = db.session.get(Job, job_id)
        if job.is_finished or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_import_preview_shows_row_errors_and_offers_no_import(hr, hr_client):
    page = upload(hr_client, CSV_HEADER + f"E1,Ann,Able,a@example.org,Sales,,,{TODAY}\n"
                                          f"E1,Bob,Baker,b@example.org,Sales,,,{TODAY}\n"
                                          f"E3,Cy,Cole,c@example.org,Sales,,NOPE,{TODAY}\n")
    text = text_of(page)
    assert page.status_code == 200 and "also on line" in text and "neither in HR" in text
    assert "/confirm" not in text and count(Person) == 0


@pytest.mark.parametrize("body, message", [("name,surname\nx,y\n", "lacks"), ("\xff\xfe", "")])
def test_an_unusable_file_is_a_form_error(hr, hr_client, body, message):
    response = upload(hr_client, body)
    assert response.status_code == 422 and message in text_of(response)


def test_import_runs_as_a_job_and_shows_the_passwords_once(hr, hr_client):
    page = text_of(upload(hr_client, CSV_HEADER + f"E1,Ann,Able,a@example.org,Sales,,,{TODAY}\n"
                                                  f"E2,Bob,Baker,b@example.org,Sales,,E1,{TODAY + timedelta(days=5)}\n"))
    assert count(Person) == 0
    confirm = re.search(r'action="(/directory/import/[\w-]+/confirm)"', page).group(1)
    response = post(hr_client, confirm)
    assert response.status_code == 302
    job = wait_for(int(response.headers["Location"].rsplit("/", 1)[1]))
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result["created"] == 2 and job.result["steps done"] == 1
    assert "sealed_passwords" in job.result and "aable" not in str(job.result)
    assert post(hr_client, confirm).status_code == 404  # a second click imports nothing

    job_page = text_of(hr_client.get(f"/directory/import/jobs/{job.id}"))
    assert "Show the joiners" in job_page and "sealed" not in job_page
    shown = post(hr_client, f"/directory/import/jobs/{job.id}/passwords")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    assert 'data-initial-password="aable"' in text_of(shown) and 'data-initial-password="bbaker"' in text_of(shown)
    assert post(hr_client, f"/directory/import/jobs/{job.id}/passwords").status_code == 404
    assert entry(hr, "aable") is not None and entry(hr, "bbaker") is None  # Bob starts in five days


# --- admin pages -------------------------------------------------------------------------------------------

def test_reconcile_reports_an_orphan_and_applies_only_what_is_ticked(hr, admin_client):
    onboard(joiner())
    connection = hr.admin_connection()
    for name in ("ghost", "spook"):
        connection.add(f"uid={name},{hr.people_dn}", ["inetOrgPerson"], {"cn": name, "sn": name, "uid": name})
    connection.unbind()
    response = post(admin_client, "/directory/reconcile")
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert wait_for(job_id).state == JobState.SUCCEEDED
    page = text_of(admin_client.get(f"/directory/reconcile/{job_id}"))
    assert "Orphan accounts" in page and 'value="orphan:ghost"' in page and 'value="orphan:spook"' in page
    assert 'value="person:' not in page  # jdoe is in step

    assert post(admin_client, f"/directory/reconcile/{job_id}/apply").status_code == 422  # nothing ticked
    done = post(admin_client, f"/directory/reconcile/{job_id}/apply", {"key": "orphan:ghost"})
    assert done.status_code == 200 and "1 fix applied" in text_of(done)
    assert entry(hr, "ghost")["dn"].endswith(hr.disabled_dn) and entry(hr, "spook")["dn"].endswith(hr.people_dn)


def test_held_batches_are_listed_and_approved_or_rejected(admin_client):
    first = services.hold_batch(BatchKind.RUN_DUE, "12 accounts due to be disabled", removals=12, by="system")
    second = services.hold_batch(BatchKind.RUN_DUE, "30 accounts due to be disabled", removals=30, by="system")
    db.session.commit()
    page = text_of(admin_client.get("/directory/batches"))
    assert "12 accounts due to be disabled" in page and "30 accounts" in page
    assert post(admin_client, f"/directory/batches/{first.id}/approve").status_code == 302
    assert post(admin_client, f"/directory/batches/{second.id}/reject").status_code == 302
    assert post(admin_client, f"/directory/batches/{second.id}/reject").status_code == 409
    db.session.expire_all()
    assert (first.state, second.state) == ("approved", "rejected")
    assert "No batch is waiting" in text_of(admin_client.get("/directory/batches"))


def test_admin_manages_group_mappings(admin_client):
    assert post(admin_client, "/directory/mappings", {"department": "Sales", "groups": "sales, crm\nstaff"}
                ).status_code == 302
    mapping = db.session.scalar(select(GroupMapping))
    assert mapping.groups == ["crm", "sales", "staff"]
    clash = post(admin_client, "/directory/mappings", {"department": "Sales", "groups": "x"})
    assert clash.status_code == 409 and "already exists" in text_of(clash)
    assert post(admin_client, "/directory/mappings", {"department": "", "title": "", "groups": "x"}).status_code == 422
    assert post(admin_client, f"/directory/mappings/{mapping.id}", {"department": "Sales", "title": "Lead",
                                                                    "groups": "leads"}).status_code == 302
    assert post(admin_client, f"/directory/mappings/{mapping.id}/delete").status_code == 302
    assert count(GroupMapping) == 0


def test_admin_manages_kit_templates(admin_client):
    assert post(admin_client, "/directory/kits", {"department": "Sales", "items": "laptop: ThinkPad T14\nmobile_phone"}
                ).status_code == 302
    kit = db.session.scalar(select(KitTemplate))
    assert kit.items == [{"kind": "laptop", "model": "ThinkPad T14"}, {"kind": "mobile_phone", "model": None}]
    assert "ThinkPad T14" in text_of(admin_client.get("/directory/kits?department=Sales"))
    bad = post(admin_client, "/directory/kits", {"department": "Sales", "items": "spaceship"})
    assert bad.status_code == 422 and "Unknown asset kind" in text_of(bad)
    assert post(admin_client, "/directory/kits", {"department": "", "items": "laptop"}).status_code == 422
