"""Movers, leavers, cancel, restore and delete after grace against a real slapd; assets and tickets follow."""
from __future__ import annotations

from datetime import timedelta

import pytest

from itops.assets import services as assets_services
from itops.core.auth import services as auth_services
from itops.core.database import utcnow
from itops.core.errors import Conflict
from itops.core.outbox import OutboxMessage
from itops.directory import services
from itops.directory.choices import ActionKind, ActionState, PersonState
from itops.directory.models import DirectoryAction, KitReservation
from itops.extensions import db
from itops.tickets import services as tickets_services
from tests.integration import directory_support
from tests.integration.directory_support import TODAY, entry, group_members, joiner, onboard

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings


def _actions(person, kind):
    return list(db.session.scalars(db.select(DirectoryAction).where(DirectoryAction.person_id == person.id,
                                                                   DirectoryAction.kind == kind)))


@pytest.fixture
def mapped(app):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    services.save_group_mapping(department="Support", title=None, groups=["support"], by="admin")
    services.save_group_mapping(department="Support", title="Lead", groups=["leads"], by="admin")
    db.session.commit()


def test_a_mover_on_a_date_changes_groups_and_attributes_then(app, hr, mapped):
    boss = onboard(joiner("B1", "Berta", "Boss", department="Support", title="Lead")).person
    person = onboard().person
    action = services.move(person, effective=TODAY + timedelta(days=2), by="hr", department="Support", title="Lead",
                           manager=boss)
    db.session.commit()
    assert action.state == ActionState.PENDING and person.department == "Sales"
    preview = services.preview_action(action)
    assert {(op["op"], op["dn"].split(",")[0]) for op in preview.ldap} == {
        ("modify", "uid=jdoe"), ("modify", "cn=support"), ("modify", "cn=leads"), ("modify", "cn=sales")}

    services.run_due(today=TODAY + timedelta(days=2))
    db.session.commit()
    dn = f"uid=jdoe,{hr.people_dn}".lower()
    account = entry(hr, "jdoe")
    assert account["departmentNumber"] == ["Support"] and account["title"] == ["Lead"]
    assert account["manager"] == [f"uid=bboss,{hr.people_dn}"]
    assert dn in group_members(hr, "support") and dn in group_members(hr, "leads")
    assert dn not in group_members(hr, "sales")
    assert person.department == "Support" and action.state == ActionState.DONE
    # Converged: the same step planned again has nothing to send.
    assert services.preview_action(action).ldap == []


def test_a_reporting_loop_is_refused(app, hr):
    a = onboard(joiner("A1", "Anna", "Alpha")).person
    b = onboard(joiner("B1", "Bert", "Beta", manager=a)).person
    with pytest.raises(Exception, match="reporting loop"):
        services.move(a, effective=TODAY, by="hr", manager=b)
    with pytest.raises(Exception, match="reporting loop"):
        services.move(a, effective=TODAY, by="hr", manager=a)


