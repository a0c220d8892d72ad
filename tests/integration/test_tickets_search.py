"""Ticket search: who finds what (internal notes, other people's tickets), the index following every change
(comments edited, deleted, moved; tickets edited, merged, deleted), whole words before prefixes, sorts and
pages over a search, and the migration that builds the SQLite index from existing tickets."""
import flask_migrate
import pytest
from sqlalchemy import text

from itops.core.auth import services as auth_services
from itops.core.policy import Role
from itops.extensions import db
from itops.tickets import queries, services
from tests.conftest import build_test_app
from tests.integration import test_tickets_services

people = test_tickets_services.people   # the same people fixture: eve, otto (employees), tess (IT staff)
file_ticket = test_tickets_services.file_ticket


def note(ticket, author, body, *, internal=False):
    comment = services.add_comment(ticket, author, body, internal=internal)
    db.session.commit()
    return comment


def staff_finds(q, **filters):
    return [t.id for t in queries.ticket_page(queries.TicketFilters(queue="all", q=q, **filters)).items]


def requester_finds(user, q):
    filters = queries.TicketFilters(queue="all", q=q).for_requester(user)
    return [t.id for t in queries.ticket_page(filters).items]


def test_staff_find_internal_notes_and_requesters_never_do(people):
    eve, otto, tess = people["eve"], people["otto"], people["tess"]
    mine = file_ticket(eve, title="Laptop fan is loud", body="It hums all day")
    theirs = file_ticket(otto, title="Laptop fan rattles", body="Since the move")
    note(mine, tess, "Fan replaced under warranty")
    note(mine, tess, "Suspect quokkafirmware again", internal=True)
    note(theirs, tess, "Ordered a wombatpart", internal=True)

    assert staff_finds("quokkafirmware") == [mine.id]
    assert staff_finds("wombatpart") == [theirs.id]
    assert requester_finds(eve, "quokkafirmware") == []
    assert requester_finds(eve, "warranty") == [mine.id]            # public replies are searched
    assert requester_finds(eve, "laptop") == [mine.id]              # never someone else's ticket
    assert requester_finds(otto, "wombatpart") == []
    assert sorted(staff_finds("laptop")) == sorted([mine.id, theirs.id])
    assert requester_finds(eve, "quokkaf") == [] and staff_finds("quokkaf") == [mine.id]  # nor as a prefix


def test_requester_search_through_the_api(people, api_as):
    employee, eve = api_as(Role.EMPLOYEE, "erin")
    staff, _ = api_as(Role.IT_STAFF, "ivan")
    ticket = file_ticket(eve, title="Docking station", body="No picture on the second screen")
    note(ticket, people["tess"], "Caracal driver known bug", internal=True)
    assert employee.get("/api/v1/tickets?q=caracal").json["items"] == []
    assert [t["id"] for t in employee.get("/api/v1/tickets?q=docking").json["items"]] == [ticket.id]
    assert [t["id"] for t in staff.get("/api/v1/tickets?q=caracal&queue=all").json["items"]] == [ticket.id]


def test_changed_and_deleted_comments_are_searched_as_they_are_now(people):
    eve, tess = people["eve"], people["tess"]
    ticket = file_ticket(eve)
    reply = note(ticket, tess, "Try the narwhal tray")
    memo = note(ticket, tess, "Toner from the ibex supplier", internal=True)
    assert staff_finds("narwhal") == [ticket.id] and requester_finds(eve, "narwhal") == [ticket.id]

    reply.body = "Try the pelican tray"
    db.session.commit()
    assert staff_finds("narwhal") == [] and staff_finds("pelican") == [ticket.id]

    memo.internal = False  # a note made public becomes searchable for the requester
    db.session.commit()
    assert requester_finds(eve, "ibex") == [ticket.id]
    memo.internal = True
    db.session.commit()
    assert requester_finds(eve, "ibex") == [] and staff_finds("ibex") == [ticket.id]

    db.session.delete(reply)
    db.session.commit()
    assert staff_finds("pelican") == [] and staff_finds("ibex") == [ticket.id]
    assert staff_finds("jams") == [ticket.id]  # the ticket's own text is untouched


