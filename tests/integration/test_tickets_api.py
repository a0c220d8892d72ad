"""/api/v1/tickets with personal tokens: create, read, list (filters, search, cursor), update, comments,
attachments, rating, merge; each role's abilities and refusals; bad input; the OpenAPI document."""
import io
from datetime import datetime, timedelta

import pytest
from openapi_spec_validator import validate
from sqlalchemy import func, select

from itops.core.audit import AuditEntry
from itops.core.database import utcnow
from itops.core.policy import Role
from itops.extensions import db
from itops.tickets import attachments as attachment_storage
from itops.tickets import services
from itops.tickets.models import Attachment, Ticket, TicketComment

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.fixture
def business_hours(app):
    saved = {key: app.config[key] for key in ("ITOPS_TIMEZONE", "ITOPS_BUSINESS_DAYS", "ITOPS_BUSINESS_HOURS")}
    app.config.update(ITOPS_TIMEZONE="UTC", ITOPS_BUSINESS_DAYS="mon-fri", ITOPS_BUSINESS_HOURS="09:00-17:00")
    yield
    app.config.update(saved)


@pytest.fixture
def eve(api_as):
    return api_as(Role.EMPLOYEE, "eve", display_name="Eve Employee", email="eve@example.org")


@pytest.fixture
def otto(api_as):
    return api_as(Role.EMPLOYEE, "otto", display_name="Otto Other", email="otto@example.org")


@pytest.fixture
def tess(api_as):
    return api_as(Role.IT_STAFF, "tess", display_name="Tess Tech", email="tess@example.org")


def file(client, **fields):
    body = {"title": "Printer on 2nd floor jams", "body": "Every third page jams."}
    body.update(fields)
    response = client.post("/api/v1/tickets", json=body)
    assert response.status_code == 201, response.json
    return response.json


def ticket_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Ticket))


def upload(client, ticket_id, content, name, **form):
    data = {"file": (io.BytesIO(content), name), **form}
    return client.post(f"/api/v1/tickets/{ticket_id}/attachments", data=data, content_type="multipart/form-data")


@pytest.fixture
def new_files():
    """new_files() -> the attachment files stored since the test began (the directory outlives tests)."""
    before = {p.name for p in attachment_storage.storage_dir().iterdir()}
    return lambda: sorted(p.name for p in attachment_storage.storage_dir().iterdir() if p.name not in before)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def names(response, field: str) -> bool:
    """Whether a 422 problem names `field`: schema errors are grouped by location, service errors are not."""
    errors = response.json.get("errors") or {}
    return field in errors or any(isinstance(v, dict) and field in v for v in errors.values())


# --- create and read ---------------------------------------------------------------------------

def test_employee_files_and_reads_a_ticket_with_sla_fields(eve, business_hours):
    client, user = eve
    created = file(client, impact="high", urgency="medium", title="VPN <b>drops</b>")
    assert created["priority"] == "high" and created["status"] == "new" and created["source"] == "api"
    assert created["title"] == "VPN <b>drops</b>"  # stored as text, as typed
    assert created["requester"] == {"id": user.id, "username": "eve", "display_name": "Eve Employee"}
    assert created["number"] == f"#{created['id']}"
    assert created["asset"] is None and created["asset_health"] is None
    assert created["paused"] is False and created["breached"] is False
    assert parse(created["resolution_due"]) > parse(created["first_response_due"]) > parse(created["created_at"])
    assert created["allowed_next_statuses"] == ["closed"]
    read = client.get(f"/api/v1/tickets/{created['id']}")
    assert read.status_code == 200
    assert read.json["body"] == "Every third page jams." and read.json["resolution_due"] == created["resolution_due"]
    ticket = db.session.get(Ticket, created["id"])
    assert ticket.source == "api" and ticket.requester_id == user.id and ticket.impact == "high"


