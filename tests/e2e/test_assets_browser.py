"""End-to-end: IT staff create a laptop and check it out; the employee then sees it as theirs."""
import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import nav, sign_in

pytestmark = pytest.mark.e2e


def test_it_staff_create_and_check_out_a_laptop_that_the_employee_then_sees(page: Page, make_user, browser):
    make_user("it_staff", "tess", display_name="Tess Tech")
    make_user("employee", "eve", display_name="Eve Employee")
    make_user("employee", "otto", display_name="Otto Other")

    sign_in(page, "tess")
    nav(page).get_by_role("link", name="Assets", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Assets")
    page.get_by_role("link", name="New asset").click()

    page.get_by_label("Kind").select_option("laptop")
    # The kind's script shows only the fields that apply: a laptop has no IMEI.
    expect(page.get_by_label("IMEI")).to_be_hidden()
    expect(page.get_by_label("MAC address")).to_be_visible()
    page.get_by_label("Name or hostname").fill("eve-thinkpad")
    page.get_by_label("Serial number").fill("PF-E2E-001")
    page.get_by_label("Manufacturer").fill("Lenovo")
    page.get_by_label("Warranty ends").fill("2029-06-30")
    page.get_by_role("button", name="Create asset").click()

    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Laptop IT-\d{6} created\."))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("eve-thinkpad")
    tag = heading.inner_text().split(" ")[0]

    page.get_by_label("Check out to (username)").fill("eve")
    page.get_by_label("Condition notes").fill("new in box")
    page.get_by_role("button", name="Check out").click()
    expect(page.get_by_role("status")).to_have_text(f"{tag} checked out to Eve Employee.")
    expect(page.get_by_text("Deployed", exact=True)).to_be_visible()
    history = page.get_by_role("table", name=re.compile("What happened to"))
    expect(history.get_by_role("row").nth(1)).to_contain_text("checked out to Eve Employee (eve)")
    expect(history).to_contain_text("new in box")

    # The employee, in a browser of their own, sees the laptop under their assets.
    employee_context = browser.new_context(base_url=page.url.split("/assets")[0])
    employee = employee_context.new_page()
    sign_in(employee, "eve")
    nav(employee).get_by_role("link", name="Assets", exact=True).click()
    expect(employee.get_by_role("heading", level=1)).to_have_text("My assets")
    mine = employee.get_by_role("table", name="Assets you hold")
    expect(mine.get_by_role("row")).to_have_count(2)  # header + the laptop
    mine.get_by_role("link", name=tag).click()
    expect(employee.get_by_role("heading", level=1)).to_have_text(f"{tag} · eve-thinkpad")
    expect(employee.get_by_role("button", name="Check in from Eve Employee")).to_have_count(0)  # read-only
    employee_context.close()

    # Someone else holds nothing and cannot open it.
    other_context = browser.new_context(base_url=page.url.split("/assets")[0])
    other = other_context.new_page()
    sign_in(other, "otto")
    other.goto("/assets/")
    expect(other.get_by_role("table", name="Assets you hold")).to_contain_text("You hold no assets.")
    response = other.goto(page.url)
    assert response.status == 404
    other_context.close()
