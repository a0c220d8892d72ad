"""Batches against a real slapd: the HR CSV import, reconcile with orphans and drift, the mass-change guard, the CLI."""
from __future__ import annotations

from datetime import timedelta

import pytest
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from itops.core.errors import Forbidden
from itops.directory import csv_io, reconcile, services
from itops.directory.choices import ActionState, BatchState, PersonState
from itops.directory.models import Batch, DirectoryAction, Person
from itops.extensions import db
from tests.integration import directory_support
from tests.integration.directory_support import TODAY, configure, entry, group_members, joiner, onboard

HEADER = "employee_number,given_name,family_name,email,department,title,manager_employee_number,start_date,end_date\n"

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(row + "\n" for row in rows)).encode()


def _count(model) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model))


# --- HR CSV import -----------------------------------------------------------------------------

def test_a_csv_with_bad_rows_shows_every_error_and_imports_nothing(app, hr):
    onboard(joiner("E9"))
    data = _csv(f"E1,Ann,Able,ann@example.org,Sales,Rep,,{TODAY},",
                f"E1,Ann,Again,ann2@example.org,Sales,Rep,,{TODAY},",
                f"E2,Bob,Baker,bob@example.org,Sales,Rep,NOPE,{TODAY},",
                f"E3,山田,太郎,yamada@example.org,Sales,Rep,,{TODAY},",
                f"E4,Cy,Cole,cy@example.org,Sales,Rep,,{TODAY},{TODAY - timedelta(days=1)}",
                f"E5,Di,Dot,not-an-email,Sales,Rep,,{TODAY},",
                f"E6,Ed,Eel,ed@example.org,Sales,Rep,E7,{TODAY},",
                f"E7,Fay,Fox,fay@example.org,Sales,Rep,E6,{TODAY},",
                "E8,Gus,Gray,gus@example.org,Sales,Rep,,not-a-date,",
                f"E10,Hal,Hu\x00t,hal@example.org,Sales,Rep,,{TODAY},")
    outcome = csv_io.import_csv(data, by="hr")
    errors = {row.number: " ".join(row.errors) for row in outcome.preview.error_rows}
    assert "also on line 3" in errors[2] and "also on line 2" in errors[3]
    assert "manager NOPE" in errors[4]
    assert "No username" in errors[5]
    assert "before the start date" in errors[6]
    assert "not an email address" in errors[7]
    assert "reporting loop" in errors[8] and "reporting loop" in errors[9]
    assert "not a date" in errors[10]
    assert "control character" in errors[11]
    assert outcome.applied is None
    db.session.rollback()
    assert _count(Person) == 1


def test_a_good_csv_creates_joiners_movers_and_leavers_all_at_once(app, hr):
    services.save_group_mapping(department="Support", title=None, groups=["support"], by="admin")
    mover = onboard(joiner("E1", "Mo", "Ver")).person
    leaver = onboard(joiner("E2", "Lea", "Ver")).person
    data = _csv(f"E1,Mo,Ver,E1@example.org,Support,Agent,E3,{TODAY},",
                f"E2,Lea,Ver,E2@example.org,Sales,Account manager,,{TODAY},{TODAY + timedelta(days=10)}",
                f"E3,Nu,Boss,nu@example.org,Support,Lead,,{TODAY},",
                f"E4,Fu,Ture,fu@example.org,Support,Agent,E3,{TODAY + timedelta(days=5)},")
    preview = csv_io.import_csv(data, by="hr", dry_run=True).preview
    assert preview.ok and preview.counts["create"] == 2 and preview.counts["update"] == 2
    assert any("department: Sales -> Support" in c for c in preview.rows[0].changes)
    assert {(op["op"], op["dn"].split(",")[0]) for op in preview.rows[0].ldap} == {
        ("modify", "uid=mver"), ("add", "cn=support")}
    assert [op["op"] for op in preview.rows[2].ldap] == ["add", "add"]  # the new boss, and support's first member
    assert preview.rows[1].ldap == []  # leaves in 10 days: nothing changes in the directory yet
    assert services.find_by_employee_number("E3") is None  # a dry run writes nothing

    outcome = csv_io.import_csv(data, by="hr")
    db.session.commit()
    assert set(outcome.applied["passwords"]) == {"nboss", "fture"}
    services.run_due()
    db.session.commit()
    boss = services.find_by_employee_number("E3")
    assert boss.state == PersonState.ACTIVE and mover.manager_id == boss.id and mover.department == "Support"
    assert f"uid=mver,{hr.people_dn}".lower() in group_members(hr, "support")
    assert leaver.state == PersonState.LEAVING and leaver.end_date == TODAY + timedelta(days=10)
    assert services.find_by_employee_number("E4").state == PersonState.PENDING

    # The same file again changes nothing.
    again = csv_io.import_csv(data, by="hr", dry_run=True).preview
    assert again.counts["unchanged"] == 4


