"""End-to-end against a real slapd: HR onboards a person after a dry run; the person signs in with the new
directory account and files a ticket; HR offboards them (last day today, at once); they can no longer
sign in, and IT staff see the return ticket for their laptop. Then the admins' directory pages.

Every new page is saved under test-artifacts/screenshots/directory-*.png for people to look at."""
from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from itops.directory import services
from itops.directory.choices import BatchKind
from itops.directory.models import Person
from itops.extensions import db
from tests.e2e.conftest import nav, sign_in
from tests.integration.directory_support import hr, own_slapd  # noqa: F401 (fixtures)

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"directory-{name}.png", full_page=True, animations="disabled")


def heading(page: Page):
    return page.get_by_role("heading", level=1)


def test_hr_onboards_the_joiner_files_a_ticket_hr_offboards_and_it_sees_the_return(
        page: Page, browser, base_url, console, hr, make_user, make_asset):
    make_user("hr", "hana", display_name="Hana Human-Resources", email="hana@example.org")
    make_user("it_staff", "tess", display_name="Tess Tech", email="tess@example.org")
    services.save_group_mapping(department="Sales", title=None, groups=["sales", "staff"], by="admin")
    services.save_kit_template("Sales", [{"kind": "laptop", "model": None}], by="admin")
    db.session.commit()

    # HR onboards Jane after reading the dry run.
    sign_in(page, "hana")
    nav(page).get_by_role("link", name="Directory").click()
    expect(heading(page)).to_have_text("Directory")
    page.get_by_role("link", name="Onboard a person").click()
    page.get_by_label("Employee number").fill("E-4711")
    page.get_by_label("Given name").fill("Jane")
    page.get_by_label("Family name").fill("Roe")
    page.get_by_label("Email").fill("jane.roe@example.org")
    page.get_by_label("Department").fill("Sales")
    page.get_by_label("Title").fill("Account manager")
    page.get_by_label("Location").fill("Berlin")
    page.get_by_label("Start date").fill(date.today().isoformat())
    shot(page, "onboard-form")
    page.get_by_role("button", name="Preview").click()
    expect(heading(page)).to_contain_text("Dry run")
    operations = page.get_by_role("table", name=re.compile("exact LDAP operations"))
    expect(operations).to_contain_text(f"uid=jroe,{hr.people_dn}")
    expect(operations).to_contain_text("inetOrgPerson")
    expect(page.get_by_role("region", name="Changes in itops")).to_contain_text("provisioning ticket")
    shot(page, "onboard-preview")
    page.get_by_role("button", name="Confirm").click()
    expect(heading(page)).to_have_text("Jane Roe is onboarded")
    password = page.locator('[data-initial-password="jroe"]').inner_text()
    assert len(password) >= 16
    shot(page, "onboarded")

    # IT staff give Jane a laptop (the provisioning ticket asked for one).
    db.session.remove()
    jane = db.session.scalar(select(Person).where(Person.username == "jroe"))
    laptop = make_asset("laptop", name="jane-thinkpad", holder=jane.user, serial="PF-DIR-1")

    # Jane signs in with her new directory account and files a ticket.
    jane_context = browser.new_context(base_url=base_url)
    console.attach(jane_context)
    jane_page = jane_context.new_page()
    sign_in(jane_page, "jroe", password)
    expect(heading(jane_page)).to_have_text("Hello, Jane Roe")
    jane_page.goto("/tickets/new")
    jane_page.get_by_label("Title").fill("VPN does not connect")
    jane_page.get_by_label("Description").fill("The VPN client says my certificate is unknown.")
    jane_page.get_by_role("button", name="File ticket").click()
    expect(jane_page.get_by_role("status")).to_contain_text("filed")

    # HR sees her account, groups, laptop and ticket, then offboards her today, after a dry run.
    page.goto(f"/directory/people/{jane.id}")
    expect(heading(page)).to_have_text("Jane Roe")
    expect(page.get_by_role("region", name="Directory account")).to_contain_text(f"uid=jroe,{hr.people_dn}")
    expect(page.get_by_role("region", name="Directory account")).to_contain_text("sales")
    expect(page.get_by_role("region", name="Assets held")).to_contain_text(laptop.tag)
    expect(page.get_by_role("region", name="Open tickets")).to_contain_text("VPN does not connect")
    shot(page, "person")
    page.get_by_role("link", name="Offboard").click()
    expect(page.get_by_label("Last day")).to_have_value(date.today().isoformat())
    page.get_by_role("button", name="Preview").click()
    expect(heading(page)).to_contain_text("Dry run: Offboard")
    expect(page.get_by_role("table", name=re.compile("exact LDAP operations"))).to_contain_text(hr.disabled_dn)
    expect(page.get_by_role("region", name="Changes in itops")).to_contain_text(laptop.tag)
    shot(page, "offboard-preview")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("the account is disabled")
    expect(page.get_by_text("Disabled", exact=True).first).to_be_visible()
    shot(page, "person-disabled")

    # Jane's session is gone, and her password no longer signs her in.
    jane_page.goto("/tickets/")
    expect(jane_page).to_have_url(re.compile("/login"))
    console.allow_status("/login?next=/tickets/", 401)
    jane_page.get_by_label("Username").fill("jroe")
    jane_page.get_by_label("Password").fill(password)
    jane_page.get_by_role("button", name="Sign in").click()
    expect(jane_page.get_by_role("alert")).to_contain_text("Wrong username or password")
    jane_context.close()

    # IT staff find the return ticket for her laptop.
    staff_context = browser.new_context(base_url=base_url)
    console.attach(staff_context)
    staff = staff_context.new_page()
    sign_in(staff, "tess")
    nav(staff).get_by_role("link", name="Tickets", exact=True).click()
    staff.get_by_role("link", name="Return equipment of Jane Roe").click()
    expect(heading(staff)).to_contain_text("Return equipment of Jane Roe")
    expect(staff.get_by_text(re.compile(f"{laptop.tag} jane-thinkpad"))).to_be_visible()
    shot(staff, "return-ticket")
    staff_context.close()


