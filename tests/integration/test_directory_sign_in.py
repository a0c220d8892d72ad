"""Directory sign-in by LDAP bind against a real slapd."""
from ldap3 import MODIFY_ADD, MODIFY_DELETE

from itops.core.auth.models import AuthSource, User
from itops.core.jobs import JobState
from itops.extensions import db
from tests.conftest import csrf_token
from tests.integration.test_sign_in import login


def _user(username):
    db.session.expire_all()
    return db.session.query(User).filter_by(username=username).one_or_none()


def test_directory_user_signs_in_with_the_directory_password_and_gets_the_mapped_role(client, directory):
    response = login(client, "ivy", "ivy-pass-1")
    assert response.status_code == 302
    user = _user("ivy")
    assert user.source == AuthSource.DIRECTORY
    assert user.role == "it_staff"
    assert user.display_name == "Ivy Tech"
    assert user.email == "ivy@example.org"
    assert user.directory_dn == f"uid=ivy,{directory.people_dn}"
    assert user.password_hash is None
    assert client.get("/monitoring/").status_code == 200


def test_each_mapped_group_gives_its_role(app, directory):
    for username, role in (("dirk", "admin"), ("hannah", "hr"), ("eve", "employee")):
        client = app.test_client()
        assert login(client, username, f"{username}-pass-1").status_code == 302
        assert _user(username).role == role
        me = client.get("/api/v1/me").json
        assert me["role"] == role and me["auth_method"] == "session"


def test_non_ascii_names_come_through(client, directory):
    assert login(client, "zoe", "zoe-pass-1").status_code == 302
    assert _user("zoe").display_name == "Zoë Ødegård"
    assert "Zoë Ødegård" in client.get("/").get_data(as_text=True)


def test_wrong_directory_password_is_refused(client, directory):
    response = login(client, "ivy", "not-her-password")
    assert response.status_code == 401
    assert _user("ivy") is None  # nothing written for a failed sign-in


def test_disabled_directory_account_is_refused(client, directory):
    response = login(client, "gone", "gone-pass-1")
    assert response.status_code == 401
    assert "Wrong username or password, or the account is disabled" in response.get_data(as_text=True)
    assert _user("gone") is None


def test_unknown_directory_user_is_refused(client, directory):
    assert login(client, "mallory", "anything-at-all").status_code == 401


def test_ldap_filter_characters_in_the_username_are_escaped(client, directory):
    for username in ("*", "iv*", "ivy)(uid=*", "(|(uid=*))"):
        assert login(client, username, "ivy-pass-1").status_code == 401


def test_empty_password_is_never_an_anonymous_bind(client, directory):
    response = client.post("/login", data={"username": "ivy", "password": ""})
    assert response.status_code in (400, 422)
    assert _user("ivy") is None


def test_a_locked_account_is_refused_even_with_the_right_password(client, directory):
    connection = directory.admin_connection()
    dn = f"uid=eve,{directory.people_dn}"
    connection.modify(dn, {"pwdAccountLockedTime": [(MODIFY_ADD, ["000001010000Z"])]})
    try:
        assert login(client, "eve", "eve-pass-1").status_code == 401
    finally:
        connection.modify(dn, {"pwdAccountLockedTime": [(MODIFY_DELETE, [])]})
        connection.unbind()
    assert login(client, "eve", "eve-pass-1").status_code == 302


def test_a_locally_disabled_directory_user_cannot_sign_in(client, directory):
    assert login(client, "eve", "eve-pass-1").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    user = _user("eve")
    user.active = False
    db.session.commit()
    assert login(client, "eve", "eve-pass-1").status_code == 401


def test_directory_unreachable_is_503_with_a_message(app, client):
    from itops.config import LdapSettings
    from itops.demo.slapd import free_port

    app.config["ITOPS_LDAP"] = LdapSettings(
        url=f"ldap://127.0.0.1:{free_port()}", base_dn="dc=example,dc=org", people_dn="ou=people,dc=example,dc=org",
        groups_dn="ou=groups,dc=example,dc=org", bind_dn=None, bind_password=None, user_attribute="uid",
        role_groups={}, default_role="employee", timeout=2)
    try:
        response = login(client, "ivy", "ivy-pass-1")
    finally:
        app.config["ITOPS_LDAP"] = None
    assert response.status_code == 503
    assert "directory is unreachable" in response.get_data(as_text=True)


def test_directory_refresh_disables_users_gone_from_the_directory(app, directory):
    from itops.core import jobs
    from itops.core.auth import services

    for username in ("ivy", "hannah"):
        assert login(app.test_client(), username, f"{username}-pass-1").status_code == 302
    connection = directory.admin_connection()
    connection.modify_dn(f"uid=hannah,{directory.people_dn}", "uid=hannah", new_superior=directory.disabled_dn)
    try:
        job = jobs.create_job("directory.refresh", "Refresh users from the directory")
        db.session.commit()
        job = jobs.run_job(job, lambda progress: services.refresh_from_directory(progress, by="test"))
    finally:
        connection.modify_dn(f"uid=hannah,{directory.disabled_dn}", "uid=hannah", new_superior=directory.people_dn)
        connection.unbind()
    assert job.state == JobState.SUCCEEDED
    assert job.result == {"checked": 2, "updated": 0, "disabled": 1, "unchanged": 1}
    assert job.done == job.total == 2
    assert _user("hannah").active is False
    assert _user("ivy").active is True
