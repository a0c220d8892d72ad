"""Many joiners at once against a real slapd: an import's lookups and a run's batched group joins."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from ldap3 import NONE, Connection, Server
from ldap3.strategy import base as ldap3_strategy
from ldap3.strategy.asynchronous import AsyncStrategy

from itops.core.audit import AuditEntry
from itops.core.auth import services as auth_services
from itops.core.auth.models import User
from itops.directory import csv_io, ldap, ldap_wire, services, tasks
from itops.directory.batching import LongRun, StepRun, WriterProcesses
from itops.directory.choices import ActionKind, ActionState, PersonState
from itops.directory.ldap import DirectoryRefused, DirectoryUnreachable, Gateway, LdapOperation, NotSent
from itops.directory.models import DirectoryAction, Person, UsernameInUse
from itops.extensions import db
from itops.tickets import services as tickets_services
from itops.tickets.models import Ticket
from tests.integration import directory_support
from tests.integration.directory_support import TODAY, entry, group_members

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings

HEADER = "employee_number,given_name,family_name,email,department,title,manager_employee_number,start_date\n"
JOINERS = 60


def _joiners_csv() -> bytes:
    rows = [f"B{i:03d},Jo,Doe,b{i}@example.org,{'Sales' if i % 2 else 'Support'},Agent,{'B000' if i else ''},{TODAY}"
            for i in range(JOINERS)]
    return (HEADER + "\n".join(rows) + "\n").encode()


def _can_bind(instance, username: str, password: str) -> bool:
    connection = Connection(Server(instance.url, get_info=NONE), f"uid={username},{instance.people_dn}", password)
    try:
        return connection.bind()
    finally:
        connection.unbind()


def _with_the_directory_down(instance, run):
    """What `run()` returns while this module's slapd is stopped; it is started again afterwards."""
    instance.stop()
    try:
        return run()
    finally:
        directory_support.start_slapd(instance.workdir, port=instance.port,
                                      admin_password=directory_support.ADMIN_PASSWORD)


def _joins_fail(monkeypatch):
    """Group joins of more than one member find the directory unreachable; returns the real Gateway.apply."""
    apply = Gateway.apply

    def no_joins(self, operations):
        operations = list(operations)
        if any(op.kind == "modify" and len(op.changes["member"][1]) > 1 for op in operations):
            raise DirectoryUnreachable("The directory is restarting.")
        return apply(self, operations)

    monkeypatch.setattr(Gateway, "apply", no_joins)
    return apply


def _mappings() -> None:
    for department in ("Sales", "Support"):
        services.save_group_mapping(department=department, title=None, groups=[department.lower()], by="admin")
    services.save_group_mapping(department=None, title="Agent", groups=["agents"], by="admin")


def test_a_large_import_skips_usernames_taken_in_the_directory_or_reserved(app, hr, monkeypatch):
    monkeypatch.setattr(services.Lookups, "BULK_USERNAMES", JOINERS)  # usernames read in bulk
    _mappings()
    connection = hr.admin_connection()  # an account itops does not know, and a reserved username
    assert connection.add(f"uid=jdoe,{hr.people_dn}", ["inetOrgPerson"], {"uid": "jdoe", "cn": "X", "sn": "Y"})
    connection.unbind()
    db.session.add(UsernameInUse(username="jdoe2", reserved_until=TODAY + timedelta(days=30)))
    db.session.add(UsernameInUse(username="jdoe3", reserved_until=TODAY - timedelta(days=1)))  # lapsed: free
    db.session.commit()

    preview = csv_io.import_csv(_joiners_csv(), by="hr", dry_run=True).preview
    assert preview.ok and preview.counts["create"] == JOINERS
    assert preview.rows[0].ldap[0]["dn"] == f"uid=jdoe3,{hr.people_dn}"
    outcome = csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    usernames = sorted(outcome.applied["passwords"], key=lambda name: int(name[4:] or 1))
    assert usernames[:3] == ["jdoe3", "jdoe4", "jdoe5"] and len(set(usernames)) == JOINERS
    assert db.session.scalar(db.select(db.func.count()).select_from(UsernameInUse)) == JOINERS + 1  # jdoe3's row reused
    boss = services.find_by_employee_number("B000")
    assert all(p.manager_id == boss.id for p in db.session.scalars(db.select(Person).where(Person.id != boss.id)))

    summary = services.run_due()
    db.session.commit()
    assert summary.done == JOINERS and summary.failed == summary.retrying == 0
    assert len(group_members(hr, "agents")) == JOINERS
    assert len(group_members(hr, "sales")) == JOINERS // 2 == len(group_members(hr, "support"))
    assert all(a.secret_encrypted is None for a in db.session.scalars(db.select(DirectoryAction)))
    assert _can_bind(hr, "jdoe3", outcome.applied["passwords"]["jdoe3"])


