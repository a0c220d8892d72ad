"""Writing batches of rows: core.database.insert_now and update_now, on SQLite and PostgreSQL alike."""
from sqlalchemy import event, func, select

from itops.core.auth.models import User
from itops.core.database import insert_now, update_now
from itops.core.policy import Role
from itops.extensions import db
from itops.tickets.models import Ticket


def _statements(run) -> list[str]:
    seen = []
    listener = lambda *args: seen.append(" ".join(args[2].split()[:3]))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    return seen


def test_insert_now_writes_rows_with_defaults_and_foreign_keys_once(make_user):
    requester = make_user(Role.EMPLOYEE)
    tickets = [Ticket(title=f"t{i}", body="b", requester=requester, impact="low", urgency="low", priority="low",
                      priority_rank=3) for i in range(3)]
    statements = _statements(lambda: insert_now(db.session, Ticket, tickets))
    assert [s for s in statements if s.startswith("INSERT")] == ["INSERT INTO tickets"]
    assert [t.id for t in tickets] == sorted(t.id for t in tickets) and all(t.requester_id == requester.id
                                                                          for t in tickets)
    assert all(t.status == "new" and t.is_open and t.created_at is not None for t in tickets)  # column defaults
    assert _statements(db.session.flush) == []  # persistent already: nothing left to write
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Ticket, tickets[1].id).title == "t1"


def test_a_rolled_back_savepoint_takes_its_inserted_rows_out_of_the_session_too():
    savepoint = db.session.begin_nested()
    first = [User(username=f"u{i}", display_name="U", role="employee", source="local") for i in range(2)]
    insert_now(db.session, User, first)
    savepoint.rollback()
    assert all(user not in db.session for user in first)
    again = [User(username=f"v{i}", display_name="V", role="employee", source="local") for i in range(2)]
    insert_now(db.session, User, again)
    if db.engine.dialect.name == "sqlite":  # the same ids again, no clash with the undone rows (PostgreSQL's
        assert [u.id for u in again] == [u.id for u in first]  # sequence never gives one twice)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_insert_now_gives_a_single_new_row_the_id_the_database_hands_out(make_user):
    requester = make_user(Role.EMPLOYEE)
    earlier = Ticket(title="earlier", body="b", requester=requester, impact="low", urgency="low", priority="low",
                     priority_rank=3)
    insert_now(db.session, Ticket, [earlier])
    ticket = Ticket(title="one", body="b", requester=requester, impact="low", urgency="low", priority="low",
                    priority_rank=3)
    statements = _statements(lambda: insert_now(db.session, Ticket, [ticket]))
    assert statements == ["INSERT INTO tickets"]  # no id reservation first
    assert ticket.id is not None and ticket.id > earlier.id and ticket.requester_id == requester.id
    assert _statements(db.session.flush) == []
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).title == "one"


def _tickets(requester, count: int) -> list[Ticket]:
    tickets = [Ticket(title=f"t{i}", body="b", requester=requester, impact="low", urgency="low", priority="low",
                      priority_rank=3) for i in range(count)]
    insert_now(db.session, Ticket, tickets)
    db.session.commit()
    for ticket in tickets:  # loaded again after the commit, so that no load (and autoflush) comes in between
        db.session.refresh(ticket)
    return tickets


def test_update_now_writes_the_columns_of_many_rows_in_one_statement_and_leaves_them_clean(make_user):
    tickets = _tickets(make_user(Role.EMPLOYEE), 3)
    for ticket in tickets:
        ticket.status, ticket.title = "open", ticket.title.upper()
    statements = _statements(lambda: update_now(db.session, Ticket, tickets, ("status", "title")))
    assert statements == ["UPDATE tickets SET"]
    assert not db.session.dirty and _statements(db.session.flush) == []  # nothing left for the unit of work
    db.session.commit()
    db.session.expire_all()
    assert [(t.status, t.title) for t in db.session.scalars(select(Ticket).order_by(Ticket.id))] == \
        [("open", "T0"), ("open", "T1"), ("open", "T2")]


def test_update_now_leaves_other_changes_to_the_unit_of_work(make_user):
    ticket = _tickets(make_user(Role.EMPLOYEE), 1)[0]
    ticket.status, ticket.body = "open", "changed too"
    update_now(db.session, Ticket, [ticket], ("status",))
    assert _statements(db.session.flush) == ["UPDATE tickets SET"]  # the body, which update_now did not write
    db.session.commit()
    db.session.expire_all()
    assert (ticket.status, ticket.body) == ("open", "changed too")


def test_a_rolled_back_savepoint_expires_what_update_now_wrote_in_it(make_user):
    tickets = _tickets(make_user(Role.EMPLOYEE), 2)
    savepoint = db.session.begin_nested()
    for ticket in tickets:
        ticket.status = "open"
    update_now(db.session, Ticket, tickets, ("status",))
    savepoint.rollback()
    assert [t.status for t in tickets] == ["new", "new"]  # read again, as the database has them
