"""End-to-end: real chromium, real HTTP, real forms, CSP and JavaScript included.

Each test's console is checked by the autouse `console` fixture (tests/e2e/conftest.py).
"""
import re

import pytest
from playwright.sync_api import Page, expect

from itops.core import jobs
from itops.extensions import db
from tests.conftest import PASSWORD, csrf_token
from tests.e2e.conftest import nav, sign_in

pytestmark = pytest.mark.e2e


def test_local_user_signs_in_uses_the_app_manages_a_token_and_signs_out(page: Page, make_user):
    user = make_user("it_staff", display_name="Tess Tech")
    sign_in(page, user.username)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("status")).to_have_text("Welcome, Tess Tech.")

    main_nav = nav(page)
    for label in ("Assets", "Tickets", "Monitoring"):
        expect(main_nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    for label in ("Directory", "Admin", "Audit log"):
        expect(main_nav.get_by_role("link", name=label, exact=True)).to_have_count(0)

    main_nav.get_by_role("link", name="Monitoring", exact=True).click()
    expect(page).to_have_url(re.compile(r"/monitoring/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Monitoring")
    expect(main_nav.get_by_role("link", name="Monitoring", exact=True)).to_have_attribute("aria-current", "page")

    main_nav.get_by_role("link", name=re.compile("Tess Tech")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(page.get_by_role("table", name="Your API tokens")).to_contain_text("No tokens yet.")

    page.get_by_label("Token name").fill("inventory script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("status")).to_contain_text("Token inventory script created.")
    secret = page.get_by_label("New API token").input_value()
    assert secret.startswith("itops_") and len(secret) > 30
    tokens = page.get_by_role("table", name="Your API tokens")
    row = tokens.get_by_role("row").filter(has_text="inventory script")
    expect(row).to_contain_text("active")

    page.once("dialog", lambda dialog: dialog.accept())  # itops.js asks before revoking
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_have_text("Token 'inventory script' revoked.")
    expect(page.get_by_label("New API token")).to_have_count(0)  # the secret is shown once only
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)

    nav(page).get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to itops")
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    expect(nav(page).get_by_role("button", name="Sign out")).to_have_count(0)

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to itops")
    expect(page.get_by_role("status")).to_have_text("Please sign in to continue.")


def test_directory_user_signs_in_and_sees_the_it_staff_navigation(page: Page, directory):
    sign_in(page, "ivy", "ivy-pass-1")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hello, Ivy Tech")
    main_nav = nav(page)
    expect(main_nav.get_by_role("link", name=re.compile("Ivy Tech"))).to_contain_text("IT staff")
    expect(main_nav.get_by_role("link")).to_have_text(["itops", "Assets", "Tickets", "Monitoring",
                                                        re.compile("Ivy Tech")])


def test_admin_browses_users_and_filters_the_audit_log(page: Page, app, make_user):
    admin = make_user("admin", display_name="Ada Admin")
    colleague = make_user("employee", display_name="Emil Employee")
    client = app.test_client()  # the colleague signs in too, without a second browser
    response = client.post("/login", data={"username": colleague.username, "password": PASSWORD,
                                           "csrf_token": csrf_token(client, "/login")})
    assert response.status_code == 302
    sign_in(page, admin.username)

    nav(page).get_by_role("link", name="Admin", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    users = page.get_by_role("table", name="Users")
    expect(users.get_by_role("row")).to_have_count(3)  # header + two users
    expect(users).to_contain_text("Ada Admin")
    users.get_by_role("link", name=colleague.username).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Emil Employee")
    expect(page.get_by_role("navigation", name="breadcrumb")).to_contain_text(colleague.username)
    expect(page.get_by_label("Role")).to_have_value("employee")
    expect(page.get_by_role("listitem").filter(has_text=f"{colleague.username} signed in (local)")).to_be_visible()

    nav(page).get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    entries = page.get_by_role("table", name="Audit entries, newest first")
    for username in (admin.username, colleague.username):
        expect(entries.get_by_role("row").filter(has_text=f"{username} signed in (local)")).to_have_count(1)
    expect(entries.get_by_role("row").filter(has_text="user.create")).to_have_count(2)

    page.get_by_label("Action").fill("user.login")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]action=user\.login"))
    expect(entries.get_by_role("row")).to_have_count(3)  # header + two sign-ins, newest first
    expect(entries.locator("tbody tr td:nth-child(3)")).to_have_text(["user.login", "user.login"])
    expect(entries.locator("tbody tr td:nth-child(2)")).to_have_text([admin.username, colleague.username])


def test_api_docs_render_swagger_ui_within_the_csp(page: Page, console):
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("itops")
    expect(page.locator(".opblock").filter(has_text="/api/v1/me").first).to_be_visible()
    assert not console.csp_violations()


def test_not_found_and_forbidden_pages_are_friendly(page: Page, make_user, session_for, console):
    session_for(make_user("employee"))
    console.allow_status("/monitoring/", 403)
    console.allow_status("/no/such/page", 404)
    response = page.goto("/monitoring/")
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    response = page.goto("/no/such/page")
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    page.get_by_role("link", name="Go to the start page").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello,")


def test_job_page_follows_progress_and_shows_the_result_without_a_reload(page: Page, make_user, session_for):
    user = make_user("it_staff")
    job = jobs.create_job("e2e.count", "Count the widgets", by=user, total=10)
    db.session.commit()
    session_for(user)
    page.goto(f"/jobs/{job.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Count the widgets")
    state = page.locator('[data-field="state"]')
    expect(state).to_have_text("queued")

    def work(progress):
        progress.advance(4, "Counted the first crate")
        progress.set_total(10)  # forces the progress write out now (advance() is throttled)
        # The page polls /api/v1/jobs/<id> and shows progress while the work is still running.
        expect(state).to_have_text("running")
        expect(page.locator('[data-field="progress"]')).to_have_text("4 of 10")
        expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("aria-valuenow", "40")
        expect(page.locator('[data-field="message"]')).to_have_text("Counted the first crate")
        progress.advance(6, "Counted them all")
        return {"widgets": 42}

    jobs.run_job(job, work)
    # job.js reloads once the job has finished; the server then renders the result.
    expect(state).to_have_text("succeeded")
    result = page.locator('[data-field="outcome"]')
    expect(result.get_by_role("heading")).to_have_text("Result")
    expect(result.locator("dt")).to_have_text(["widgets"])
    expect(result.locator("dd")).to_have_text(["42"])
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("aria-valuenow", "100")


def test_job_page_stops_polling_when_the_job_is_gone(page: Page, make_user, session_for, console):
    user = make_user("it_staff")
    job = jobs.create_job("e2e.gone", "Short-lived job", by=user, total=3)
    db.session.commit()
    session_for(user)
    page.goto(f"/jobs/{job.id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Short-lived job")
    console.allow_status(f"/api/v1/jobs/{job.id}", 404)
    console.allow_status(f"/jobs/{job.id}", 404)
    db.session.delete(job)
    db.session.commit()
    # The next poll answers 404: the page reloads and the server says why, instead of polling on.
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