def test_linked_asset_is_summarised_and_only_the_requesters_own_can_be_linked(eve, otto, tess, make_asset):
    client, user = eve
    laptop = make_asset("laptop", name="Eve's ThinkPad", holder=user)
    others = make_asset("laptop", name="Otto's laptop", holder=otto[1])
    created = file(client, asset_id=laptop.id)
    assert created["asset"] == {"id": laptop.id, "tag": laptop.tag, "name": "Eve's ThinkPad", "kind": "laptop",
                                "status": "deployed", "holder": "eve"}
    assert created["asset_health"] is None
    staff_view = tess[0].get(f"/api/v1/tickets/{created['id']}").json
    assert staff_view["asset"]["holder"] == "eve" and staff_view["asset_id"] == laptop.id
    refused = client.post("/api/v1/tickets", json={"title": "t", "body": "b", "asset_id": others.id})
    assert refused.status_code == 422 and names(refused, "asset_id")
    assert ticket_count() == 1
    # IT staff may link any asset; the requester then sees the asset but not someone else's username.
    linked = file(tess[0], requester="eve", asset_id=others.id)
    assert linked["asset"]["holder"] == "otto"
    assert client.get(f"/api/v1/tickets/{linked['id']}").json["asset"] == {
        "id": others.id, "tag": others.tag, "name": "Otto's laptop", "kind": "laptop", "status": "deployed",
        "holder": None}


def test_staff_file_for_someone_else_with_a_priority_and_employees_cannot(eve, tess):
    staff, _ = tess
    client, user = eve
    created = file(staff, requester="eve", priority="critical", impact="low", urgency="low")
    assert created["requester"]["username"] == "eve" and created["priority"] == "critical"
    assert client.get(f"/api/v1/tickets/{created['id']}").status_code == 200  # it is hers
    for extra in ({"priority": "critical"}, {"requester": "tess"}, {"requester": "nobody-here"}):
        refused = client.post("/api/v1/tickets", json={"title": "t", "body": "b", **extra})
        assert refused.status_code == 403, extra
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert next(iter(extra)) in refused.json["detail"] and "IT staff" in refused.json["detail"]
    unknown = staff.post("/api/v1/tickets", json={"title": "t", "body": "b", "requester": "nobody-here"})
    assert unknown.status_code == 422 and names(unknown, "requester")
    assert ticket_count() == 1


@pytest.mark.parametrize("body, field", [
    ({"body": "b"}, "title"),
    ({"title": "t"}, "body"),
    ({"title": "", "body": "b"}, "title"),
    ({"title": "   ", "body": "b"}, "title"),
    ({"title": "x" * 201, "body": "b"}, "title"),
    ({"title": "t", "body": "x" * 20_001}, "body"),
    ({"title": "t", "body": "b", "impact": "huge"}, "impact"),
    ({"title": "t", "body": "b", "urgency": 3}, "urgency"),
    ({"title": "t", "body": "b", "category_id": 4242}, "category_id"),
    ({"title": "t", "body": "b", "category_id": "one"}, "category_id"),
    ({"title": "t", "body": "b", "asset_id": 4242}, "asset_id"),
    ({"title": "t", "body": "b", "status": "open"}, "status"),
    ({"title": "t", "body": "b", "source": "email"}, "source"),
])
def test_bad_input_is_422_naming_the_field_and_writes_nothing(eve, body, field):
    client, _ = eve
    response = client.post("/api/v1/tickets", json=body)
    assert response.status_code == 422, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert names(response, field), response.json
    assert ticket_count() == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "ticket.create")) == 0


def test_not_json_and_no_token_are_refused(app, eve):
    client, _ = eve
    assert client.post("/api/v1/tickets", data="title=t", content_type="text/plain").status_code == 422
    anonymous = app.test_client(use_cookies=False)
    refused = anonymous.get("/api/v1/tickets")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert ticket_count() == 0


# --- list ----------------------------------------------------------------------------------------