def test_joins_that_fail_put_the_joiners_back_in_line_with_their_passwords(app, hr, monkeypatch):
    _mappings()
    outcome = csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    apply = _joins_fail(monkeypatch)
    summary = services.run_due()
    db.session.commit()
    # Each group's first joiner created it; everyone else's join waited and failed.
    assert summary.unreachable and summary.retrying >= JOINERS - 3 and summary.done + summary.retrying == JOINERS
    waiting = list(db.session.scalars(db.select(DirectoryAction).where(DirectoryAction.state == "pending")))
    assert all(a.next_attempt_at and a.secret_encrypted and "unreachable" in a.last_error for a in waiting)
    assert all(a.person.state == PersonState.ACTIVE for a in waiting)  # the account is there, the groups not yet

    monkeypatch.setattr(Gateway, "apply", apply)
    later = max(a.next_attempt_at for a in waiting) + timedelta(seconds=1)
    summary = services.run_due(now=later)
    db.session.commit()
    assert summary.done == len(waiting) and summary.retrying == summary.failed == 0
    assert len(group_members(hr, "agents")) == JOINERS
    actions = list(db.session.scalars(db.select(DirectoryAction).where(DirectoryAction.kind == ActionKind.ONBOARD)))
    assert all(a.state == ActionState.DONE and a.secret_encrypted is None for a in actions)
    for action in waiting[:3]:  # the initial password HR was shown still works: it was not replaced
        username = action.person.username
        assert _can_bind(hr, username, outcome.applied["passwords"][username])


def test_joiners_due_while_the_directory_is_down_wait_for_their_retry(app, hr):
    _mappings()
    csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    summary = _with_the_directory_down(hr, lambda: services.run_due())
    db.session.commit()
    assert summary.unreachable and summary.retrying == 1 and summary.done == 0
    attempts = list(db.session.scalars(db.select(DirectoryAction.attempts).order_by(DirectoryAction.id)))
    assert attempts[0] == 1 and set(attempts[1:]) == {0}  # only the step it tried counts an attempt


def _run_due(through: str) -> dict:
    """One run of the due steps: by services.run_due (writes from a thread of this process) or by
    tasks.run_due_steps (joiners' writes from writer processes)."""
    if through == "processes":
        return tasks.run_due_steps(by="scheduler")
    summary = services.run_due()
    db.session.commit()
    return summary.as_dict()


def test_joiners_go_together_in_a_few_statements_each_with_user_ticket_and_audit(app, hr, make_user):
    _mappings()
    it = make_user("it_staff")
    team = tickets_services.save_team("Desk", email="desk@example.org", member_ids=[it.id], by=it)
    hardware = tickets_services.save_category("Hardware", default_team_id=team.id, default_assignee_id=None, by=it)
    csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    db.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        summary = services.run_due()
    finally:
        db.event.remove(db.engine, "before_cursor_execute", listener)
    db.session.commit()
    assert summary.done == JOINERS and summary.failed == summary.retrying == 0
    # One insert per kind of row for the whole batch, not one per joiner.
    inserts = [" ".join(s.split()[:3]) for s in statements if s.startswith("INSERT")]
    assert len(inserts) < 12, inserts
    # The tickets' category is read once for the batch, not once per ticket.
    assert sum("FROM ticket_categories" in s for s in statements) < 5
    db.session.expire_all()  # what the database has
    people = list(db.session.scalars(db.select(Person).order_by(Person.id)))
    assert all(p.state == PersonState.ACTIVE and p.user is not None and p.provisioning_ticket_id for p in people)
    assert len({p.provisioning_ticket_id for p in people}) == JOINERS
    assert {db.session.get(Ticket, p.provisioning_ticket_id).category_id for p in people} == {hardware.id}
    created = db.session.scalar(db.select(db.func.count()).select_from(AuditEntry).where(
        AuditEntry.action == "directory.account_created"))
    assert created == JOINERS
    assert people[5].user.directory_dn == people[5].dn == f"uid={people[5].username},{hr.people_dn}"


