"""The helpdesk through the browser routes: who may do what (a role x action matrix), filing without
JavaScript, bad input, escaping, internal notes, canned responses, bulk actions, query count, search."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from itops.core.audit import AuditEntry
from itops.core.database import utcnow
from itops.core.policy import Role
from itops.extensions import db
from itops.tickets import attachments, services
from itops.tickets.models import Attachment, CannedResponse, Category, Team, Ticket, TicketComment, TicketEvent
from tests.conftest import csrf_token, sign_in


def post(client, path, data=None, **kwargs):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, "/tickets/new")}, **kwargs)


def text_of(response) -> str:
    return response.get_data(as_text=True)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def people(make_user):
    return {
        "employee": make_user(Role.EMPLOYEE, "alice", display_name="Alice Asker", email="alice@example.org"),
        "other_employee": make_user(Role.EMPLOYEE, "bob", display_name="Bob Bystander", email="bob@example.org"),
        "hr": make_user(Role.HR, "hanna", display_name="Hanna HR", email="hanna@example.org"),
        "it_staff": make_user(Role.IT_STAFF, "tess", display_name="Tess Tech", email="tess@example.org"),
        "admin": make_user(Role.ADMIN, "ada", display_name="Ada Admin", email="ada@example.org"),
    }


@pytest.fixture
def browser_of(app, people):
    def build(role):
        client = app.test_client()
        client.user = people[role]
        sign_in(client, people[role])
        return client
    return build


def file_ticket(requester, *, by=None, title="Laptop does not start", body="Black screen after the logo.",
                impact="medium", urgency="medium", uploads=(), **fields):
    ticket = services.create_ticket(requester, title=title, body=body, category_id=fields.pop("category_id", None),
                                    impact=impact, urgency=urgency, by=by or requester, uploads=list(uploads), **fields)
    db.session.commit()
    return ticket


def upload(name="boot.log", data=b"kernel: panic at boot\n"):
    return services.Upload(io.BytesIO(data), name)


# --- the role x action matrix ---------------------------------------------------------------------

ROLES = ["employee", "other_employee", "hr", "it_staff", "admin"]


def _state(ticket_id):
    """Everything an action could write, to prove that a refused one wrote nothing."""
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    return (ticket.status, ticket.priority, ticket.assignee_id, ticket.team_id, ticket.merged_into_id, ticket.rating,
            count(TicketComment), count(TicketEvent), count(AuditEntry), count(Team), count(Ticket))


@pytest.fixture
def world(people):
    staff = people["it_staff"]
    team = services.save_team("Service desk", email=None, member_ids=[staff.id], by=staff)
    ticket = file_ticket(people["employee"], uploads=[upload()])
    duplicate = file_ticket(people["employee"], title="Laptop still dead")
    resolved = file_ticket(people["employee"], title="VPN drops")
    services.change_status(resolved, "resolved", by=staff)
    db.session.commit()
    return {"ticket": ticket, "duplicate": duplicate, "resolved": resolved, "team": team, "staff": staff,
            "attachment": db.session.scalar(select(Attachment).where(Attachment.ticket_id == ticket.id))}


ACTIONS = {
    # name: (method, path template, form data, expected per role in ROLES order)
    "view list": ("get", "/tickets/", None, [200, 200, 200, 200, 200]),
    "view ticket": ("get", "/tickets/{ticket}", None, [200, 404, 404, 200, 200]),
    "download attachment": ("get", "/tickets/{ticket}/attachments/{attachment}", None, [200, 404, 404, 200, 200]),
    "reply": ("post", "/tickets/{ticket}/reply", {"body": "Any news?"}, [302, 404, 404, 302, 302]),
    "internal note": ("post", "/tickets/{ticket}/reply", {"body": "Check the PSU.", "visibility": "internal"},
                      [403, 404, 404, 302, 302]),
    "assign": ("post", "/tickets/{ticket}/assign", {"assignee_id": "{staff}", "team_id": "{team}"},
               [403, 403, 403, 302, 302]),
    "change status": ("post", "/tickets/{ticket}/status", {"status": "pending"}, [403, 403, 403, 302, 302]),
    "set priority": ("post", "/tickets/{ticket}/priority", {"priority": "critical"}, [403, 403, 403, 302, 302]),
    "merge": ("post", "/tickets/{duplicate}/merge", {"into": "#{ticket}"}, [403, 403, 403, 302, 302]),
    "rate": ("post", "/tickets/{resolved}/rate", {"rating": "5", "comment": "quick"}, [302, 404, 404, 403, 403]),
    "close": ("post", "/tickets/{ticket}/close", {}, [302, 404, 404, 302, 302]),
    "settings pages": ("get", "/tickets/settings/teams", None, [403, 403, 403, 403, 200]),
    "create team": ("post", "/tickets/settings/teams/new", {"name": "Network", "active": "y"},
                    [403, 403, 403, 403, 302]),
    "bulk status": ("post", "/tickets/bulk/status", {"ticket_id": "{ticket}", "bulk-status": "open"},
                    [403, 403, 403, 302, 302]),
}


@pytest.mark.parametrize("role_index, role", list(enumerate(ROLES)))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_role_action_matrix(browser_of, world, action, role_index, role):
    method, path, data, expected = ACTIONS[action]
    ids = {"ticket": world["ticket"].id, "duplicate": world["duplicate"].id, "resolved": world["resolved"].id,
           "attachment": world["attachment"].id, "staff": world["staff"].id, "team": world["team"].id}
    path = path.format(**ids)
    client = browser_of(role)
    watched = world["resolved"].id if action == "rate" else world["duplicate"].id if action == "merge" \
        else world["ticket"].id
    before = _state(watched)
    if method == "get":
        response = client.get(path)
    else:
        response = post(client, path, {key: value.format(**ids) for key, value in data.items()})
    assert response.status_code == expected[role_index], (action, role, text_of(response)[:500])
    if response.status_code >= 400:
        assert _state(watched) == before, f"{action} refused for {role} but something was written"
    elif method == "post":
        assert _state(watched) != before, f"{action} by {role} answered {response.status_code} but wrote nothing"


def test_a_refused_post_without_csrf_token_writes_nothing(browser_of, world):
    client = browser_of("it_staff")
    before = _state(world["ticket"].id)
    response = client.post(f"/tickets/{world['ticket'].id}/reply", data={"body": "no token"})
    assert response.status_code == 400 and _state(world["ticket"].id) == before


# --- filing without JavaScript ----------------------------------------------------------------------

def new_ticket_form(**fields):
    data = {"title": "Screen flickers", "body": "Since this morning.", "category_id": "", "impact": "low",
            "urgency": "high"}
    data.update(fields)
    return data


def test_employee_files_a_ticket_with_an_attachment_and_their_asset(browser_of, people, make_asset):
    laptop = make_asset("laptop", name="alice-laptop", holder=people["employee"])
    hardware = services.save_category("Hardware", default_team_id=None, default_assignee_id=people["it_staff"].id,
                                      by=people["admin"])
    db.session.commit()
    alice = browser_of("employee")
    form = alice.get("/tickets/new")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in text_of(form)
    assert "alice-laptop" in text_of(form) and "Hardware" in text_of(form)
    response = post(alice, "/tickets/new", new_ticket_form(
        category_id=str(hardware.id), asset_id=str(laptop.id),
        attachments=[(io.BytesIO(b"flicker at 60 Hz\n"), "notes.txt"), (io.BytesIO(b"%PDF-1.4 fake"), "scan.pdf")]),
        content_type="multipart/form-data")
    assert response.status_code == 302, text_of(response)
    ticket = db.session.scalar(select(Ticket))
    assert response.headers["Location"].endswith(f"/tickets/{ticket.id}")
    assert (ticket.requester_id, ticket.asset_id, ticket.category_id) == (people["employee"].id, laptop.id, hardware.id)
    assert ticket.priority == "medium" and ticket.assignee_id == people["it_staff"].id  # low x high; category default
    files = db.session.scalars(select(Attachment).order_by(Attachment.id)).all()
    assert [(f.filename, f.content_type) for f in files] == [("notes.txt", "text/plain"),
                                                             ("scan.pdf", "application/pdf")]
    page = text_of(alice.get(response.headers["Location"]))
    assert "Screen flickers" in page and laptop.tag in page and "notes.txt" in page and "scan.pdf" in page


def test_employee_cannot_link_someone_elses_asset_or_set_a_priority(browser_of, people, make_asset):
    bobs = make_asset("laptop", name="bob-laptop", holder=people["other_employee"])
    alice = browser_of("employee")
    response = post(alice, "/tickets/new", new_ticket_form(asset_id=str(bobs.id)))
    assert response.status_code == 422 and "Not a valid choice" in text_of(response)
    assert count(Ticket) == 0
    # A priority field is not part of the employee's form: posting one changes nothing.
    response = post(alice, "/tickets/new", new_ticket_form(impact="low", urgency="low", priority="critical"))
    assert response.status_code == 302 and db.session.scalar(select(Ticket.priority)) == "low"


def test_it_staff_file_on_behalf_of_someone_with_a_priority_and_any_asset(browser_of, people, make_asset):
    switch = make_asset("switch", name="core-sw", management_address="10.0.0.1")
    tess = browser_of("it_staff")
    response = post(tess, "/tickets/new", new_ticket_form(requester="alice", priority="critical", asset_tag=switch.tag))
    assert response.status_code == 302, text_of(response)
    ticket = db.session.scalar(select(Ticket))
    assert (ticket.requester_id, ticket.priority, ticket.asset_id) == (people["employee"].id, "critical", switch.id)
    response = post(tess, "/tickets/new", new_ticket_form(requester="nobody-here"))
    assert response.status_code == 422 and "No active person has this username" in text_of(response)
    response = post(tess, "/tickets/new", new_ticket_form(asset_tag="IT-999999"))
    assert response.status_code == 422 and "No asset has this tag" in text_of(response)
    assert count(Ticket) == 1


@pytest.mark.parametrize("fields, message", [
    ({"title": ""}, "Give the ticket a title."),
    ({"title": "   "}, "Give the ticket a title."),
    ({"title": "x" * 201}, "Field cannot be longer than 200 characters."),
    ({"body": ""}, "Describe the problem."),
    ({"category_id": "9999"}, "Not a valid choice"),
    ({"category_id": "printers"}, "Invalid Choice: could not coerce"),
    ({"impact": "catastrophic"}, "Not a valid choice"),
    ({"urgency": ""}, "Choose the urgency."),
])
def test_bad_input_is_a_form_error_and_writes_nothing(browser_of, people, fields, message):
    audited = count(AuditEntry)
    response = post(browser_of("employee"), "/tickets/new", new_ticket_form(**fields))
    assert response.status_code == 422
    assert message in text_of(response)
    assert 'aria-invalid="true"' in text_of(response)
    assert count(Ticket) == 0 and count(AuditEntry) == audited


def test_an_inactive_category_is_not_offered_or_accepted(browser_of, people):
    old = services.save_category("Fax machines", default_team_id=None, default_assignee_id=None, active=False,
                                 by=people["admin"])
    db.session.commit()
    alice = browser_of("employee")
    assert "Fax machines" not in text_of(alice.get("/tickets/new"))
    assert post(alice, "/tickets/new", new_ticket_form(category_id=str(old.id))).status_code == 422
    assert count(Ticket) == 0


def test_a_forbidden_attachment_keeps_what_was_typed_and_leaves_no_file(browser_of, app):
    storage = attachments.storage_dir()
    before = set(storage.iterdir())
    response = post(browser_of("employee"), "/tickets/new", new_ticket_form(
        title="Keep this title", attachments=[(io.BytesIO(b"fine\n"), "ok.txt"),
                                              (io.BytesIO(b"<script>alert(1)</script>"), "photo.png")]),
        content_type="multipart/form-data")
    page = text_of(response)
    assert response.status_code == 422 and "photo.png is not an allowed file type" in page
    assert 'value="Keep this title"' in page
    assert count(Ticket) == 0 and count(Attachment) == 0
    assert set(storage.iterdir()) == before  # the first, accepted file went with the rollback


def test_html_and_script_are_stored_as_text_and_shown_escaped(browser_of, people):
    alice, tess = browser_of("employee"), browser_of("it_staff")
    evil_title, evil_body = "<script>alert('t')</script>", '<img src=x onerror="alert(1)">'
    response = post(alice, "/tickets/new", new_ticket_form(
        title=evil_title, body=evil_body,
        attachments=[(io.BytesIO(b"log\n"), '<svg onload=alert(2)>.txt')]), content_type="multipart/form-data")
    assert response.status_code == 302, text_of(response)
    ticket = db.session.scalar(select(Ticket))
    assert ticket.title == evil_title and ticket.body == evil_body
    post(tess, f"/tickets/{ticket.id}/reply", {"body": "<b>bold</b><script>alert(3)</script>"})
    for client in (alice, tess):
        page = text_of(client.get(f"/tickets/{ticket.id}"))
        for raw in (evil_title, evil_body, "<svg onload=alert(2)>", "<b>bold</b>", "<script>alert(3)"):
            assert raw not in page
        assert "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
        assert "&lt;svg onload=alert(2)&gt;.txt" in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    listing = text_of(tess.get("/tickets/"))
    assert evil_title not in listing and "&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;" in listing


# --- the ticket page ----------------------------------------------------------------------------

def test_internal_notes_never_reach_the_requesters_page(browser_of, people):
    ticket = file_ticket(people["employee"])
    tess, alice = browser_of("it_staff"), browser_of("employee")
    assert post(tess, f"/tickets/{ticket.id}/reply", {"body": "Public: please restart.", "visibility": "public"}
                ).status_code == 302
    response = post(tess, f"/tickets/{ticket.id}/reply", {
        "body": "Internal: user broke it again", "visibility": "internal",
        "attachments": [(io.BytesIO(b"secret diagnostics\n"), "diag.txt")]}, content_type="multipart/form-data")
    assert response.status_code == 302
    note_file = db.session.scalar(select(Attachment).where(Attachment.filename == "diag.txt"))
    staff_page, requester_page = text_of(tess.get(f"/tickets/{ticket.id}")), text_of(alice.get(f"/tickets/{ticket.id}"))
    assert "Internal: user broke it again" in staff_page and "Internal note · IT staff only" in staff_page
    assert "diag.txt" in staff_page
    assert "Public: please restart." in requester_page
    assert "user broke it again" not in requester_page and "diag.txt" not in requester_page
    assert "Internal note" not in requester_page and "Internal note (IT staff only)" not in requester_page
    assert alice.get(f"/tickets/{ticket.id}/attachments/{note_file.id}").status_code == 404
    # Nor is the internal note found by the requester's search.
    assert "Laptop does not start" not in text_of(alice.get("/tickets/?q=broke"))
    assert "Laptop does not start" in text_of(tess.get("/tickets/?q=broke"))


def test_ticket_page_shows_the_linked_asset_sla_and_pause(browser_of, people, make_asset):
    laptop = make_asset("laptop", name="alice-laptop", holder=people["employee"], serial="SN-77")
    ticket = file_ticket(people["employee"], asset_id=laptop.id)
    tess, alice = browser_of("it_staff"), browser_of("employee")
    page = text_of(tess.get(f"/tickets/{ticket.id}"))
    for text in (laptop.tag, "alice-laptop", "Laptop", "Deployed", "Alice Asker (alice)", "SN-77",
                 f'href="/assets/{laptop.id}"', "First response", "due "):
        assert text in page, text
    assert f'href="/assets/{laptop.id}"' not in text_of(alice.get(f"/tickets/{ticket.id}"))
    post(tess, f"/tickets/{ticket.id}/status", {"status": "pending"})
    page = text_of(alice.get(f"/tickets/{ticket.id}"))
    assert "Paused (pending on requester)" in page and "Pending on requester" in page


def test_breaching_tickets_are_flagged_in_words_on_the_list_and_the_page(browser_of, people):
    late = file_ticket(people["employee"], title="Late one")
    file_ticket(people["employee"], title="On time")
    late.resolution_breached = True
    db.session.commit()
    tess = browser_of("it_staff")
    breaching = text_of(tess.get("/tickets/?queue=breaching"))
    assert "Late one" in breaching and "On time" not in breaching and "SLA breached" in breaching
    assert "SLA breached" in text_of(tess.get(f"/tickets/{late.id}"))


def test_canned_response_fills_the_reply_with_placeholders(browser_of, people):
    ticket = file_ticket(people["employee"])
    canned = services.save_canned_response(
        "Restart", "Hello {requester_first_name}, about {ticket_number} ({ticket_title}): please restart. "
                   "{agent_name} {not_a_placeholder}", by=people["admin"])
    db.session.commit()
    tess = browser_of("it_staff")
    page = text_of(tess.get(f"/tickets/{ticket.id}?canned={canned.id}"))
    filled = (f"Hello Alice, about #{ticket.id} (Laptop does not start): please restart. Tess Tech "
              "{not_a_placeholder}")
    textarea = re.search(r'<textarea[^>]*name="body"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    assert textarea.strip() == filled
    assert f'data-text="{filled}"' in page  # what tickets.js puts in the reply when one is chosen
    # A requester's page has no picker and ignores the parameter.
    alice_page = text_of(browser_of("employee").get(f"/tickets/{ticket.id}?canned={canned.id}"))
    assert "please restart" not in alice_page and "Canned response" not in alice_page


def test_reply_to_a_closed_ticket_is_refused_and_a_reply_within_the_window_reopens(browser_of, people, app):
    closed = file_ticket(people["employee"], title="Old")
    resolved = file_ticket(people["employee"], title="Fixed?")
    services.change_status(closed, "closed", by=people["employee"])
    services.change_status(resolved, "resolved", by=people["it_staff"])
    db.session.commit()
    alice = browser_of("employee")
    page = text_of(alice.get(f"/tickets/{closed.id}"))
    assert "This ticket is closed and takes no more replies" in page and 'name="body"' not in page
    before = count(TicketComment)
    response = post(alice, f"/tickets/{closed.id}/reply", {"body": "hello?"})
    assert response.status_code == 409 and "is closed; file a new ticket instead" in text_of(response)
    assert count(TicketComment) == before
    assert f"within {app.config['ITOPS_TICKET_REOPEN_DAYS']} days" in text_of(alice.get(f"/tickets/{resolved.id}"))
    response = post(alice, f"/tickets/{resolved.id}/reply", {"body": "Still broken."})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Ticket, resolved.id).status == "open"
    assert "is open again" in text_of(alice.get(response.headers["Location"]))


def test_reply_outside_the_window_is_refused(browser_of, people):
    ticket = file_ticket(people["employee"])
    services.change_status(ticket, "resolved", by=people["it_staff"])
    ticket.resolved_at = utcnow() - timedelta(days=30)
    db.session.commit()
    response = post(browser_of("employee"), f"/tickets/{ticket.id}/reply", {"body": "again"})
    assert response.status_code == 409 and "file a new ticket instead" in text_of(response)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "resolved"


def test_empty_reply_shows_the_page_with_the_error(browser_of, people):
    ticket = file_ticket(people["employee"])
    response = post(browser_of("employee"), f"/tickets/{ticket.id}/reply", {"body": "  "})
    assert response.status_code == 422 and "Write a reply." in text_of(response)
    assert count(TicketComment) == 0


def test_requester_rates_once_after_resolution(browser_of, people):
    ticket = file_ticket(people["employee"])
    alice = browser_of("employee")
    assert "Rate the help you got" not in text_of(alice.get(f"/tickets/{ticket.id}"))
    assert post(alice, f"/tickets/{ticket.id}/rate", {"rating": "4"}).status_code == 409  # not resolved yet
    services.change_status(ticket, "resolved", by=people["it_staff"])
    db.session.commit()
    assert "Rate the help you got" in text_of(alice.get(f"/tickets/{ticket.id}"))
    assert post(alice, f"/tickets/{ticket.id}/rate", {"rating": "9"}).status_code == 422
    assert post(alice, f"/tickets/{ticket.id}/rate", {}).status_code == 422
    response = post(alice, f"/tickets/{ticket.id}/rate", {"rating": "4", "comment": "Fast <b>help</b>"})
    assert response.status_code == 302
    page = text_of(alice.get(f"/tickets/{ticket.id}"))
    assert "4 out of 5" in page and "Fast &lt;b&gt;help&lt;/b&gt;" in page and "Rate the help you got" not in page
    response = post(alice, f"/tickets/{ticket.id}/rate", {"rating": "1"})
    assert response.status_code == 409 and "already rated" in text_of(response)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).rating == 4


def test_staff_assign_change_status_priority_and_merge(browser_of, people, world):
    tess, ticket, duplicate = browser_of("it_staff"), world["ticket"], world["duplicate"]
    response = post(tess, f"/tickets/{ticket.id}/assign", {"assignee_id": str(people["it_staff"].id),
                                                            "team_id": str(world["team"].id)})
    assert response.status_code == 302
    assert "assigned to Tess Tech in Service desk" in text_of(tess.get(response.headers["Location"]))
    response = post(tess, f"/tickets/{ticket.id}/assign", {"assignee_id": str(people["employee"].id)})
    assert response.status_code == 422  # not offered: only IT staff can be assignees
    response = post(tess, f"/tickets/{ticket.id}/status", {"status": "new"})
    assert response.status_code == 409 and "cannot go from new to new" in text_of(response)
    assert post(tess, f"/tickets/{ticket.id}/priority", {"priority": "urgent"}).status_code == 422
    assert post(tess, f"/tickets/{ticket.id}/priority", {"priority": "high"}).status_code == 302
    assert post(tess, f"/tickets/{duplicate.id}/merge", {"into": "abc"}).status_code == 422
    assert post(tess, f"/tickets/{duplicate.id}/merge", {"into": str(duplicate.id)}).status_code == 422
    assert post(tess, f"/tickets/{duplicate.id}/merge", {"into": "999999"}).status_code == 404
    response = post(tess, f"/tickets/{duplicate.id}/merge", {"into": f"#{ticket.id}"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/tickets/{ticket.id}")
    db.session.expire_all()
    merged = db.session.get(Ticket, duplicate.id)
    assert merged.status == "closed" and merged.merged_into_id == ticket.id
    assert db.session.get(Ticket, ticket.id).priority == "high"
    assert "Laptop still dead" in text_of(tess.get(f"/tickets/{ticket.id}"))


def test_attachment_download_headers(browser_of, world):
    response = browser_of("employee").get(f"/tickets/{world['ticket'].id}/attachments/{world['attachment'].id}")
    assert response.status_code == 200 and response.data == b"kernel: panic at boot\n"
    assert response.headers["Content-Disposition"] == "attachment; filename=boot.log"
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.headers["Cache-Control"] == "private, no-store"
    # The attachment id belongs to one ticket: asked for under another ticket it is not there.
    other = file_ticket(world["ticket"].requester, title="another")
    assert browser_of("employee").get(f"/tickets/{other.id}/attachments/{world['attachment'].id}").status_code == 404


# --- the list ----------------------------------------------------------------------------------------

def test_employees_see_only_their_own_tickets(browser_of, people):
    file_ticket(people["employee"], title="Alice's printer")
    file_ticket(people["other_employee"], title="Bob's monitor")
    page = text_of(browser_of("employee").get("/tickets/"))
    assert "My tickets" in page and "Alice&#39;s printer" in page and "Bob&#39;s monitor" not in page
    assert "Queues" not in page and 'name="ticket_id"' not in page
    # Filters in the query string cannot widen it.
    page = text_of(browser_of("employee").get("/tickets/?queue=all&requester=bob"))
    assert "Bob&#39;s monitor" not in page


def test_staff_queues(browser_of, people, world):
    tess = browser_of("it_staff")
    unassigned = file_ticket(people["employee"], title="Nobody has me")
    services.assign(world["ticket"], assignee_id=people["it_staff"].id, team_id=None, by=people["it_staff"])
    services.assign(world["duplicate"], assignee_id=None, team_id=world["team"].id, by=people["it_staff"])
    db.session.commit()
    mine = text_of(tess.get("/tickets/?queue=mine"))
    assert "Laptop does not start" in mine and "Nobody has me" not in mine
    team = text_of(tess.get("/tickets/?queue=team"))
    assert "Laptop still dead" in team and "Nobody has me" not in team
    assert "Nobody has me" in text_of(tess.get("/tickets/?queue=unassigned"))
    assert "VPN drops" not in text_of(tess.get("/tickets/?queue=open"))
    assert "VPN drops" in text_of(tess.get("/tickets/?queue=all"))
    assert tess.get("/tickets/?queue=everything").status_code == 422
    assert unassigned.id


def test_staff_filters(browser_of, people, world, make_asset):
    tess = browser_of("it_staff")
    laptop = make_asset("laptop", holder=people["other_employee"])
    file_ticket(people["other_employee"], title="Bob with asset", asset_id=laptop.id, impact="high", urgency="high")
    page = text_of(tess.get("/tickets/?requester=bob"))
    assert "Bob with asset" in page and "Laptop does not start" not in page
    page = text_of(tess.get(f"/tickets/?asset={laptop.tag}"))
    assert "Bob with asset" in page and "Laptop does not start" not in page
    page = text_of(tess.get("/tickets/?priority=critical&sort=priority"))
    assert "Bob with asset" in page and "Laptop does not start" not in page
    today = utcnow().date().isoformat()
    assert "Bob with asset" in text_of(tess.get(f"/tickets/?created_from={today}&created_to={today}"))
    assert "Bob with asset" not in text_of(tess.get("/tickets/?created_to=2000-01-01"))
    for bad in ("created_from=yesterday", "category_id=abc", "sort=random", "status=lost", "asset=NOPE-1"):
        assert tess.get(f"/tickets/?{bad}").status_code == 422, bad


def test_keyset_pager(browser_of, people):
    for i in range(30):
        file_ticket(people["employee"], title=f"Ticket number {i:02d}")
    tess = browser_of("it_staff")
    first = text_of(tess.get("/tickets/?sort=created"))
    assert "Ticket number 00" in first and "Ticket number 24" in first and "Ticket number 25" not in first
    cursor = re.search(r'cursor=([\w-]+)', first).group(1)
    second = text_of(tess.get(f"/tickets/?sort=created&cursor={cursor}"))
    assert "Ticket number 25" in second and "Ticket number 29" in second and "Ticket number 24" not in second
    assert tess.get("/tickets/?cursor=garbage!").status_code == 422


def _statements_for(client, path):
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    db.session.remove()
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = client.get(path)
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert response.status_code == 200
    return statements


@pytest.mark.parametrize("path", ["/tickets/", "/tickets/?queue=team", "/tickets/?queue=all&q=laptop&sort=priority",
                                  "/tickets/?queue=mine&status=new&category_id=1&team_id=1&assignee=tess"])
def test_list_page_costs_at_most_three_queries(browser_of, people, world, path):
    hardware = services.save_category("Hardware", default_team_id=world["team"].id,
                                      default_assignee_id=people["it_staff"].id, by=people["admin"])
    db.session.commit()
    for i in range(8):
        file_ticket(people["employee"] if i % 2 else people["other_employee"], category_id=hardware.id,
                    title=f"laptop {i}")
    tess, alice = browser_of("it_staff"), browser_of("employee")
    for client in (tess, alice):
        statements = _statements_for(client, path)
        assert len(statements) <= 3, statements


def test_search_finds_words_in_titles_bodies_and_comments(browser_of, people):
    one = file_ticket(people["employee"], title="Printer jams", body="The tray is stuck")
    two = file_ticket(people["employee"], title="Mail", body="Outlook crashes")
    services.add_comment(two, people["it_staff"], "Reinstalled the defender plugin")
    db.session.commit()
    tess = browser_of("it_staff")
    assert "Printer jams" in text_of(tess.get("/tickets/?queue=all&q=tray"))
    page = text_of(tess.get("/tickets/?queue=all&q=defender"))
    assert "Mail" in page and "Printer jams" not in page
    assert "Printer jams" in text_of(tess.get("/tickets/?queue=all&q=jam"))  # the last word is a prefix
    assert one.id and two.id


AWKWARD = ['"', "'", '""', "printer\"", "*", "jam*", "NEAR(", "NEAR(a b", "a OR b", "OR", "AND", "NOT", "-", "-jam",
           ":", "title:jam", "^", "^jam", "(", ")", "((a)", "a) OR (b", "'; DROP TABLE tickets; --",
           "1' OR '1'='1", "\\", "%", "_", "{}", "\x00", "ü ß 日本", "🙂", "a & b | !c", "<->", "x" * 400,
           "word " * 99]


@pytest.mark.parametrize("q", AWKWARD)
def test_search_with_awkward_input_never_fails(browser_of, people, q):
    file_ticket(people["employee"], title="Printer jams", body="NEAR the window OR the door")
    for client in (browser_of("it_staff"), browser_of("employee")):
        response = client.get("/tickets/", query_string={"queue": "all", "q": q})
        assert response.status_code == 200, (q, text_of(response)[:300])


def test_search_longer_than_allowed_is_a_clear_422(browser_of):
    response = browser_of("it_staff").get("/tickets/", query_string={"q": "x" * 501})
    assert response.status_code == 422 and "500 characters" in text_of(response)


# --- bulk actions ------------------------------------------------------------------------------------

def test_bulk_assign_and_bulk_status(browser_of, people, world):
    tess = browser_of("it_staff")
    ids = [str(world["ticket"].id), str(world["duplicate"].id)]
    response = post(tess, "/tickets/bulk/assign?queue=all", {
        "ticket_id": ids, "bulk-assignee_id": str(people["it_staff"].id), "bulk-team_id": str(world["team"].id)})
    assert response.status_code == 302 and response.headers["Location"].endswith("/tickets/?queue=all")
    assert "2 tickets assigned." in text_of(tess.get(response.headers["Location"]))
    db.session.expire_all()
    tickets = [db.session.get(Ticket, int(i)) for i in ids]
    assert {(t.assignee_id, t.team_id) for t in tickets} == {(people["it_staff"].id, world["team"].id)}
    response = post(tess, "/tickets/bulk/status", {"ticket_id": ids, "bulk-status": "resolved"})
    assert response.status_code == 302
    db.session.expire_all()
    assert {db.session.get(Ticket, int(i)).status for i in ids} == {"resolved"}


def test_bulk_status_is_all_or_nothing(browser_of, people, world):
    tess = browser_of("it_staff")
    services.change_status(world["duplicate"], "closed", by=people["it_staff"])
    db.session.commit()
    before = _state(world["ticket"].id)
    response = post(tess, "/tickets/bulk/status", {"ticket_id": [str(world["ticket"].id), str(world["duplicate"].id)],
                                                   "bulk-status": "pending"})
    assert response.status_code == 409 and "cannot go from closed" in text_of(response)
    assert _state(world["ticket"].id) == before
    for bad in ({"bulk-status": "open"}, {"ticket_id": "x", "bulk-status": "open"},
                {"ticket_id": str(world["ticket"].id), "bulk-status": "gone"}):
        assert post(tess, "/tickets/bulk/status", bad).status_code == 422, bad
    assert post(tess, "/tickets/bulk/status", {"ticket_id": "999999", "bulk-status": "open"}).status_code == 404


def test_list_offers_bulk_forms_and_checkboxes_to_staff(browser_of, world):
    page = text_of(browser_of("it_staff").get("/tickets/?queue=all"))
    assert f'name="ticket_id" value="{world["ticket"].id}"' in page
    assert 'formaction="/tickets/bulk/status?queue=all"' in page and "Assign selected" in page


# --- administrators' settings -------------------------------------------------------------------------

def test_admin_manages_teams_categories_and_canned_responses(browser_of, people):
    ada = browser_of("admin")
    response = post(ada, "/tickets/settings/teams/new", {"name": "Network", "email": "net@example.org",
                                                          "member_ids": [str(people["it_staff"].id)], "active": "y"})
    assert response.status_code == 302
    team = db.session.scalar(select(Team))
    assert [m.username for m in team.members] == ["tess"] and team.email == "net@example.org"
    assert "Tess Tech" in text_of(ada.get("/tickets/settings/teams"))
    # Only IT staff can be members: an employee's id is not among the choices.
    response = post(ada, "/tickets/settings/teams/new", {"name": "Bad", "member_ids": [str(people["employee"].id)]})
    assert response.status_code == 422 and count(Team) == 1
    assert post(ada, "/tickets/settings/teams/new", {"name": "Network"}).status_code == 409
    assert post(ada, "/tickets/settings/teams/new", {"name": "X", "email": "not-an-email"}).status_code == 422

    response = post(ada, "/tickets/settings/categories/new", {
        "name": "Network access", "default_team_id": str(team.id), "default_assignee_id": str(people["it_staff"].id),
        "active": "y"})
    assert response.status_code == 302
    category = db.session.scalar(select(Category))
    assert (category.default_team_id, category.default_assignee_id) == (team.id, people["it_staff"].id)
    response = post(ada, f"/tickets/settings/categories/{category.id}",
                    {"name": "Network & VPN", "default_team_id": str(team.id), "active": "y"})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Category, category.id).name == "Network & VPN"
    assert post(ada, f"/tickets/settings/categories/{category.id}/active").status_code == 302
    db.session.expire_all()
    assert db.session.get(Category, category.id).active is False
    assert "Network &amp; VPN" not in text_of(browser_of("employee").get("/tickets/new"))

    page = text_of(ada.get("/tickets/settings/canned/new"))
    for name in services.PLACEHOLDERS:
        assert "{" + name + "}" in page
    response = post(ada, "/tickets/settings/canned/new", {"title": "Hi", "body": "Hello {requester_name}",
                                                          "active": "y"})
    assert response.status_code == 302
    assert post(ada, "/tickets/settings/canned/new", {"title": "Empty", "body": ""}).status_code == 422
    canned = db.session.scalar(select(CannedResponse))
    assert ada.get(f"/tickets/settings/canned/{canned.id}").status_code == 200
    assert ada.get("/tickets/settings/canned/99999").status_code == 404
    assert post(ada, f"/tickets/settings/canned/{canned.id}/active").status_code == 302
    db.session.expire_all()
    assert db.session.get(CannedResponse, canned.id).active is False


# --- numbers out of range are bad input, not database errors -------------------------------------------

BIG = "99999999999999999999"


@pytest.mark.parametrize("path, expected", [
    (f"/tickets/{BIG}", 404), (f"/tickets/1/attachments/{BIG}", 404), (f"/tickets/settings/teams/{BIG}", 404),
    (f"/tickets/?category_id={BIG}", 422), (f"/tickets/?team_id={BIG}", 422), (f"/tickets/?asset={BIG}", 200),
])
def test_huge_ids_in_paths_and_filters(browser_of, path, expected):
    assert browser_of("admin").get(path).status_code == expected


def test_huge_ids_in_forms(browser_of, world):
    tess = browser_of("it_staff")
    assert post(tess, "/tickets/bulk/status", {"ticket_id": BIG, "bulk-status": "open"}).status_code == 422
    assert post(tess, f"/tickets/{world['duplicate'].id}/merge", {"into": BIG}).status_code == 422
    assert post(tess, f"/tickets/{world['ticket'].id}/assign", {"assignee_id": BIG}).status_code == 422
    assert post(tess, "/tickets/new", new_ticket_form(category_id=BIG)).status_code == 422


def test_the_asset_page_links_to_the_assets_tickets(client_as, make_user, make_asset):
    from itops.tickets import services as ticket_services
    eve = make_user(Role.EMPLOYEE)
    laptop = make_asset("laptop", name="eve-laptop", holder=eve)
    ticket_services.create_ticket(eve, title="Hinge broken", body="it wobbles", category_id=None, impact="low",
                                  urgency="low", asset_id=laptop.id, by=eve)
    ticket_services.create_ticket(eve, title="Unrelated", body="printer", category_id=None, impact="low",
                                  urgency="low", by=eve)
    db.session.commit()
    it = client_as(Role.IT_STAFF)
    page = it.get(f"/assets/{laptop.id}").get_data(as_text=True)
    link = f"/tickets/?queue=all&amp;asset={laptop.tag}"
    assert link in page
    listing = it.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "Hinge broken" in listing and "Unrelated" not in listing


def test_list_rows_escape_what_people_typed_and_nothing_else(client, make_user):
    from itops.tickets import services as ticket_services

    tech = make_user("it_staff", display_name="Tess <b>Tech</b>")
    requester = make_user("employee", display_name="Eve & Co")
    team = ticket_services.save_team("Desk <i>one</i>", email=None, member_ids=[tech.id], by=tech)
    ticket = ticket_services.create_ticket(requester, title="<script>alert(1)</script> printer", body="x",
                                           category_id=None, impact="low", urgency="low", by=requester)
    ticket_services.assign(ticket, assignee_id=tech.id, team_id=team.id, by=tech)
    db.session.commit()
    sign_in(client, tech)
    page = client.get("/tickets/?queue=all").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; printer</a>" in page and "<script>alert" not in page
    assert "<td>Eve &amp; Co</td>" in page
    assert ('<td>Tess &lt;b&gt;Tech&lt;/b&gt;<br><span class="small text-body-secondary">Desk &lt;i&gt;one&lt;/i&gt;'
            '</span></td>') in page
    assert "&lt;td&gt;" not in page and "&lt;br&gt;" not in page


def test_list_rows_unpack_the_columns_the_list_query_selects():
    from itops.tickets import display, queries

    query = queries.ticket_query(queries.TicketFilters(queue="all"), rows=True)
    assert tuple(query.selected_columns.keys()) == display.ROW_FIELDS
