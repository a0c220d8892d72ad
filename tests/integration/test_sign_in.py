"""Local sign-in, sign-out, session revocation and expiry, rate limiting."""
import time

from itops.core.audit import AuditEntry
from itops.core.auth.models import User
from itops.core.auth.request_auth import SESSION_STARTED_KEY
from itops.core.policy import Role
from itops.extensions import db
from tests.conftest import PASSWORD, csrf_token, sign_in


def login(client, username, password):
    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_each_role_signs_in_and_sees_its_navigation(client, make_user):
    expected = {
        Role.EMPLOYEE: {"Assets", "Tickets"},
        Role.IT_STAFF: {"Assets", "Tickets", "Monitoring"},
        Role.HR: {"Tickets", "Directory"},
        Role.ADMIN: {"Assets", "Tickets", "Monitoring", "Directory", "Admin", "Audit log"},
    }
    all_links = {"Assets", "Tickets", "Monitoring", "Directory", "Admin", "Audit log"}
    for role, links in expected.items():
        user = make_user(role)
        response = login(client, user.username, PASSWORD)
        assert response.status_code == 302 and response.headers["Location"] == "/"
        nav = client.get("/").get_data(as_text=True).split("</nav>")[0]
        shown = {label for label in all_links if f">{label}</a>" in nav}
        assert shown == links, role
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_wrong_password_is_401_with_a_message_and_writes_nothing(client, make_user):
    user = make_user(Role.EMPLOYEE)
    entries_before = db.session.query(AuditEntry).count()
    response = login(client, user.username, "not the password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert db.session.query(AuditEntry).count() == entries_before
    assert db.session.get(User, user.id).last_login_at is None


def test_unknown_user_is_refused_like_a_wrong_password(client):
    response = login(client, "nobody", "whatever-password")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)


def test_disabled_local_user_cannot_sign_in(client, make_user):
    user = make_user(Role.IT_STAFF)
    user.active = False
    db.session.commit()
    assert login(client, user.username, PASSWORD).status_code == 401


def test_missing_csrf_token_on_login_is_400(client, make_user):
    user = make_user()
    response = client.post("/login", data={"username": user.username, "password": PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.get_data(as_text=True)


def test_next_parameter_only_follows_local_paths(client, make_user):
    user = make_user(Role.IT_STAFF)
    token = csrf_token(client, "/login")
    response = client.post("/login?next=https://evil.example/", data={
        "username": user.username, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    token = csrf_token(client, "/login")
    response = client.post("/login?next=/monitoring/", data={
        "username": user.username, "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/monitoring/"


def test_repeated_failures_are_rate_limited_with_429(client, make_user):
    user = make_user()
    statuses = [login(client, user.username, "wrong-password").status_code for _ in range(6)]
    assert statuses[:5] == [401] * 5
    assert statuses[5] == 429
    blocked = login(client, user.username, PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed sign-in attempts" in blocked.get_data(as_text=True)


def test_successful_sign_ins_do_not_count_against_the_limit(client, make_user):
    user = make_user()
    for _ in range(7):
        assert login(client, user.username, PASSWORD).status_code == 302
        client.post("/logout", data={"csrf_token": csrf_token(client, "/")})


def test_sign_out_ends_the_session(client, make_user):
    user = make_user()
    login(client, user.username, PASSWORD)
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_sign_out_needs_csrf(client, make_user):
    user = make_user()
    sign_in(client, user)
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


def test_revoking_sessions_signs_the_user_out_everywhere(app, make_user):
    user = make_user(Role.IT_STAFF)
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        login(device, user.username, PASSWORD)
        assert device.get("/monitoring/").status_code == 200
    admin = app.test_client()
    sign_in(admin, make_user(Role.ADMIN))
    response = admin.post(f"/admin/users/{user.id}/revoke-sessions", data={"csrf_token": csrf_token(admin, "/")})
    assert response.status_code == 302
    for device in (laptop, phone):
        assert device.get("/monitoring/").status_code == 302
        assert device.get("/api/v1/me").status_code == 401
    # Signing in again works: only the old sessions were revoked.
    assert login(laptop, user.username, PASSWORD).status_code == 302


def test_expired_session_must_sign_in_again(app, client, make_user):
    user = make_user()
    sign_in(client, user)
    with client.session_transaction() as session:
        session[SESSION_STARTED_KEY] = int(time.time()) - app.config["ITOPS_SESSION_HOURS"] * 3600 - 5
    response = client.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "expired" in client.get("/login").get_data(as_text=True)


def test_expired_session_on_the_api_is_401(app, client, make_user):
    sign_in(client, make_user())
    with client.session_transaction() as session:
        session[SESSION_STARTED_KEY] = 0
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["detail"] == "Your session has expired; sign in again."


def test_session_cookie_is_httponly_and_samesite_lax(client, make_user):
    user = make_user()
    response = login(client, user.username, PASSWORD)
    cookie = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("itops_session=")][0]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