def test_list_filters_and_cursor(eve, otto, tess):
    staff, _ = tess
    eve_ids = [file(eve[0], title=f"eve {i}", impact="high" if i % 2 else "low", urgency="high")["id"]
               for i in range(5)]
    otto_id = file(otto[0], title="otto's")["id"]
    assert staff.patch(f"/api/v1/tickets/{eve_ids[0]}", json={"assignee": "tess"}).status_code == 200
    assert staff.patch(f"/api/v1/tickets/{eve_ids[1]}", json={"status": "resolved"}).status_code == 200

    listed = staff.get("/api/v1/tickets").json  # default: open, newest first
    assert [t["id"] for t in listed["items"]] == [otto_id, eve_ids[4], eve_ids[3], eve_ids[2], eve_ids[0]]
    assert listed["next_cursor"] is None
    every = staff.get("/api/v1/tickets?queue=all").json["items"]
    assert len(every) == 7 - 1  # five of eve's and one of otto's
    assert {t["id"] for t in staff.get("/api/v1/tickets?queue=all&status=resolved").json["items"]} == {eve_ids[1]}
    critical = staff.get("/api/v1/tickets?queue=all&priority=critical").json["items"]
    assert {t["id"] for t in critical} == {eve_ids[1], eve_ids[3]}
    assert {t["id"] for t in staff.get("/api/v1/tickets?requester=otto").json["items"]} == {otto_id}
    assert [t["id"] for t in staff.get("/api/v1/tickets?assignee=tess").json["items"]] == [eve_ids[0]]
    assert [t["id"] for t in staff.get("/api/v1/tickets?queue=mine").json["items"]] == [eve_ids[0]]
    unassigned = staff.get("/api/v1/tickets?queue=unassigned").json["items"]
    assert eve_ids[0] not in {t["id"] for t in unassigned} and otto_id in {t["id"] for t in unassigned}
    today = utcnow().date()
    assert len(staff.get(f"/api/v1/tickets?queue=all&created_from={today}&created_to={today}").json["items"]) == 6
    assert staff.get(f"/api/v1/tickets?queue=all&created_to={today - timedelta(days=1)}").json["items"] == []
    assert staff.get(f"/api/v1/tickets?queue=all&updated_from={today + timedelta(days=1)}").json["items"] == []
    oldest = staff.get("/api/v1/tickets?queue=all&sort=created&limit=1").json["items"]
    assert [t["id"] for t in oldest] == [eve_ids[0]]
    row = listed["items"][0]
    assert row["requester"]["username"] == "otto" and row["assignee"] is None and "body" not in row

    seen, cursor = [], None
    while True:
        page = staff.get("/api/v1/tickets?queue=all&limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(eve_ids + [otto_id], reverse=True)

    for bad, field in (("limit=0", "limit"), ("limit=101", "limit"), ("cursor=garbage", "cursor"),
                       ("status=bogus", "status"), ("queue=everything", "queue"), ("sort=title", "sort"),
                       ("created_from=yesterday", "created_from"), ("priority=urgent", "priority")):
        response = staff.get(f"/api/v1/tickets?{bad}")
        assert response.status_code == 422, bad
        assert names(response, field) or field in str(response.json["errors"]), bad


def test_team_queue_uses_the_callers_teams(tess, api_as, eve):
    staff, tess_user = tess
    colleague, _ = api_as(Role.IT_STAFF, "carl")
    team = services.save_team("Service desk", email=None, member_ids=[tess_user.id], by="test")
    db.session.commit()
    ticket_id = file(eve[0])["id"]
    patched = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"team_id": team.id})
    assert patched.status_code == 200 and patched.json["team"] == {"id": team.id, "name": "Service desk"}
    assert [t["id"] for t in staff.get("/api/v1/tickets?queue=team").json["items"]] == [ticket_id]
    assert colleague.get("/api/v1/tickets?queue=team").json["items"] == []
    assert [t["id"] for t in staff.get(f"/api/v1/tickets?team_id={team.id}").json["items"]] == [ticket_id]