def test_a_leaver_is_disabled_on_the_end_date_with_sessions_tokens_assets_and_one_return_ticket(
        app, hr, mapped, make_user, make_asset):
    hr_user = make_user("hr")
    result = services.onboard(joiner(), by=hr_user)
    db.session.commit()
    person, password = result.person, result.initial_password
    user = auth_services.authenticate("jdoe", password)
    token = auth_services.issue_token(user, "laptop").secret
    version = user.session_version
    laptop = make_asset("laptop", name="jdoe-laptop", holder=user)
    phone = make_asset("mobile_phone", name="jdoe-phone", holder=user)

    action = services.offboard(person, end_date=TODAY + timedelta(days=1), by=hr_user)
    db.session.commit()
    assert person.state == PersonState.LEAVING and action.state == ActionState.PENDING
    assert entry(hr, "jdoe")["dn"].endswith(hr.people_dn)

    services.run_due(today=TODAY + timedelta(days=1))
    db.session.commit()
    account = entry(hr, "jdoe")
    assert account["dn"] == f"uid=jdoe,{hr.disabled_dn}"
    assert account["pwdAccountLockedTime"] and account.get("memberOf", []) == []
    assert f"uid=jdoe,{hr.people_dn}".lower() not in group_members(hr, "sales")
    assert person.state == PersonState.DISABLED
    assert user.session_version > version and not user.active
    assert auth_services.user_for_token(token) is None
    with pytest.raises(auth_services.AuthenticationFailed):
        auth_services.authenticate("jdoe", password)

    assert {laptop.status, phone.status} == {"pending_return"}
    ticket = tickets_services.get_ticket(person.return_ticket_id)
    assert laptop.tag in ticket.body and phone.tag in ticket.body and ticket.requester_id == hr_user.id
    assert ticket.source == "directory" and ticket.is_open
    [delete_step] = _actions(person, ActionKind.DELETE)
    assert delete_step.effective_date == TODAY + timedelta(days=30)

    # Running the leaver again changes nothing and opens no second ticket.
    assert services.preview_action(action).ldap == []

    it = make_user("it_staff")
    assets_services.checkin(laptop, by=it)
    db.session.commit()
    assert ticket.is_open
    assets_services.checkin(phone, by=it)
    db.session.commit()
    assert ticket.status == "resolved"


def test_cancel_a_leaver_before_the_date(app, hr):
    person = onboard().person
    action = services.offboard(person, end_date=TODAY + timedelta(days=5), by="hr")
    services.offboard(person, end_date=TODAY + timedelta(days=6), by="hr")  # moves the one step
    assert len(_actions(person, ActionKind.OFFBOARD)) == 1 and action.effective_date == TODAY + timedelta(days=6)
    services.cancel_offboard(person, by="hr")
    db.session.commit()
    assert person.state == PersonState.ACTIVE and person.end_date is None and action.state == ActionState.CANCELLED
    assert services.run_due(today=TODAY + timedelta(days=7)).done == 0
    assert entry(hr, "jdoe")["dn"].endswith(hr.people_dn)


def test_restore_within_grace_then_delete_after_grace_keeps_the_username(app, hr, mapped):
    person = onboard().person
    services.offboard(person, end_date=TODAY, by="hr")
    db.session.commit()
    assert person.state == PersonState.DISABLED

    restored = services.restore(person, by="hr")
    db.session.commit()
    assert person.state == PersonState.ACTIVE and restored.action.state == ActionState.DONE
    account = entry(hr, "jdoe")
    assert account["dn"] == f"uid=jdoe,{hr.people_dn}" and not account.get("pwdAccountLockedTime")
    assert f"uid=jdoe,{hr.people_dn}".lower() in group_members(hr, "sales")
    assert auth_services.authenticate("jdoe", restored.initial_password).username == "jdoe"
    assert [a.state for a in _actions(person, ActionKind.DELETE)] == [ActionState.CANCELLED]

    services.offboard(person, end_date=TODAY, by="hr")
    db.session.commit()
    assert services.run_due(today=TODAY + timedelta(days=29)).done == 0
    summary = services.run_due(today=TODAY + timedelta(days=30))
    db.session.commit()
    assert summary.done == 1 and person.state == PersonState.DELETED and entry(hr, "jdoe") is None
    with pytest.raises(Conflict):
        services.restore(person, by="hr")
    # Within the retention period nobody else gets jdoe.
    assert onboard(joiner("E2")).username == "jdoe2"


def test_restore_after_the_grace_period_is_refused(app, hr):
    person = onboard().person
    services.offboard(person, end_date=TODAY, by="hr")
    person.disabled_at = utcnow() - timedelta(days=31)
    with pytest.raises(Conflict, match="grace period"):
        services.restore(person, by="hr")


