"""End-to-end: an employee files a ticket about their laptop with a log attached; IT staff find it by
search, answer publicly and note something internally, then resolve it; the employee sees the answer
(never the note) and rates the help."""
import re

import pytest
from playwright.sync_api import Page, expect

from itops.tickets import services
from itops.extensions import db
from tests.e2e.conftest import nav, sign_in

pytestmark = pytest.mark.e2e


def test_employee_files_staff_answer_and_resolve_employee_rates(page: Page, browser, base_url, console, make_user,
                                                                make_asset):
    eve = make_user("employee", "eve", display_name="Eve Employee", email="eve@example.org")
    tess = make_user("it_staff", "tess", display_name="Tess Tech", email="tess@example.org")
    laptop = make_asset("laptop", name="eve-thinkpad", holder=eve, serial="PF-E2E-7")
    make_asset("laptop", name="someone-elses-laptop")
    services.save_category("Hardware", default_team_id=None, default_assignee_id=None, by=tess)
    services.save_canned_response("Try another port", "Hello {requester_first_name}, please try another port.",
                                  by=tess)
    db.session.commit()

    # The employee files the ticket.
    sign_in(page, "eve")
    nav(page).get_by_role("link", name="Tickets", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("My tickets")
    page.get_by_role("link", name="New ticket").click()
    page.get_by_label("Title").fill("Docking station flickers")
    page.get_by_label("Description").fill("The external screen goes black every few minutes.\n<b>not bold</b>")
    page.get_by_label("Category").select_option(label="Hardware")
    page.get_by_label("Impact").select_option("low")
    page.get_by_label("Urgency").select_option("high")
    expect(page.get_by_text("With this impact and urgency the priority is Medium.")).to_be_visible()
    asset_choice = page.get_by_label("Affected asset")
    expect(asset_choice.locator("option")).to_have_text(["None", f"{laptop.tag} · eve-thinkpad"])
    asset_choice.select_option(label=f"{laptop.tag} · eve-thinkpad")
    page.get_by_label("Attachments").set_input_files(files=[{
        "name": "display.log", "mimeType": "text/plain", "buffer": b"hotplug: DP-1 disconnected\n"}])
    page.get_by_role("button", name="File ticket").click()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Ticket #\d+ filed\."))
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_contain_text("Docking station flickers")
    number = heading.inner_text().split(" ")[0]
    ticket_url = page.url
    expect(page.get_by_text("<b>not bold</b>")).to_be_visible()  # shown as typed, not as markup
    expect(page.get_by_role("link", name="display.log")).to_be_visible()

    # IT staff find it by searching for a word of its description.
    staff_context = browser.new_context(base_url=base_url)
    console.attach(staff_context)
    staff = staff_context.new_page()
    sign_in(staff, "tess")
    nav(staff).get_by_role("link", name="Tickets", exact=True).click()
    expect(staff.get_by_role("heading", level=1)).to_have_text("Tickets")
    staff.get_by_role("searchbox", name="Search").fill("external screen")
    staff.get_by_role("button", name="Filter").click()
    results = staff.get_by_role("table", name=re.compile("^Tickets"))
    expect(results.get_by_role("row")).to_have_count(2)  # header + the ticket
    results.get_by_role("link", name="Docking station flickers").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(f"{number} · Docking station flickers")
    asset_card = staff.get_by_role("region", name="Affected asset")
    expect(asset_card).to_contain_text(laptop.tag)
    expect(asset_card).to_contain_text("Eve Employee (eve)")
    expect(asset_card.get_by_role("link", name=f"Open {laptop.tag}")).to_be_visible()
    with staff.expect_download() as download:
        staff.get_by_role("link", name="display.log").click()
    assert download.value.suggested_filename == "display.log"

    # Choosing a canned response fills the reply at once (tickets.js), placeholders filled in.
    staff.get_by_label("Canned response").select_option(label="Try another port")
    expect(staff.get_by_role("textbox", name="Message")).to_have_value("Hello Eve, please try another port.")
    staff.get_by_role("textbox", name="Message").fill("Please try the other USB-C port and tell us if it helps.")
    staff.get_by_role("button", name="Send").click()
    expect(staff.get_by_role("status")).to_have_text("Reply sent.")
    staff.get_by_role("textbox", name="Message").fill("Known firmware bug in this dock model; few spares left.")
    staff.get_by_label("Internal note (IT staff only)").check()
    staff.get_by_role("button", name="Send").click()
    expect(staff.get_by_role("status")).to_have_text("Internal note added (IT staff only).")
    note = staff.locator(".ticket-note")
    expect(note).to_contain_text("Known firmware bug")
    expect(note).to_contain_text("Internal note · IT staff only")

    # The employee sees the public answer, and nothing of the note.
    page.goto(ticket_url)
    expect(page.get_by_text("Please try the other USB-C port")).to_be_visible()
    expect(page.get_by_text("Known firmware bug")).to_have_count(0)
    expect(page.get_by_text("Internal note")).to_have_count(0)
    expect(page.get_by_role("region", name="Affected asset")).to_contain_text("eve-thinkpad")

    # IT staff resolve it.
    staff.get_by_label("New status").select_option("resolved")
    staff.get_by_role("button", name="Change status").click()
    expect(staff.get_by_role("status")).to_have_text(f"{number} is now resolved.")
    staff_context.close()

    # The employee rates the resolution, once.
    page.reload()
    expect(page.get_by_text("Resolved", exact=True).first).to_be_visible()
    rating = page.get_by_role("region", name="Rate the help you got")
    rating.get_by_label("4 – well").check()
    rating.get_by_label("Comment (optional)").fill("Quick answer, thanks.")
    rating.get_by_role("button", name="Send rating").click()
    expect(page.get_by_role("status")).to_have_text("Thank you for your rating.")
    expect(page.get_by_role("region", name="Rating")).to_contain_text("4 out of 5")
    expect(page.get_by_role("region", name="Rate the help you got")).to_have_count(0)

    # The list shows it among the employee's tickets, resolved.
    page.goto("/tickets/?queue=all")
    row = page.get_by_role("table", name="Your tickets").get_by_role("row", name=re.compile("Docking station"))
    expect(row).to_contain_text("Resolved")