@pytest.mark.parametrize("q", [
    '"', "'", '"vpn', "vpn OR", "vpn AND NOT", "NEAR(vpn drops)", "(vpn", "vpn)", "-vpn", "*", "vpn*", "^vpn",
    "title:vpn", "'; DROP TABLE tickets; --", "1' OR '1'='1", "%_", "\\", "vpn & | ! :*", "<script>", "🙂 vpn",
    "x" * 200,
])
def test_search_with_awkward_input_never_fails(tess, eve, q):
    staff, _ = tess
    file(eve[0], title="VPN drops every hour", body="On Wi-Fi (office) only")
    response = staff.get("/api/v1/tickets", query_string={"q": q, "queue": "all"})
    assert response.status_code == 200, response.json
    assert isinstance(response.json["items"], list)
    assert eve[0].get("/api/v1/tickets", query_string={"q": q}).status_code == 200
    assert ticket_count() == 1


def test_search_finds_words_and_employees_never_match_internal_notes(tess, eve, otto):
    staff, _ = tess
    client, _ = eve
    vpn = file(client, title="VPN drops every hour", body="On Wi-Fi only")["id"]
    file(client, title="Printer jam", body="Paper everywhere")
    file(otto[0], title="VPN for Otto too", body="same")
    assert {t["id"] for t in client.get("/api/v1/tickets?q=vpn").json["items"]} == {vpn}
    assert len(staff.get("/api/v1/tickets?q=vpn").json["items"]) == 2
    assert [t["id"] for t in staff.get('/api/v1/tickets?q="Wi-Fi" (only)').json["items"]] == [vpn]
    staff.post(f"/api/v1/tickets/{vpn}/comments", json={"body": "zebracode in the firewall log", "internal": True})
    staff.post(f"/api/v1/tickets/{vpn}/comments", json={"body": "Try the okapi profile please"})
    assert [t["id"] for t in staff.get("/api/v1/tickets?q=zebracode").json["items"]] == [vpn]
    assert client.get("/api/v1/tickets?q=zebracode").json["items"] == []
    assert [t["id"] for t in client.get("/api/v1/tickets?q=okapi").json["items"]] == [vpn]
    assert staff.get("/api/v1/tickets?q=zebrac").json["items"][0]["id"] == vpn  # prefix of the last word


# --- employees: only their own ------------------------------------------------------------------

def test_employee_token_sees_and_touches_only_their_own_tickets(eve, otto):
    client, _ = eve
    mine = file(client, title="mine")["id"]
    theirs = file(otto[0], title="theirs")["id"]
    assert [t["id"] for t in client.get("/api/v1/tickets?queue=all").json["items"]] == [mine]
    assert [t["id"] for t in client.get("/api/v1/tickets?requester=otto&queue=all").json["items"]] == [mine]
    assert [t["id"] for t in client.get("/api/v1/tickets?queue=unassigned").json["items"]] == [mine]
    for response in (
        client.get(f"/api/v1/tickets/{theirs}"),
        client.patch(f"/api/v1/tickets/{theirs}", json={"status": "closed"}),
        client.get(f"/api/v1/tickets/{theirs}/comments"),
        client.post(f"/api/v1/tickets/{theirs}/comments", json={"body": "hello"}),
        client.get(f"/api/v1/tickets/{theirs}/attachments"),
        upload(client, theirs, b"notes", "notes.txt"),
        client.post(f"/api/v1/tickets/{theirs}/rating", json={"rating": 1}),
    ):
        assert response.status_code == 404, response.json
        assert response.json["detail"] == "No such ticket."
    ticket = db.session.get(Ticket, theirs)
    assert ticket.status == "new" and ticket.rating is None
    assert db.session.scalar(select(func.count()).select_from(TicketComment)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0


def test_employee_refusals_on_their_own_ticket(eve, tess):
    client, _ = eve
    ticket_id = file(client)["id"]
    note = client.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "psst", "internal": True})
    assert note.status_code == 403 and "internal" in note.json["detail"]
    for change, field in (({"priority": "critical"}, "priority"), ({"assignee": "tess"}, "assignee"),
                          ({"assignee": None}, "assignee"), ({"team_id": 1}, "team_id"),
                          ({"status": "closed", "priority": "low"}, "priority")):
        refused = client.patch(f"/api/v1/tickets/{ticket_id}", json=change)
        assert refused.status_code == 403, change
        assert field in refused.json["detail"], refused.json
    for status in ("open", "resolved", "pending"):
        refused = client.patch(f"/api/v1/tickets/{ticket_id}", json={"status": status})
        assert refused.status_code == 403 and "close" in refused.json["detail"]
    merge = client.post(f"/api/v1/tickets/{ticket_id}/merge", json={"into": ticket_id})
    assert merge.status_code == 403
    ticket = db.session.get(Ticket, ticket_id)
    assert (ticket.status, ticket.priority, ticket.assignee_id) == ("new", "medium", None)
    assert db.session.scalar(select(func.count()).select_from(TicketComment)) == 0

    closed = client.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "closed"})
    assert closed.status_code == 200 and closed.json["status"] == "closed" and closed.json["closed_at"]
    assert closed.json["allowed_next_statuses"] == []
    late = client.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "one more thing"})
    assert late.status_code == 409 and "closed" in late.json["detail"]