def test_the_header_must_name_known_columns(app, hr):
    with pytest.raises(Exception, match="lacks employee_number"):
        csv_io.import_csv(b"name,start_date\nx,2026-01-01\n", by="hr")


# --- the mass-change guard ---------------------------------------------------------------------

def test_a_run_disabling_more_than_the_limit_holds_everything_for_approval(app, hr, make_user):
    configure(app, guard_accounts=3, guard_percent=100)
    people = [onboard(joiner(f"E{i}", "Pat", f"Person{i}")).person for i in range(5)]
    for person in people:
        services.offboard(person, end_date=TODAY + timedelta(days=1), by="hr")
    db.session.commit()

    summary = services.run_due(today=TODAY + timedelta(days=1))
    db.session.commit()
    assert summary.held == 5 and summary.done == 0
    assert all(entry(hr, p.username)["dn"].endswith(hr.people_dn) for p in people)  # nothing changed
    batch = db.session.get(Batch, summary.held_batch_id)
    assert batch.state == BatchState.AWAITING_APPROVAL

    with pytest.raises(Forbidden):
        services.approve_batch(batch, by=make_user("hr"))
    services.approve_batch(batch, by=make_user("admin"))
    db.session.commit()
    summary = services.run_due(today=TODAY + timedelta(days=1))
    db.session.commit()
    assert summary.done == 5
    assert all(entry(hr, p.username)["dn"].endswith(hr.disabled_dn) for p in people)


def test_the_share_of_accounts_counts_too_and_a_rejected_batch_keeps_everyone(app, hr):
    configure(app, guard_accounts=100, guard_percent=5)
    people = [onboard(joiner(f"E{i}", "Pat", f"Person{i}")).person for i in range(4)]
    for person in people[:2]:  # 2 of 4 live accounts is 50%
        services.offboard(person, end_date=TODAY + timedelta(days=1), by="hr")
    summary = services.run_due(today=TODAY + timedelta(days=1))
    assert summary.held == 2
    services.reject_batch(db.session.get(Batch, summary.held_batch_id), by="admin-cli")
    db.session.commit()
    assert all(p.state == PersonState.ACTIVE and p.end_date is None for p in people)
    assert services.run_due(today=TODAY + timedelta(days=1)).done == 0


def test_an_import_over_the_guard_is_held_unapplied_until_approved(app, hr):
    configure(app, guard_accounts=1, guard_percent=100)
    onboard(joiner("E1", "Ann", "Able"))
    onboard(joiner("E2", "Bob", "Baker"))
    end = TODAY + timedelta(days=3)
    data = _csv(f"E1,Ann,Able,E1@example.org,Sales,Account manager,,{TODAY},{end}",
                f"E2,Bob,Baker,E2@example.org,Sales,Account manager,,{TODAY},{end}")
    outcome = csv_io.import_csv(data, by="hr")
    db.session.commit()
    assert outcome.held_batch is not None and outcome.applied is None
    assert services.find_by_employee_number("E1").end_date is None
    services.approve_batch(outcome.held_batch, by="admin-cli")
    db.session.commit()
    assert services.find_by_employee_number("E1").end_date == end
    assert outcome.held_batch.state == BatchState.APPLIED
    summary = services.run_due(today=end)
    assert summary.done == 2 and summary.held == 0  # approved once, not held again


# --- reconcile ---------------------------------------------------------------------------------