def test_a_joiner_gets_one_provisioning_ticket_with_the_kit_and_reserved_assets(app, hr, make_user, make_asset):
    services.save_kit_template("Sales", [{"kind": "laptop", "model": "ThinkPad T14"}, {"kind": "mobile_phone"},
                                         {"kind": "desk_phone"}], by="admin")
    stock = make_asset("laptop", name="spare-t14", model="ThinkPad T14")
    make_asset("laptop", name="spare-mac", model="MacBook Air")
    phone = make_asset("mobile_phone", name="spare-pixel")
    hr_user = make_user("hr")
    result = services.onboard(joiner(), by=hr_user)
    db.session.commit()
    ticket = tickets_services.get_ticket(result.person.provisioning_ticket_id)
    assert ticket.title == "Prepare equipment for John Doe" and ticket.requester_id == hr_user.id
    assert f"reserved {stock.tag}" in ticket.body and f"reserved {phone.tag}" in ticket.body
    assert "desk phone: none in stock" in ticket.body
    assert {a.id for a in services.kit_reserved_for(result.person)} == {stock.id, phone.id}

    # A second joiner does not get the same assets; re-running onboarding opens no second ticket.
    second = services.onboard(joiner("E2"), by=hr_user)
    db.session.commit()
    assert "none in stock" in tickets_services.get_ticket(second.person.provisioning_ticket_id).body
    assert db.session.scalar(db.select(db.func.count()).select_from(KitReservation)) == 2
    services.run_step(result.action, now=utcnow(), by="test")
    db.session.commit()
    assert result.person.provisioning_ticket_id == ticket.id


def test_the_provisioning_ticket_goes_to_the_hardware_team_and_hr_gets_no_mail_for_it(app, hr, make_user):
    it = make_user("it_staff")
    team = tickets_services.save_team("Desk", email="desk@example.org", member_ids=[it.id], by=it)
    tickets_services.save_category("Hardware", default_team_id=team.id, default_assignee_id=None, by=it)
    hr_user = make_user("hr", email="hr.lead@example.org")
    result = services.onboard(joiner(), by=hr_user)
    db.session.commit()
    ticket = tickets_services.get_ticket(result.person.provisioning_ticket_id)
    assert ticket.category.name == "Hardware" and ticket.team_id == team.id  # ITOPS_DIRECTORY_CATEGORY
    mailed = {(m.to_address, m.subject.split("] ", 1)[1]) for m in db.session.scalars(db.select(OutboxMessage))}
    assert ("desk@example.org", "New ticket") in mailed  # IT hears of it
    assert not any(to == hr_user.email for to, _ in mailed)  # HR sees it on the person's page instead


def test_a_kit_reservation_lapses_a_month_after_the_start_date(app, hr, make_asset):
    services.save_kit_template("Sales", [{"kind": "laptop"}], by="admin")
    spare = make_asset("laptop", name="spare")
    first = onboard(joiner("E1"))
    assert [a.id for a in services.kit_reserved_for(first.person)] == [spare.id]
    first.person.start_date = TODAY - timedelta(days=31)  # the spare was never handed over
    second = onboard(joiner("E2"))
    assert [a.id for a in services.kit_reserved_for(second.person)] == [spare.id]
    assert services.kit_reserved_for(first.person) == []


def test_a_step_the_directory_refuses_fails_clearly_and_can_be_retried(app, hr):
    person = onboard(joiner(start_date=TODAY + timedelta(days=1))).person
    connection = hr.admin_connection()  # someone else's account took the username meanwhile
    connection.add(f"uid=jdoe,{hr.people_dn}", ["inetOrgPerson"], {"cn": "X", "sn": "X", "uid": "jdoe",
                                                                    "employeeNumber": "OTHER"})
    connection.unbind()
    summary = services.run_due(today=TODAY + timedelta(days=1))
    db.session.commit()
    [step] = _actions(person, ActionKind.ONBOARD)
    assert summary.failed == 1 and step.state == ActionState.FAILED
    assert "belongs to employee number OTHER" in step.last_error and step.secret_encrypted
    connection = hr.admin_connection()
    connection.delete(f"uid=jdoe,{hr.people_dn}")
    connection.unbind()
    step.effective_date = TODAY
    services.retry_step(step, by="hr")
    db.session.commit()
    assert step.state == ActionState.DONE and person.state == PersonState.ACTIVE


def test_run_due_without_a_directory_is_refused_and_touches_nothing(app):
    with pytest.raises(Conflict, match="No directory is configured"):
        services.run_due()