def test_hr_files_tickets_as_a_requester(api_as, tess):
    hr, _ = api_as(Role.HR)
    ticket_id = file(hr)["id"]
    assert hr.patch(f"/api/v1/tickets/{ticket_id}", json={"priority": "high"}).status_code == 403
    assert hr.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "x", "internal": True}).status_code == 403
    assert [t["id"] for t in hr.get("/api/v1/tickets").json["items"]] == [ticket_id]


# --- staff flows -------------------------------------------------------------------------------

def test_staff_assign_and_status_with_the_sla_pause(tess, eve, make_user, business_hours):
    staff, tess_user = tess
    ticket_id = file(eve[0])["id"]
    assigned = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"assignee": "tess"})
    assert assigned.status_code == 200
    assert assigned.json["assignee"] == {"id": tess_user.id, "username": "tess", "display_name": "Tess Tech"}
    before = assigned.json

    pending = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "pending"})
    assert pending.status_code == 200
    assert pending.json["status"] == "pending" and pending.json["paused"] is True and pending.json["paused_at"]
    assert eve[0].get(f"/api/v1/tickets/{ticket_id}").json["paused"] is True
    # A week pending on the requester: the clock stood still for its business hours.
    ticket = db.session.get(Ticket, ticket_id)
    ticket.paused_at = ticket.paused_at - timedelta(days=7)
    db.session.commit()
    resumed = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "open"})
    assert resumed.status_code == 200
    assert resumed.json["paused"] is False and resumed.json["paused_at"] is None
    assert resumed.json["paused_minutes"] >= 5 * 8 * 60
    assert parse(resumed.json["resolution_due"]) > parse(before["resolution_due"])
    assert parse(resumed.json["first_response_due"]) > parse(before["first_response_due"])

    unassigned = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"assignee": None})
    assert unassigned.status_code == 200 and unassigned.json["assignee"] is None
    employee = make_user(Role.EMPLOYEE, "emma")
    for change, field in (({"assignee": "emma"}, "assignee"), ({"assignee": "ghost"}, "assignee"),
                          ({"team_id": 4242}, "team_id"), ({"status": "bogus"}, "status"),
                          ({"priority": "urgent"}, "priority"), ({"title": "new"}, "title"),
                          ({"team_id": "1"}, "team_id"), ({}, "_schema")):
        refused = staff.patch(f"/api/v1/tickets/{ticket_id}", json=change)
        assert refused.status_code == 422, change
        assert names(refused, field), refused.json
    assert db.session.get(Ticket, ticket_id).assignee_id is None and employee.role == "employee"