def test_a_comment_moved_to_another_ticket_is_found_there(people):
    eve, tess = people["eve"], people["tess"]
    first, second = file_ticket(eve), file_ticket(eve, title="Scanner", body="Scans are blank")
    comment = note(first, tess, "Replaced the gecko roller")
    comment.ticket_id = second.id
    db.session.commit()
    assert staff_finds("gecko") == [second.id]


def test_edited_and_deleted_tickets_leave_nothing_behind(people):
    eve = people["eve"]
    old = file_ticket(eve, title="Badger badge reader", body="Door does not open")
    old.title, old.body = "Badge reader", "Door opens late"
    db.session.commit()
    assert staff_finds("badger") == [] and staff_finds("late") == [old.id]

    newest = file_ticket(eve, title="Heron headset", body="Crackles")
    note(newest, people["tess"], "Heron firmware noted", internal=True)
    newest_id = newest.id
    db.session.delete(newest)
    db.session.commit()
    assert staff_finds("heron") == []
    # SQLite may give the deleted ticket's id to the next one: it must not inherit the old text.
    again = file_ticket(eve, title="Mouse", body="Double clicks")
    assert staff_finds("heron") == [] and staff_finds("double") == [again.id]
    assert staff_finds("crackles") == [] and again.id in (newest_id, newest_id + 1)


def test_merged_duplicate_is_found_on_both_tickets(people):
    eve, otto, tess = people["eve"], people["otto"], people["tess"]
    into = file_ticket(eve, title="Wi-Fi drops", body="On the third floor")
    duplicate = file_ticket(otto, title="Wireless unstable", body="Meerkat access point blinks")
    services.merge(duplicate, into, by=tess)
    db.session.commit()
    assert sorted(staff_finds("meerkat")) == sorted([into.id, duplicate.id])
    assert requester_finds(eve, "meerkat") == [into.id]      # the merge note is a public comment
    assert requester_finds(otto, "meerkat") == [duplicate.id]


def test_whole_words_first_then_the_last_word_as_a_prefix(people):
    eve = people["eve"]
    monitor = file_ticket(eve, title="Monitor flickers", body="At startup")
    printing = file_ticket(eve, title="Printing is slow", body="Queue stalls")
    printer = file_ticket(eve, title="Printer offline", body="Since Monday")
    assert staff_finds("monit") == [monitor.id]                 # nothing whole: a word being typed
    assert staff_finds("flickering") == [monitor.id]            # stems match whole
    assert staff_finds("print") == [printing.id]                # a whole word is not widened to "printer"
    assert staff_finds("printer") == [printer.id]
    assert staff_finds("mo") == []                              # too short to be a prefix
    assert staff_finds("startup monit") == [monitor.id] and staff_finds("monit startup") == []
    assert requester_finds(eve, "offl") == [printer.id]