def test_admin_pages(page: Page, hr, make_user, console):
    make_user("admin", "ada", display_name="Ada Administrator", email="ada@example.org")
    services.save_group_mapping(department="Sales", title=None, groups=["sales", "staff"], by="admin")
    services.save_group_mapping(department="Sales", title="Team lead", groups=["leads"], by="admin")
    services.save_kit_template("Sales", [{"kind": "laptop", "model": "ThinkPad T14"},
                                         {"kind": "mobile_phone", "model": None}], by="admin")
    for number, given, family in (("E1", "Jane", "Roe"), ("E2", "Zoë", "Ødegård")):
        services.onboard({"employee_number": number, "given_name": given, "family_name": family,
                          "department": "Sales", "start_date": date.today()}, by="admin")
    services.hold_batch(BatchKind.RUN_DUE, "14 accounts due to be disabled", removals=14, by="system")
    db.session.commit()
    connection = hr.admin_connection()
    connection.add(f"uid=ghost,{hr.people_dn}", ["inetOrgPerson"], {"cn": "Ghost", "sn": "Ghost", "uid": "ghost"})
    connection.modify(f"uid=jroe,{hr.people_dn}", {"title": [("MODIFY_REPLACE", ["Boss"])]})
    connection.unbind()

    sign_in(page, "ada")
    page.goto("/directory/")
    expect(page.get_by_role("table", name="People")).to_contain_text("Zoë Ødegård")
    shot(page, "list")
    page.get_by_role("link", name="Group mappings").click()
    expect(heading(page)).to_have_text("Group mappings")
    shot(page, "mappings")
    page.get_by_role("link", name="Kit templates").click()
    expect(page.get_by_role("table", name="Kit templates")).to_contain_text("ThinkPad T14")
    shot(page, "kits")
    page.get_by_role("link", name="Approvals").click()
    expect(page.get_by_text("14 accounts due to be disabled")).to_be_visible()
    shot(page, "batches")

    page.get_by_role("link", name="Reconcile").click()
    page.get_by_role("button", name="Run the reconcile report").click()
    expect(page.get_by_role("heading", name=re.compile("Orphan accounts"))).to_be_visible(timeout=20_000)
    expect(page.get_by_role("heading", name=re.compile("Attribute drift"))).to_be_visible()
    shot(page, "reconcile")
    page.get_by_label(re.compile("ghost")).check()
    page.get_by_role("button", name="Apply the ticked fixes").click()
    expect(heading(page)).to_have_text("Reconcile applied")
    shot(page, "reconciled")

    page.goto("/directory/import")
    page.get_by_label("HR CSV file").set_input_files(files=[{
        "name": "hr.csv", "mimeType": "text/csv", "buffer": (
            "employee_number,given_name,family_name,department,manager_employee_number,start_date\n"
            f"E3,Ann,Able,Sales,,{date.today()}\nE3,Bob,Baker,Ops,E1,{date.today()}\n"
            f"E4,Cy,Cole,Ops,NOPE,not-a-date\n").encode()}])
    page.get_by_role("button", name="Check the file").click()
    expect(page.get_by_role("alert")).to_contain_text("rows have errors")
    shot(page, "import-preview")