def test_priority_change_moves_the_due_times(tess, eve, business_hours):
    staff, _ = tess
    created = file(eve[0], impact="low", urgency="low")
    assert created["priority"] == "low"
    raised = staff.patch(f"/api/v1/tickets/{created['id']}", json={"priority": "critical"})
    assert raised.status_code == 200 and raised.json["priority"] == "critical"
    assert parse(raised.json["first_response_due"]) < parse(created["first_response_due"])
    assert parse(raised.json["resolution_due"]) < parse(created["resolution_due"])
    ticket = db.session.get(Ticket, created["id"])
    assert ticket.priority_rank == 1
    assert [t["id"] for t in staff.get("/api/v1/tickets?priority=critical").json["items"]] == [created["id"]]


def test_forbidden_transition_is_409_and_changes_nothing(tess, eve):
    staff, _ = tess
    ticket_id = file(eve[0])["id"]
    assert staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "resolved"}).json["allowed_next_statuses"] \
        == ["open", "closed"]
    assert staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "closed"}).status_code == 200
    refused = staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "open", "priority": "critical"})
    assert refused.status_code == 409
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert "cannot go from closed to open" in refused.json["detail"]
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status == "closed" and ticket.priority == "medium"  # the priority change was rolled back


def test_internal_notes_are_hidden_from_the_requester(tess, eve):
    staff, _ = tess
    client, _ = eve
    ticket_id = file(client)["id"]
    reply = staff.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "Please restart it."})
    assert reply.status_code == 201 and reply.json["internal"] is False
    assert reply.json["author"]["username"] == "tess"
    note = staff.post(f"/api/v1/tickets/{ticket_id}/comments",
                      json={"body": "<script>alert(1)</script> known firmware bug", "internal": True})
    assert note.status_code == 201 and note.json["internal"] is True
    answer = client.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "Done, still jams."})
    assert answer.status_code == 201
    staff_view = staff.get(f"/api/v1/tickets/{ticket_id}/comments").json
    assert [c["body"] for c in staff_view] == ["Please restart it.", "<script>alert(1)</script> known firmware bug",
                                               "Done, still jams."]
    requester_view = client.get(f"/api/v1/tickets/{ticket_id}/comments").json
    assert [c["body"] for c in requester_view] == ["Please restart it.", "Done, still jams."]
    detail = client.get(f"/api/v1/tickets/{ticket_id}").json
    assert detail["status"] == "open"  # the first public reply opened it
    assert db.session.get(Ticket, ticket_id).first_response_at is not None
    for bad, field in (({"body": ""}, "body"), ({"body": "x" * 20_001}, "body"), ({}, "body"),
                       ({"body": "x", "internal": "maybe"}, "internal"), ({"body": "x", "public": True}, "public")):
        refused = staff.post(f"/api/v1/tickets/{ticket_id}/comments", json=bad)
        assert refused.status_code == 422 and names(refused, field), bad
    assert db.session.scalar(select(func.count()).select_from(TicketComment)) == 3


def test_merge_a_duplicate(tess, eve, otto):
    staff, _ = tess
    original = file(eve[0], title="Wi-Fi down in room 4")["id"]
    duplicate = file(otto[0], title="No wifi room 4", body="Nothing connects.")["id"]
    merged = staff.post(f"/api/v1/tickets/{duplicate}/merge", json={"into": original})
    assert merged.status_code == 200 and merged.json["id"] == original and merged.json["status"] == "new"
    gone = staff.get(f"/api/v1/tickets/{duplicate}").json
    assert gone["status"] == "closed" and gone["merged_into_id"] == original
    bodies = [c["body"] for c in staff.get(f"/api/v1/tickets/{original}/comments").json]
    assert any("Merged from" in b and "Nothing connects." in b for b in bodies)
    assert staff.post(f"/api/v1/tickets/{duplicate}/merge", json={"into": original}).status_code == 409
    third = file(eve[0])["id"]
    itself = staff.post(f"/api/v1/tickets/{third}/merge", json={"into": third})
    assert itself.status_code == 422
    missing = staff.post(f"/api/v1/tickets/{third}/merge", json={"into": 4242})
    assert missing.status_code == 422 and names(missing, "into")
    assert staff.post(f"/api/v1/tickets/{third}/merge", json={}).status_code == 422
    assert staff.post("/api/v1/tickets/4242/merge", json={"into": third}).status_code == 404
    assert db.session.get(Ticket, third).status == "new"