def test_reconcile_reports_orphans_missing_accounts_and_drift_and_applies_only_what_is_confirmed(app, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    drifted = onboard(joiner("E1", "Dri", "Fted")).person
    grouped = onboard(joiner("E2", "Gro", "Uped")).person
    missing = onboard(joiner("E3", "Mis", "Sing")).person
    clean = onboard(joiner("E4", "Cle", "An")).person
    connection = hr.admin_connection()
    connection.modify(f"uid=dfted,{hr.people_dn}", {"title": [(MODIFY_REPLACE, ["Hacker"])]})
    connection.modify(f"cn=sales,{hr.groups_dn}", {"member": [(MODIFY_DELETE, [f"uid=guped,{hr.people_dn}"])]})
    connection.delete(f"uid=msing,{hr.people_dn}")
    connection.add(f"uid=intruder,{hr.people_dn}", ["inetOrgPerson"], {"cn": "In", "sn": "Truder", "uid": "intruder"})
    connection.modify(f"cn=sales,{hr.groups_dn}", {"member": [(MODIFY_ADD, [f"uid=intruder,{hr.people_dn}"])]})
    connection.unbind()

    report = reconcile.reconcile()
    kinds = {f.key: f.kind for f in report.findings}
    assert kinds == {f"person:{drifted.id}": "attributes", f"person:{grouped.id}": "groups",
                     f"person:{missing.id}": "missing", "orphan:intruder": "orphan"}
    drift = next(f for f in report.findings if f.kind == "attributes")
    assert drift.operations == [{"op": "modify", "dn": f"uid=dfted,{hr.people_dn}",
                                 "changes": {"title": ["replace", ["Account manager"]]}}]
    assert f"person:{clean.id}" not in kinds

    outcome = reconcile.apply(report, {f"person:{drifted.id}", f"person:{missing.id}"}, by="admin-cli")
    db.session.commit()
    assert entry(hr, "dfted")["title"] == ["Account manager"]
    assert entry(hr, "msing") is not None and set(outcome.passwords) == {"msing"}
    assert f"uid=guped,{hr.people_dn}".lower() not in group_members(hr, "sales")  # not confirmed: left alone
    assert entry(hr, "intruder")["dn"].endswith(hr.people_dn)

    outcome = reconcile.apply(reconcile.reconcile(), {f"person:{grouped.id}", "orphan:intruder"}, by="admin-cli")
    db.session.commit()
    assert entry(hr, "intruder")["dn"] == f"uid=intruder,{hr.disabled_dn}"
    assert f"uid=guped,{hr.people_dn}".lower() in group_members(hr, "sales")
    assert reconcile.reconcile().findings == []


def test_reconcile_with_progress_through_the_cli(app, hr):
    onboard(joiner("E1"))
    connection = hr.admin_connection()
    connection.add(f"uid=stray,{hr.people_dn}", ["inetOrgPerson"], {"cn": "St", "sn": "Ray", "uid": "stray"})
    connection.unbind()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["itops", "directory", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "orphan:stray" in result.output and "orphan: 1" in result.output
    result = runner.invoke(args=["itops", "directory", "reconcile", "--apply", "--yes"])
    assert result.exit_code == 0, result.output
    assert entry(hr, "stray")["dn"].endswith(hr.disabled_dn)


def test_cli_import_and_run_due(app, hr, tmp_path):
    path = tmp_path / "hr.csv"
    path.write_bytes(_csv(f"E1,Ann,Able,ann@example.org,Sales,Rep,,{TODAY},"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["itops", "directory", "import-csv", str(path), "--dry-run"])
    assert result.exit_code == 0 and "joiner Ann Able" in result.output
    result = runner.invoke(args=["itops", "directory", "import-csv", str(path)])
    assert result.exit_code == 0, result.output
    assert "initial password for aable:" in result.output
    result = runner.invoke(args=["itops", "directory", "run-due"])
    assert result.exit_code == 0, result.output
    assert "done: 1" in result.output and entry(hr, "aable") is not None
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv(f"E2,Bo,,bo@example.org,Sales,Rep,,{TODAY},"))
    result = runner.invoke(args=["itops", "directory", "import-csv", str(bad)])
    assert result.exit_code == 1 and "family name is required" in result.output
    assert db.session.scalar(db.select(db.func.count()).select_from(DirectoryAction)
                             .where(DirectoryAction.state == ActionState.PENDING)) == 0
