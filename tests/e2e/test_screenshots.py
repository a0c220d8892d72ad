"""Full-page screenshots of every page, as each role and once on a phone-sized viewport.

The PNGs land in test-artifacts/screenshots/ (git-ignored) for people to look at; the test itself
checks that each page answered with the expected status and heading and logged no console error.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from itops.core import audit, jobs
from itops.core.auth import services
from itops.core.database import utcnow
from itops.extensions import db

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 390, "height": 844}

AREAS = {  # page name -> (path, heading)
    "assets": ("/assets/", re.compile(r"^(My assets|Assets)$")),
    "tickets": ("/tickets/", re.compile(r"^(My tickets|Tickets)$")),
    "monitoring": ("/monitoring/", "Monitoring"),
    "directory": ("/directory/", "Directory"),
}
ROLE_AREAS = {
    "employee": ("assets", "tickets"),
    "it_staff": ("assets", "tickets", "monitoring"),
    "hr": ("tickets", "directory"),
    "admin": ("assets", "tickets", "monitoring", "directory"),
}


@pytest.fixture
def world(make_user):
    """Enough data that lists, tables and the job page are not empty."""
    people = {
        "employee": make_user("employee", "erin", display_name="Erin Employee", email="erin@example.org"),
        "it_staff": make_user("it_staff", "tariq", display_name="Tariq Technician", email="tariq@example.org"),
        "hr": make_user("hr", "hana", display_name="Hana Human-Resources", email="hana@example.org"),
        "admin": make_user("admin", "ada", display_name="Ada Administrator", email="ada@example.org"),
    }
    for user in people.values():
        audit.record("user.login", "user", user.id, summary=f"{user.username} signed in (local)", actor=user)
    admin = people["admin"]
    services.issue_token(admin, "inventory script on build host")
    revoked = services.issue_token(admin, "old laptop")
    services.revoke_token(revoked.token, by=admin)
    mover = make_user("employee", "moritz", display_name="Moritz Mover")
    services.change_role(mover, "it_staff", by=admin)  # an audit entry with before -> after
    running = jobs.create_job("demo.count", "Count the widgets in every warehouse", by=admin, total=10)
    running.state, running.done, running.message = "running", 4, "Counted the Hamburg warehouse"
    running.started_at = utcnow()
    finished = jobs.create_job("directory.refresh", "Refresh users from the directory", by=admin, total=6)
    db.session.commit()

    def refresh(progress):
        progress.advance(6, "Compared 6 directory entries")
        return {"created": 2, "updated": 3, "disabled": 1}

    jobs.run_job(finished, refresh)
    assets = _assets(people)
    return {"people": people, "running": running, "finished": finished, "assets": assets,
            "tickets": _tickets(people, assets)}


def _assets(people) -> dict:
    """A laptop held by the employee with an agent report, a phone, a switch with a stored login."""
    from itops.assets import inventory, services as assets
    from tests.integration.test_agent_ingest import report

    it_staff, employee = people["it_staff"], people["employee"]
    laptop = assets.create_asset("laptop", {"name": "erin-laptop", "serial": "PF2ABCDE", "manufacturer": "LENOVO",
                                            "model": "ThinkPad T14", "location": "Berlin, 3rd floor",
                                            "warranty_end": date(2028, 3, 31), "cost": Decimal("1249.00")},
                                 by=it_staff)
    assets.checkout(laptop, employee, by=it_staff, expected_return=date(2029, 1, 31), condition="new")
    inventory.apply_report(laptop, inventory.check_report(report(hostname="erin-laptop", last_user="erin")))
    assets.create_asset("mobile_phone", {"name": "Erin's phone", "imei": "490154203237518",
                                         "phone_number": "+4915112345678", "carrier": "Telekom"}, by=it_staff)
    login = assets.create_credential("core switches", "netops", "s3cret-pass", by=it_staff)
    switch = assets.create_asset("switch", {"name": "core-sw-1", "management_address": "127.0.0.1",
                                            "device_type": "cisco_ios", "credential_id": login.id,
                                            "location": "Berlin, server room"}, by=it_staff)
    assets.issue_enrollment_token("laptop rollout", by=it_staff)
    db.session.commit()
    return {"laptop": laptop, "switch": switch}


def _tickets(people, assets) -> dict:
    """A team, categories, a canned response and tickets in each state: one with a conversation (public
    and internal), an attachment and the employee's laptop; one breaching; one pending; one resolved."""
    import io

    from itops.tickets import services as tickets

    employee, it_staff, admin = people["employee"], people["it_staff"], people["admin"]
    team = tickets.save_team("Service desk", email="servicedesk@example.org", member_ids=[it_staff.id], by=admin)
    tickets.save_team("Network", email=None, member_ids=[], by=admin)
    hardware = tickets.save_category("Hardware", default_team_id=team.id, default_assignee_id=it_staff.id, by=admin)
    tickets.save_category("Accounts and access", default_team_id=team.id, default_assignee_id=None, by=admin)
    tickets.save_category("Fax machines", default_team_id=None, default_assignee_id=None, active=False, by=admin)
    canned = tickets.save_canned_response(
        "Restart first", "Hello {requester_first_name},\n\nplease restart the device and tell us whether "
        "{ticket_number} still happens.\n\n{agent_name}", by=admin)
    main = tickets.create_ticket(
        employee, title="Laptop fan is loud and the battery drains in an hour",
        body="Since Monday the fan runs all the time, even when idle.\nThe battery lasts about an hour.",
        category_id=hardware.id, impact="low", urgency="high", asset_id=assets["laptop"].id, by=employee,
        uploads=[tickets.Upload(io.BytesIO(b"powertop: 14.2 W discharge\n"), "powertop-report.txt")])
    tickets.add_comment(main, it_staff, "Thanks, Erin. Could you close the browser tabs and check again?")
    tickets.add_comment(main, it_staff, "Battery health is at 61% per the agent; a replacement is likely.",
                        internal=True)
    tickets.add_comment(main, employee, "Closing the tabs did not help; the fan is still loud.")
    late = tickets.create_ticket(employee, title="Cannot reach the shared drive", body="Error 0x80070035.",
                                 category_id=None, impact="high", urgency="high", by=employee)
    late.response_breached = late.resolution_breached = True
    waiting = tickets.create_ticket(people["hr"], title="New starter needs a laptop", body="Starts on the 1st.",
                                    category_id=hardware.id, impact="medium", urgency="low", by=people["hr"])
    tickets.change_status(waiting, "pending", by=it_staff)
    done = tickets.create_ticket(employee, title="Printer on 2nd floor jams", body="Every third page.",
                                 category_id=None, impact="medium", urgency="medium", by=employee)
    tickets.add_comment(done, it_staff, "Replaced the pickup roller.")
    tickets.change_status(done, "resolved", by=it_staff)
    db.session.commit()
    return {"main": main, "resolved": done, "team": team, "category": hardware, "canned": canned}