@pytest.mark.parametrize("through", ["thread", "processes"])
def test_a_refused_write_in_a_batch_runs_the_joiners_one_by_one_and_nothing_is_doubled(app, hr, monkeypatch,
                                                                                     through):
    """An account made behind itops' back between the run's read and its write: the add is refused, the
    batch is undone in itops, and the joiners run one by one, converging on the accounts already added."""
    _mappings()
    hr_user = auth_services.create_local_user("hr.lead", "a long enough password", role="hr", display_name="HR")
    outcome = csv_io.import_csv(_joiners_csv(), by=hr_user)  # who the provisioning tickets are filed for
    db.session.commit()
    late = sorted(outcome.applied["passwords"])[JOINERS // 2]
    person = services.find_by_username(late)
    late_dn, submit, failed = f"uid={late},{hr.people_dn}", StepRun.submit, []

    def made_by_hand_meanwhile(self, operations):
        if not failed and any(op.dn == late_dn for op in operations):
            connection = hr.admin_connection()
            assert connection.add(late_dn, ["inetOrgPerson"], {"uid": late, "cn": "Made by hand", "sn": "Hand",
                                                              "employeeNumber": person.employee_number})
            connection.unbind()
            failed.append(late)
        return submit(self, operations)

    monkeypatch.setattr(StepRun, "submit", made_by_hand_meanwhile)
    undone = services._onboard_together
    outcomes = []
    monkeypatch.setattr(services, "_onboard_together", lambda *a, **k: outcomes.append(undone(*a, **k)) or outcomes[-1])

    summary = _run_due(through)
    assert failed and outcomes == [False]  # the batch was undone, then run one by one
    assert summary["done"] == JOINERS and summary["failed"] == summary["retrying"] == 0
    db.session.expire_all()
    assert entry(hr, late)["cn"] == [person.display_name]  # converged by the one-by-one run
    assert len(group_members(hr, "agents")) == JOINERS
    tickets = db.session.scalar(db.select(db.func.count()).select_from(Ticket).where(Ticket.source == "directory"))
    assert tickets == JOINERS
    users = db.session.scalar(db.select(db.func.count()).select_from(User).where(User.source == "directory"))
    assert users == JOINERS
    people = list(db.session.scalars(db.select(Person)))
    assert all(p.user is not None and p.user.username == p.username for p in people)
    # What the undone batch had marked on the people is written again by the one-by-one run.
    assert all(p.state == PersonState.ACTIVE and p.dn == f"uid={p.username},{hr.people_dn}"
               and p.provisioning_ticket_id for p in people)
    assert _can_bind(hr, late, outcome.applied["passwords"][late])


def test_a_long_run_sends_joiners_from_writer_processes(app, hr):
    _mappings()
    outcome = csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    assert JOINERS >= WriterProcesses.MIN_BATCH  # so this run starts them
    summary = _run_due("processes")
    assert summary["done"] == JOINERS and summary["failed"] == summary["retrying"] == 0
    db.session.expire_all()
    people = list(db.session.scalars(db.select(Person)))
    assert all(p.state == PersonState.ACTIVE and p.dn and p.user_id and p.provisioning_ticket_id for p in people)
    assert len(group_members(hr, "agents")) == JOINERS
    some = people[7].username
    assert entry(hr, some)["employeeNumber"] == [people[7].employee_number]
    assert _can_bind(hr, some, outcome.applied["passwords"][some])
    assert all(a.secret_encrypted is None for a in db.session.scalars(db.select(DirectoryAction)))


def test_a_long_run_while_the_directory_is_down_leaves_the_joiners_waiting_and_nothing_half_written(app, hr):
    _mappings()
    csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    summary = _with_the_directory_down(hr, lambda: _run_due("processes"))
    assert summary["directory_unreachable"] and summary["retrying"] == 1 and summary["done"] == 0
    db.session.expire_all()
    assert all(p.state == PersonState.PENDING and p.user_id is None for p in db.session.scalars(db.select(Person)))
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0  # the undone batch left nothing


def test_a_long_runs_joins_go_out_during_the_next_chunk_and_its_steps_wait_for_them(app, hr, monkeypatch):
    """tasks.run_due_steps sends a chunk's group joins while the next chunk runs; the steps are done once
    the joins are recorded, with the run's time, and their initial passwords dropped."""
    _mappings()
    csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    monkeypatch.setattr(tasks, "CHUNK", JOINERS // 3)  # three chunks: joins out while the next one runs
    searches, find_accounts = [], Gateway.find_accounts
    monkeypatch.setattr(Gateway, "find_accounts", lambda self, names: searches.append(
        (threading.current_thread().name.split("_")[0], len(list(names)))) or find_accounts(self, names))
    chunks = []
    summary = tasks.run_due_steps(by="scheduler", on_chunk=lambda chunk: chunks.append(chunk.done))
    assert summary["done"] == JOINERS and summary["failed"] == summary["retrying"] == 0
    assert chunks == [JOINERS // 3] * 3 + [0]
    # The first chunk searched for its accounts itself; the next ones' were searched for ahead, from a thread.
    assert searches == [("MainThread", JOINERS // 3)] + [("directory-read-ahead", JOINERS // 3)] * 2
    db.session.expire_all()
    actions = list(db.session.scalars(db.select(DirectoryAction)))
    assert all(a.state == ActionState.DONE and a.done_at and a.next_attempt_at is None and a.secret_encrypted is None
               for a in actions)
    assert len(group_members(hr, "agents")) == JOINERS and len(group_members(hr, "sales")) == JOINERS // 2


def test_joins_whose_outcome_was_never_recorded_leave_their_steps_to_run_again_and_converge(app, hr):
    """As if the run stopped right after a chunk's commit: its steps wait (the account made, the groups
    perhaps not), become due after JOINS_GRACE and converge, doubling nothing."""
    _mappings()
    outcome = csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    long_run = LongRun(Gateway(app.config["ITOPS_LDAP"], app.config["ITOPS_DIRECTORY"]))
    try:
        summary = services.run_due(long_run=long_run)
        db.session.commit()
    finally:
        long_run.close()  # the joins' outcome is never taken
    assert summary.done == JOINERS
    db.session.expire_all()
    waiting = list(db.session.scalars(db.select(DirectoryAction).where(DirectoryAction.state == "pending")))
    assert len(waiting) >= JOINERS - 3  # all but the joiners who created their groups (no join to wait for)
    assert all(a.secret_encrypted and a.done_at is None and a.person.state == PersonState.ACTIVE for a in waiting)
    assert services.run_due().done == 0  # not due yet
    later = max(a.next_attempt_at for a in waiting) + timedelta(seconds=1)
    assert all(a.next_attempt_at > services.utcnow() + services.JOINS_GRACE - timedelta(minutes=1) for a in waiting)

    summary = services.run_due(now=later)
    db.session.commit()
    assert summary.done == len(waiting) and summary.failed == summary.retrying == 0
    db.session.expire_all()
    assert all(a.state == ActionState.DONE and a.secret_encrypted is None for a in db.session.scalars(
        db.select(DirectoryAction)))
    assert len(group_members(hr, "agents")) == JOINERS
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == JOINERS
    assert db.session.scalar(db.select(db.func.count()).select_from(User).where(User.source == "directory")) == JOINERS
    username = waiting[4].person.username
    assert _can_bind(hr, username, outcome.applied["passwords"][username])  # the password HR was shown


def test_a_long_runs_joins_that_fail_put_their_steps_back_in_line(app, hr, monkeypatch):
    _mappings()
    csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    _joins_fail(monkeypatch)
    summary = tasks.run_due_steps(by="scheduler")
    assert summary["directory_unreachable"] and summary["retrying"] >= JOINERS - 3
    assert summary["done"] + summary["retrying"] == JOINERS
    db.session.expire_all()
    waiting = list(db.session.scalars(db.select(DirectoryAction).where(DirectoryAction.state == "pending")))
    assert len(waiting) == summary["retrying"]
    assert all(a.secret_encrypted and "unreachable" in a.last_error and a.attempts == 1 for a in waiting)


def test_this_process_sends_what_the_writer_processes_have_not_taken_when_it_would_only_wait(app, hr, monkeypatch):
    _mappings()
    outcome = csv_io.import_csv(_joiners_csv(), by="hr")
    db.session.commit()
    monkeypatch.setattr(WriterProcesses, "PROCESSES", 1)  # one writer, still starting while this process is done
    monkeypatch.setattr(WriterProcesses, "GROUP", 1)
    sent_here = []
    apply = Gateway.apply_pipelined
    monkeypatch.setattr(Gateway, "apply_pipelined",  # what the writer process runs is not patched
                        lambda gateway, joiners, stopped: sent_here.extend(ops[0].dn for ops in joiners) or
                        apply(gateway, joiners, stopped))
    summary = tasks.run_due_steps(by="scheduler")
    assert summary["done"] == JOINERS and summary["failed"] == summary["retrying"] == 0
    assert 0 < len(sent_here) < JOINERS and len(set(sent_here)) == len(sent_here)
    db.session.expire_all()
    assert len(group_members(hr, "agents")) == JOINERS
    people = list(db.session.scalars(db.select(Person)))
    assert all(entry(hr, p.username)["employeeNumber"] == [p.employee_number] for p in people)
    some = people[-1].username
    assert _can_bind(hr, some, outcome.applied["passwords"][some])


def _account_add(instance, username: str) -> LdapOperation:
    attributes = {"objectClass": ["inetOrgPerson"], "uid": [username], "cn": [username], "sn": ["Doe"]}
    return LdapOperation("add", f"uid={username},{instance.people_dn}", attributes=attributes)


@contextmanager
def _own_gateway(app):
    """A gateway of its own, closed afterwards: ldap3's receiver thread must end with it (one that spun on the
    closed socket once slowed the whole suite down)."""
    gateway = Gateway(app.config["ITOPS_LDAP"], app.config["ITOPS_DIRECTORY"])
    try:
        yield gateway
    finally:
        gateway.close()
        for receiver in [t for t in threading.enumerate() if isinstance(t, AsyncStrategy.ReceiverSocketThread)]:
            receiver.join(5)
            assert not receiver.is_alive()


def _pipelined(app, joiners, stopped=None):
    with _own_gateway(app) as gateway:
        return gateway.apply_pipelined(joiners, stopped or threading.Event())


def test_a_pipelined_add_sends_the_bytes_of_ldap3s_add_and_slapd_takes_it(app, hr, monkeypatch):
    sent, encode = [], ldap3_strategy.encode
    monkeypatch.setattr(ldap3_strategy, "encode", lambda message: sent.append(encode(message)) or sent[-1])
    adds = {way: LdapOperation("add", f"uid={way},{hr.people_dn}", attributes={
        "objectClass": ["inetOrgPerson"], "uid": [way], "cn": ["Zoë Ødegård"], "sn": ["Ødegård"],
        "title": ["*)(uid=*\\"], "description": ["x" * 70_000]}) for way in ("byldap3", "byber")}
    with _own_gateway(app) as gateway:
        connection = gateway._connection(ldap.ASYNC)
        sent.clear()  # the bind
        ldap3_id = Gateway._send(connection, adds["byldap3"])
        assert connection.get_response(ldap3_id, timeout=10)[1]["result"] == 0
        message_id = ldap._send_add_pipelined(connection, adds["byber"])
        assert connection.get_response(message_id, timeout=10)[1]["result"] == 0
        [ldap3_bytes] = sent  # ldap3's encoder had no part in the second
    attributes = dict(adds["byldap3"].attributes)
    attributes["objectClass"] = attributes.pop("objectClass")  # ldap3 puts it last
    assert ldap3_bytes == ldap_wire.add_request(ldap3_id, adds["byldap3"].dn, attributes)
    by_ldap3, by_ber = entry(hr, "byldap3"), entry(hr, "byber")
    assert by_ber["title"] == ["*)(uid=*\\"] and by_ber["cn"] == ["Zoë Ødegård"]
    assert {k: v for k, v in by_ber.items() if k not in ("uid", "dn")} == \
        {k: v for k, v in by_ldap3.items() if k not in ("uid", "dn")}


def test_pipelined_adds_are_all_applied_and_a_joiners_own_operations_go_in_order(app, hr):
    count = ldap.PIPELINE_WINDOW * 3 + 1  # more than the window holds, so answers are taken while sending
    joiners = [[_account_add(hr, f"pipe{i}")] for i in range(count)]
    # A joiner of two operations: the modify needs the add before it.
    joiners.insert(5, [_account_add(hr, "pipe-two"),
                       ldap.modify(f"uid=pipe-two,{hr.people_dn}", title=("replace", ["Agent"]))])
    stopped = threading.Event()
    assert _pipelined(app, joiners, stopped) == [None] * (count + 1)
    assert not stopped.is_set()
    assert all(entry(hr, f"pipe{i}") for i in range(count))
    assert entry(hr, "pipe-two")["title"] == ["Agent"]


def test_a_refused_pipelined_add_stops_the_batch_and_each_joiner_gets_its_own_outcome(app, hr):
    _pipelined(app, [[_account_add(hr, "taken")]])
    names = [f"refused{i}" for i in range(40)]
    names[20] = "taken"  # already there: refused
    stopped = threading.Event()
    outcomes = _pipelined(app, [[_account_add(hr, name)] for name in names], stopped)
    assert stopped.is_set()
    assert isinstance(outcomes[20], DirectoryRefused) and "entryAlreadyExists" in str(outcomes[20])
    assert outcomes[:20] == [None] * 20 and all(entry(hr, name) for name in names[:20])
    # Those in flight when the refusal came back were sent and applied; none after them was sent.
    sent = [name for name, outcome in zip(names[21:], outcomes[21:]) if outcome is None]
    assert all(isinstance(outcome, NotSent) for outcome in outcomes[21 + len(sent):])
    assert len(sent) < ldap.PIPELINE_WINDOW
    assert [name for name in names[21:] if entry(hr, name)] == sent
    # Another sender of the batch that failed first: nothing is sent at all.
    assert all(isinstance(o, NotSent) for o in _pipelined(app, [[_account_add(hr, "late")]], stopped))
    assert entry(hr, "late") is None


def test_pipelined_adds_to_a_stopped_directory_are_unreachable_not_lost(app, hr):
    outcomes = _with_the_directory_down(hr, lambda: _pipelined(app, [[_account_add(hr, f"down{i}")] for i in range(5)]))
    assert isinstance(outcomes[0], DirectoryUnreachable)
    assert all(isinstance(outcome, NotSent) for outcome in outcomes[1:])
    assert entry(hr, "down0") is None


def test_pipelined_adds_in_flight_when_the_directory_goes_away_are_unreachable(app, hr, monkeypatch):
    send, sent = ldap._send_add_pipelined, []

    def send_then_stop(connection, operation):
        sent.append(operation.dn)
        message_id = send(connection, operation)
        if len(sent) == 10:
            hr.stop()  # with adds still in flight
        return message_id

    monkeypatch.setattr(ldap, "_send_add_pipelined", send_then_stop)
    try:
        outcomes = _pipelined(app, [[_account_add(hr, f"gone{i}")] for i in range(30)])
    finally:
        directory_support.start_slapd(hr.workdir, port=hr.port, admin_password=directory_support.ADMIN_PASSWORD)
    # In order: applied (answered before the loss), unreachable (retried later, never taken as applied: those
    # in flight, and one whose send found the connection gone), then not sent. The loss is seen when an answer
    # is awaited or a send fails, at most a window later.
    kinds = ["applied" if o is None else "unreachable" if isinstance(o, DirectoryUnreachable) else
             "not sent" if isinstance(o, NotSent) else repr(o) for o in outcomes]
    assert kinds == sorted(kinds, key=["applied", "unreachable", "not sent"].index)
    assert "unreachable" in kinds and kinds.index("unreachable") <= 10
    assert 10 <= len(sent) <= 10 + ldap.PIPELINE_WINDOW and kinds.count("not sent") >= 30 - len(sent) - 1
    assert all(entry(hr, f"gone{i}") for i, kind in enumerate(kinds) if kind == "applied")
    assert not any(entry(hr, f"gone{i}") for i, kind in enumerate(kinds) if kind == "not sent")