def test_rating_by_the_requester_once_resolved(tess, eve):
    staff, _ = tess
    client, _ = eve
    ticket_id = file(client)["id"]
    early = client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"rating": 5})
    assert early.status_code == 409 and "resolved" in early.json["detail"]
    staff.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "resolved"})
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4.5}, {}, {"rating": 5, "stars": 5},
                {"rating": 5, "comment": "x" * 2001}):
        refused = client.post(f"/api/v1/tickets/{ticket_id}/rating", json=bad)
        assert refused.status_code == 422, bad
    assert staff.post(f"/api/v1/tickets/{ticket_id}/rating", json={"rating": 1}).status_code == 403
    rated = client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"rating": 4, "comment": "Quick, thanks"})
    assert rated.status_code == 200
    assert rated.json["rating"] == 4 and rated.json["rating_comment"] == "Quick, thanks"
    again = client.post(f"/api/v1/tickets/{ticket_id}/rating", json={"rating": 1})
    assert again.status_code == 409 and db.session.get(Ticket, ticket_id).rating == 4


# --- attachments --------------------------------------------------------------------------------

def test_attachment_upload_list_and_download_headers(tess, eve, new_files):
    staff, _ = tess
    client, _ = eve
    ticket_id = file(client)["id"]
    created = upload(client, ticket_id, PNG, "screen shot.png")
    assert created.status_code == 201, created.json
    [item] = created.json
    assert item["filename"] == "screen shot.png" and item["content_type"] == "image/png"
    assert item["size"] == len(PNG) and item["comment_id"] is None
    assert item["download_url"] == f"/api/v1/tickets/{ticket_id}/attachments/{item['id']}"
    assert [a["id"] for a in client.get(f"/api/v1/tickets/{ticket_id}/attachments").json] == [item["id"]]

    download = client.get(item["download_url"])
    assert download.status_code == 200 and download.data == PNG
    assert download.headers["Content-Type"] == "image/png"
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert "screen shot.png" in download.headers["Content-Disposition"]
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download.headers["Content-Security-Policy"]
    assert "no-store" in download.headers["Cache-Control"]
    assert staff.get(item["download_url"]).data == PNG
    assert client.get(f"/api/v1/tickets/{ticket_id}/attachments/4242").status_code == 404

    two = client.post(f"/api/v1/tickets/{ticket_id}/attachments", content_type="multipart/form-data",
                      data={"file": [(io.BytesIO(b"line one\n"), "log.txt"), (io.BytesIO(b"%PDF-1.7\n"), "r.pdf")]})
    assert two.status_code == 201 and [a["content_type"] for a in two.json] == ["text/plain", "application/pdf"]
    assert len(new_files()) == 3


def test_attachments_on_internal_notes_stay_internal(tess, eve, new_files):
    staff, _ = tess
    client, _ = eve
    ticket_id = file(client)["id"]
    note_id = staff.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "dump", "internal": True}).json["id"]
    attached = upload(staff, ticket_id, b"secret trace", "trace.log", comment_id=str(note_id))
    assert attached.status_code == 201 and attached.json[0]["comment_id"] == note_id
    aid = attached.json[0]["id"]
    assert [a["id"] for a in staff.get(f"/api/v1/tickets/{ticket_id}/attachments").json] == [aid]
    assert client.get(f"/api/v1/tickets/{ticket_id}/attachments").json == []
    assert client.get(f"/api/v1/tickets/{ticket_id}/attachments/{aid}").status_code == 404
    [staff_comment] = staff.get(f"/api/v1/tickets/{ticket_id}/comments").json
    assert [a["id"] for a in staff_comment["attachments"]] == [aid]
    # The requester cannot hang a file on the internal note either.
    refused = upload(client, ticket_id, b"hi", "hi.txt", comment_id=str(note_id))
    assert refused.status_code == 422 and names(refused, "comment_id")
    reply_id = client.post(f"/api/v1/tickets/{ticket_id}/comments", json={"body": "see file"}).json["id"]
    assert upload(client, ticket_id, b"hi", "hi.txt", comment_id=str(reply_id)).status_code == 201
    assert len(new_files()) == 2