def shoot(page: Page, name: str, path: str, heading: str | re.Pattern, *, status: int = 200,
          full_page: bool = True) -> None:
    response = page.goto(path)
    assert response is not None and response.status == status, f"{path}: {response and response.status}"
    # .first: Swagger UI adds an <h1> of its own (the API title) after the page's.
    expect(page.get_by_role("heading", level=1).first).to_have_text(heading)
    if path.startswith("/api/v1/docs"):
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("itops")
        expect(page.locator(".opblock").first).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=full_page, animations="disabled")


def _pages_for(role: str, world) -> list[tuple[str, str, str | re.Pattern, int]]:
    """(name, path, heading, status) of every page `role` can see, plus the error pages."""
    user = world["people"][role]
    pages = [("home", "/", f"Hello, {user.display_name}", 200)]
    pages += [(area, *AREAS[area], 200) for area in ROLE_AREAS[role]]
    pages.append(("account", "/account", "Your account", 200))
    laptop = world["assets"]["laptop"]
    if role in ("employee", "it_staff"):
        pages += [("asset", f"/assets/{laptop.id}", f"{laptop.tag} · erin-laptop", 200),
                  ("asset-software", f"/assets/{laptop.id}/software", "Installed software on erin-laptop", 200),
                  ("asset-label", f"/assets/{laptop.id}/label", "Label", 200)]
    main, resolved = world["tickets"]["main"], world["tickets"]["resolved"]
    if role in ("employee", "it_staff", "admin"):
        pages += [("ticket-new", "/tickets/new", "New ticket", 200),
                  ("ticket", f"/tickets/{main.id}", f"#{main.id} · {main.title}", 200)]
    if role == "employee":
        pages += [("ticket-resolved", f"/tickets/{resolved.id}", f"#{resolved.id} · {resolved.title}", 200),
                  ("tickets-all", "/tickets/?queue=all", "My tickets", 200)]
    if role == "it_staff":
        pages += [("tickets-breaching", "/tickets/?queue=breaching", "Tickets", 200),
                  ("ticket-canned", f"/tickets/{main.id}?canned={world['tickets']['canned'].id}",
                   f"#{main.id} · {main.title}", 200)]
    if role == "admin":
        team, category = world["tickets"]["team"], world["tickets"]["category"]
        pages += [("tickets-teams", "/tickets/settings/teams", "Teams", 200),
                  ("tickets-team-edit", f"/tickets/settings/teams/{team.id}", "Edit team Service desk", 200),
                  ("tickets-categories", "/tickets/settings/categories", "Ticket categories", 200),
                  ("tickets-category-edit", f"/tickets/settings/categories/{category.id}", "Edit category Hardware",
                   200),
                  ("tickets-canned", "/tickets/settings/canned", "Canned responses", 200),
                  ("tickets-canned-new", "/tickets/settings/canned/new", "New canned response", 200)]
    if role == "it_staff":
        switch = world["assets"]["switch"]
        pages += [("asset-new", "/assets/new", "New asset", 200),
                  ("asset-edit", f"/assets/{switch.id}/edit", f"Edit {switch.tag}", 200),
                  ("asset-switch", f"/assets/{switch.id}", f"{switch.tag} · core-sw-1", 200),
                  ("asset-labels", f"/assets/labels?id={laptop.id}&id={switch.id}", "2 labels", 200),
                  ("asset-enrollment", "/assets/enrollment", "Inventory agent enrollment", 200),
                  ("asset-credentials", "/assets/credentials", "Device credentials", 200),
                  ("asset-import", "/assets/import", "Import assets from CSV", 200)]
    if role == "admin":
        target = world["people"]["it_staff"]
        pages += [
            ("admin-users", "/admin/users", "Users", 200),
            ("admin-user", f"/admin/users/{target.id}", re.compile(re.escape(target.display_name)), 200),
            ("audit-log", "/admin/audit", "Audit log", 200),
            ("job-running", f"/jobs/{world['running'].id}", world["running"].title, 200),
            ("job-finished", f"/jobs/{world['finished'].id}", world["finished"].title, 200),
        ]
    pages += [("api-docs", "/api/v1/docs", "API documentation", 200), ("404", "/no/such/page", "Not found", 404)]
    if role == "employee":
        pages.append(("403", "/monitoring/", "Not allowed", 403))
    return pages


