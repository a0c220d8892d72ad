"""Joiners against a real slapd: the account, username rules, groups, sign-in, provisioning ticket, bad input."""
from __future__ import annotations

from datetime import timedelta

import pytest

from itops.core.auth import services as auth_services
from itops.core.errors import Conflict, ValidationFailed
from itops.directory import services
from itops.directory.choices import ActionState, PersonState
from itops.extensions import db
from tests.integration import directory_support
from tests.integration.directory_support import TODAY, entry, group_members, joiner, onboard

hr, own_slapd = directory_support.hr, directory_support.own_slapd  # this module's slapd and settings


def test_a_joiner_starting_today_gets_an_account_groups_and_can_sign_in(app, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales", "staff"], by="admin")
    services.save_group_mapping(department="Sales", title="Account manager", groups=["crm-users"], by="admin")
    result = onboard()

    assert result.username == "jdoe"
    assert result.person.state == PersonState.ACTIVE
    assert result.action.state == ActionState.DONE and result.action.secret_encrypted is None
    account = entry(hr, "jdoe")
    assert account["dn"] == f"uid=jdoe,{hr.people_dn}"
    assert account["employeeNumber"] == ["E1"] and account["departmentNumber"] == ["Sales"]
    assert account["mail"] == ["E1@example.org"] and account["l"] == ["Berlin"]
    assert str(account["userPassword"][0]).lstrip("b'").startswith("{SSHA}")  # never the clear password
    for group in ("sales", "staff", "crm-users"):
        assert f"uid=jdoe,{hr.people_dn}".lower() in group_members(hr, group)

    user = auth_services.authenticate("jdoe", result.initial_password)
    assert user.id == result.person.user_id and user.role == "employee"


def test_the_initial_password_is_never_stored_or_logged_in_clear(app, hr, caplog):
    caplog.set_level("DEBUG")
    result = onboard(joiner(start_date=TODAY + timedelta(days=3)))
    stored = result.action.secret_encrypted
    assert stored and result.initial_password not in stored
    assert result.initial_password not in caplog.text
    assert result.initial_password not in repr(result.action.result)


def test_username_collisions_and_transliteration(app, hr):
    assert onboard(joiner("E1")).username == "jdoe"
    assert onboard(joiner("E2")).username == "jdoe2"
    assert onboard(joiner("E3")).username == "jdoe3"
    assert onboard(joiner("E4", "Zoë", "Ødegård")).username == "zodegard"
    assert onboard(joiner("E5", "Łukasz", "Straße-Müller")).username == "lstrassemuller"
    assert onboard(joiner("E6", "Ægir", "O'Brien")).username == "aobrien"
    assert entry(hr, "zodegard")["cn"] == ["Zoë Ødegård"]


def test_an_account_made_outside_itops_pushes_the_username_on(app, hr):
    connection = hr.admin_connection()
    connection.add(f"uid=jdoe,{hr.people_dn}", ["inetOrgPerson"], {"cn": "Other", "sn": "Other", "uid": "jdoe"})
    connection.unbind()
    assert onboard().username == "jdoe2"


def test_a_name_with_no_ascii_form_is_refused_and_nothing_is_written(app, hr):
    with pytest.raises(ValidationFailed, match="No username"):
        services.onboard(joiner(given="山田", family="太郎"), by="hr-test")
    db.session.rollback()
    assert services.find_by_employee_number("E1") is None


@pytest.mark.parametrize("values, message", [
    (joiner(end_date=TODAY - timedelta(days=5)), "before the start date"),
    (joiner(manager_employee_number="NOPE"), "manager does not exist"),
    (joiner(email="not-an-address"), "not an email address"),
    (joiner(family="Do\x00e"), "control character"),
    (joiner(number=""), "employee number is required"),
])
def test_bad_joiners_are_refused_with_a_clear_error(app, hr, values, message):
    with pytest.raises(ValidationFailed, match=message):
        services.onboard(values, by="hr-test")
    db.session.rollback()
    assert entry(hr, "jdoe") is None


def test_duplicate_employee_numbers_are_refused(app, hr):
    onboard()
    with pytest.raises(Conflict, match="E1 already belongs"):
        services.onboard(joiner(given="Jane"), by="hr-test")


def test_a_department_without_mapping_is_a_warning_not_an_error(app, hr):
    result = onboard(joiner(department="Nowhere"))
    assert any("Nowhere" in w for w in result.warnings)
    assert result.person.state == PersonState.ACTIVE


def test_ldap_metacharacters_are_stored_literally_and_never_inject(app, hr):
    services.save_group_mapping(department="R*D (lab)\\x", title=None, groups=["lab (r&d)*"], by="admin")
    result = onboard(joiner(given="Jo*n", family="Doe)(uid=*", department="R*D (lab)\\x", title="*)(|(cn=*",
                            location="\\2a"))
    assert result.username == "jdoeuid"
    account = entry(hr, "jdoeuid")
    assert account["departmentNumber"] == ["R*D (lab)\\x"] and account["title"] == ["*)(|(cn=*"]
    assert account["l"] == ["\\2a"] and account["sn"] == ["Doe)(uid=*"]
    assert f"uid=jdoeuid,{hr.people_dn}".lower() in group_members(hr, "lab (r&d)*")
    # Converging again reads the same values back and finds nothing to do.
    again = services.move(result.person, effective=TODAY, by="hr", title="plain")
    assert again.state == ActionState.DONE and entry(hr, "jdoeuid")["title"] == ["plain"]


def test_a_future_joiner_waits_for_the_start_date(app, hr):
    result = onboard(joiner(start_date=TODAY + timedelta(days=7)))
    assert result.person.state == PersonState.PENDING and entry(hr, "jdoe") is None
    assert services.run_due().done == 0
    summary = services.run_due(today=TODAY + timedelta(days=7))
    db.session.commit()
    assert summary.done == 1 and entry(hr, "jdoe") is not None
    assert result.person.state == PersonState.ACTIVE


def test_the_dry_run_of_a_joiner_shows_the_exact_operations_and_writes_nothing(app, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    plan = services.preview_onboard(joiner())
    assert [op["op"] for op in plan.ldap] == ["add", "add"]
    assert plan.ldap[0]["dn"] == f"uid=jdoe,{hr.people_dn}"
    assert plan.ldap[0]["attributes"]["userPassword"] == ["***"]
    assert plan.ldap[1] == {"op": "add", "dn": f"cn=sales,{hr.groups_dn}",
                            "attributes": {"objectClass": ["groupOfNames"], "cn": ["sales"],
                                           "member": [f"uid=jdoe,{hr.people_dn}"]}}
    assert any("provisioning ticket" in line for line in plan.itops)
    assert services.find_by_employee_number("E1") is None and entry(hr, "jdoe") is None