def test_bad_attachments_are_refused_and_leave_nothing(app, eve, monkeypatch, new_files):
    client, _ = eve
    ticket_id = file(client)["id"]
    html = upload(client, ticket_id, b"<html><script>alert(1)</script></html>", "cat.png")
    assert html.status_code == 422 and "not an allowed file type" in html.json["detail"]
    exe = upload(client, ticket_id, b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\xff\xff", "setup.exe")
    assert exe.status_code == 422
    empty = upload(client, ticket_id, b"", "empty.txt")
    assert empty.status_code == 422 and "empty" in empty.json["detail"]
    missing = client.post(f"/api/v1/tickets/{ticket_id}/attachments", data={}, content_type="multipart/form-data")
    assert missing.status_code == 422 and names(missing, "file")
    extra = upload(client, ticket_id, b"ok", "ok.txt", colour="blue")
    assert extra.status_code == 422 and names(extra, "colour")
    bad_comment = upload(client, ticket_id, b"ok", "ok.txt", comment_id="abc")
    assert bad_comment.status_code == 422 and names(bad_comment, "comment_id")

    monkeypatch.setitem(app.config, "ITOPS_ATTACHMENT_MAX_BYTES", 1024 * 1024)
    big = upload(client, ticket_id, b"a" * (1024 * 1024 + 1), "big.txt")
    assert big.status_code == 422 and "larger than 1 MiB" in big.json["detail"]
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 64 * 1024)
    huge = upload(client, ticket_id, b"a" * (100 * 1024), "huge.txt")
    assert huge.status_code == 413 and "larger than" in huge.json["detail"]

    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert new_files() == []


def test_no_attachments_on_a_closed_ticket(tess, eve, new_files):
    staff, _ = tess
    client, _ = eve
    ticket_id = file(client)["id"]
    client.patch(f"/api/v1/tickets/{ticket_id}", json={"status": "closed"})
    for who in (client, staff):
        refused = upload(who, ticket_id, b"late", "late.txt")
        assert refused.status_code == 409 and "closed" in refused.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert new_files() == []


# --- documentation ---------------------------------------------------------------------------

def test_openapi_document_describes_the_tickets_api(client):
    document = client.get("/api/v1/openapi.json").json
    validate(document)
    paths = document["paths"]
    expected = {
        "/api/v1/tickets": {"get", "post"},
        "/api/v1/tickets/{ticket_id}": {"get", "patch"},
        "/api/v1/tickets/{ticket_id}/comments": {"get", "post"},
        "/api/v1/tickets/{ticket_id}/attachments": {"get", "post"},
        "/api/v1/tickets/{ticket_id}/attachments/{attachment_id}": {"get"},
        "/api/v1/tickets/{ticket_id}/rating": {"post"},
        "/api/v1/tickets/{ticket_id}/merge": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), path
        for method in methods:
            assert paths[path][method]["summary"], (path, method)
    upload_body = paths["/api/v1/tickets/{ticket_id}/attachments"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body
    listing = {p["name"] for p in paths["/api/v1/tickets"]["get"]["parameters"]}
    assert {"queue", "q", "status", "priority", "category_id", "team_id", "assignee", "requester", "asset_id",
            "created_from", "created_to", "updated_from", "updated_to", "sort", "cursor", "limit"} <= listing
    detail = document["components"]["schemas"]["TicketDetail"]["properties"]
    assert {"first_response_due", "resolution_due", "response_breached", "resolution_breached", "paused",
            "asset", "asset_health", "requester", "assignee", "team", "category"} <= set(detail)