@pytest.mark.parametrize("role", ["employee", "it_staff", "hr", "admin"])
def test_every_page_as_each_role(page: Page, role, world, session_for, console):
    if role == "employee":
        shoot(page, "login", "/login", "Sign in to itops")
        _shoot_wrong_password(page, console)
    session_for(world["people"][role])
    for name, path, heading, status in _pages_for(role, world):
        if status != 200:
            console.allow_status(path, status)
        shoot(page, f"{role}-{name}", path, heading, status=status)
    if role == "it_staff":
        _shoot_new_token(page)
        _shoot_import_preview(page)


def _shoot_wrong_password(page: Page, console) -> None:
    console.allow_status("/login", 401)
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill("not the password")
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_contain_text("Wrong username or password")
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    page.screenshot(path=SHOTS / "login-wrong-password.png", full_page=True, animations="disabled")


def _shoot_new_token(page: Page) -> None:
    page.goto("/account")
    page.get_by_label("Token name").fill("laptop inventory")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_label("New API token")).to_have_value(re.compile(r"^itops_"))
    page.screenshot(path=SHOTS / "account-new-token.png", full_page=True, animations="disabled")


def _shoot_import_preview(page: Page) -> None:
    page.goto("/assets/import")
    csv_text = ("tag,kind,name,serial,imei,purchase_date,holder\n"
                "IT-000001,laptop,erin-laptop,PF2ABCDE,,2025-01-15,erin\n"
                ",mobile_phone,New phone,,490154203237519,,\n"
                ",laptop,Spare laptop,PF9NEW01,,31/12/2025,\n"
                ",spaceship,Enterprise,,,,\n"
                ",desktop,Reception PC,DESK-01,,2024-06-01,nobody\n"
                ",switch,access-sw-2,SW-0002,,2023-03-01,\n")
    page.get_by_label("CSV file").set_input_files(files=[{"name": "assets.csv", "mimeType": "text/csv",
                                                          "buffer": csv_text.encode()}])
    page.get_by_role("button", name=re.compile("Preview|Check")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import preview: assets.csv")
    page.screenshot(path=SHOTS / "it_staff-asset-import-preview.png", full_page=True, animations="disabled")


def test_every_page_on_a_phone(page: Page, world, session_for, console):
    page.set_viewport_size(PHONE)
    shoot(page, "phone-login", "/login", "Sign in to itops")
    session_for(world["people"]["admin"])
    for name, path, heading, status in _pages_for("admin", world):
        if status != 200:
            console.allow_status(path, status)
        shoot(page, f"phone-{name}", path, heading, status=status)
    session_for(world["people"]["employee"])
    console.allow_status("/monitoring/", 403)
    shoot(page, "phone-403", "/monitoring/", "Not allowed", status=403)