@pytest.mark.parametrize("sort", ["-created", "created", "-updated", "priority", "due"])
def test_every_sort_pages_through_a_search(people, sort):
    eve, tess = people["eve"], people["tess"]
    hits = [file_ticket(eve, title=f"Outlook profile {i}", body="Mail is stuck") for i in range(5)]
    file_ticket(eve, title="Keyboard", body="Sticky keys")
    services.set_priority(hits[2], "critical", by=tess)
    note(hits[1], tess, "Rebuilt the outlook cache")
    for searched in ({}, {"requester_id": eve.id, "include_internal": False}):
        filters = queries.TicketFilters(queue="all", q="outlook", sort=sort, **searched)
        seen, cursor = [], None
        while True:
            page = queries.ticket_page(filters, cursor=cursor, limit=2)
            seen += [t.id for t in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert sorted(seen) == sorted(t.id for t in hits)
        if sort == "-created":
            assert seen == sorted(seen, reverse=True)
        if sort == "priority":
            assert seen[0] == hits[2].id


def test_a_prefix_search_pages_on_as_a_prefix_search(people):
    eve = people["eve"]
    found = [file_ticket(eve, title=f"Projector {i}", body="No signal").id for i in range(3)]
    filters = queries.TicketFilters(queue="all", q="projec")
    first = queries.ticket_page(filters, limit=2)
    second = queries.ticket_page(filters, cursor=first.next_cursor, limit=2)
    assert [t.id for t in first.items + second.items] == sorted(found, reverse=True)
    assert second.next_cursor is None


@pytest.mark.parametrize("awkward", ['"', 'x" OR "y', "{title} : x", "internal_comments : x", "NEAR(a b)",
                                     "a_b", "*", "ab*", "-", "ü ß é", "x" * 300, "(((", "title body"])
def test_awkward_input_on_every_search_path(people, awkward):
    eve = people["eve"]
    file_ticket(eve, title="a_b title body ab x y", body="ü ß é")
    assert isinstance(staff_finds(awkward), list)
    assert isinstance(requester_finds(eve, awkward), list)
    assert isinstance(staff_finds(awkward, requester="eve", sort="priority"), list)


def test_upgrade_indexes_existing_tickets_and_downgrade_restores_the_old_index(tmp_path):
    scratch = build_test_app(f"sqlite:///{tmp_path / 'search.db'}")
    with scratch.app_context():
        try:
            flask_migrate.upgrade(revision="0005_assets_search")
            requester = auth_services.create_local_user("ada", "a long test password", role=Role.EMPLOYEE)
            staff = auth_services.create_local_user("ian", "a long test password", role=Role.IT_STAFF)
            ticket = file_ticket(requester, title="Okapi printer", body="Toner smears")
            note(ticket, staff, "Lynx driver", internal=True)
            note(ticket, staff, "Try the ocelot tray")

            flask_migrate.upgrade(revision="0006_tickets_search")
            assert staff_finds("okapi") == staff_finds("lynx") == staff_finds("ocelot") == [ticket.id]
            assert requester_finds(requester, "lynx") == [] and requester_finds(requester, "ocelot") == [ticket.id]

            flask_migrate.downgrade(revision="0005_assets_search")
            old = {word: db.session.execute(text(statement), {"w": word}).scalars().all() for word, statement in (
                ("okapi", "SELECT rowid FROM fts_tickets WHERE fts_tickets MATCH :w"),
                ("ocelot", "SELECT c.ticket_id FROM fts_ticket_comments f JOIN ticket_comments c ON c.id = f.rowid "
                           "WHERE fts_ticket_comments MATCH :w"))}
            assert old == {"okapi": [ticket.id], "ocelot": [ticket.id]}
        finally:
            db.session.remove()
            db.engine.dispose()

def test_the_index_holds_one_document_per_ticket(people):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite search index")
    eve, tess = people["eve"], people["tess"]
    tickets = [file_ticket(eve) for _ in range(3)]
    note(tickets[0], tess, "one")
    note(tickets[0], tess, "two", internal=True)
    rows = db.session.execute(text("SELECT rowid, title, public_comments, internal_comments "
                                   "FROM fts_ticket_documents ORDER BY rowid")).all()
    title = tickets[0].title
    assert [tuple(r) for r in rows] == [(tickets[0].id, title, "one", "two"), (tickets[1].id, title, None, None),
                                        (tickets[2].id, title, None, None)]


def _sqlite_plan(filters: queries.TicketFilters) -> str:
    query = queries.ticket_query(filters, rows=True).order_by(*[c.desc() for c, _ in queries.sort_of(filters)])
    compiled = query.compile(db.engine)
    params = tuple(compiled.params[name] for name in compiled.positiontup)
    rows = db.session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params).all()
    return " / ".join(row[-1] for row in rows)


def test_the_open_queue_of_one_category_reads_the_categorys_index():
    """Without statistics SQLite would walk every open ticket testing its category (queries._is_open)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query planner")
    plan = _sqlite_plan(queries.TicketFilters(queue="open", category_id=3, priority="high"))
    assert "ix_tickets_category_created" in plan and "TEMP B-TREE" not in plan
    assert "ix_tickets_open_created" in _sqlite_plan(queries.TicketFilters(queue="open"))
