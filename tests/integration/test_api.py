"""The /api/v1 base: OpenAPI document, /me, tokens, roles, problem+json errors."""
import json
import re

import pytest
from openapi_spec_validator import validate

from itops.core.auth.models import ApiToken
from itops.core.policy import Role
from itops.extensions import db
from tests.conftest import csrf_token, sign_in


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def token_of(client_as):
    """token_of("employee") -> (user, secret) issued through the API itself."""
    def issue(role, name="script"):
        client = client_as(role)
        csrf = client.get("/account").get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
        response = client.post("/api/v1/tokens", json={"name": name}, headers={"X-CSRFToken": csrf})
        assert response.status_code == 201, response.json
        return client.user, response.json["token"]
    return issue


def test_openapi_document_is_valid_and_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json
    validate(document)
    assert document["openapi"].startswith("3.")
    assert "/api/v1/me" in document["paths"]
    assert "bearerAuth" in document["components"]["securitySchemes"]


def test_api_docs_page_uses_local_assets_only(client):
    html = client.get("/api/v1/docs").get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "://" not in "".join(line for line in html.splitlines() if "<script" in line or "stylesheet" in line)


def test_me_with_a_session(client_as):
    client = client_as(Role.HR, display_name="Hana Rios")
    me = client.get("/api/v1/me").json
    assert me["username"] == client.user.username
    assert me["role"] == "hr" and me["display_name"] == "Hana Rios" and me["auth_method"] == "session"


def test_me_with_a_token_and_no_cookie(app, token_of):
    user, secret = token_of(Role.EMPLOYEE)
    response = app.test_client().get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 200
    assert response.json["username"] == user.username and response.json["auth_method"] == "token"
    assert "Set-Cookie" not in response.headers


def test_token_is_stored_hashed_and_shown_once(app, token_of):
    user, secret = token_of(Role.EMPLOYEE)
    stored = db.session.query(ApiToken).one()
    assert secret.startswith("itops_") and secret not in (stored.token_hash, stored.prefix)
    assert secret.startswith(stored.prefix)
    listed = app.test_client().get("/api/v1/tokens", headers=bearer(secret)).json
    assert [t["name"] for t in listed] == ["script"]
    assert "token" not in listed[0] and secret not in json.dumps(listed)


def test_token_records_when_it_was_last_used(app, token_of):
    _, secret = token_of(Role.EMPLOYEE)
    assert db.session.query(ApiToken).one().last_used_at is None
    app.test_client().get("/api/v1/me", headers=bearer(secret))
    db.session.expire_all()
    assert db.session.query(ApiToken).one().last_used_at is not None


def test_token_calls_need_no_csrf_but_session_calls_do(app, token_of, client_as):
    _, secret = token_of(Role.EMPLOYEE)
    assert app.test_client().post("/api/v1/tokens", json={"name": "ci"}, headers=bearer(secret)).status_code == 201
    session_client = client_as(Role.EMPLOYEE)
    response = session_client.post("/api/v1/tokens", json={"name": "no-csrf"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "CSRF" in response.json["detail"]


def test_revoked_token_stops_working(app, token_of):
    user, secret = token_of(Role.IT_STAFF)
    client = app.test_client()
    token_id = client.get("/api/v1/tokens", headers=bearer(secret)).json[0]["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bearer(secret)).status_code == 204
    response = client.get("/api/v1/me", headers=bearer(secret))
    assert response.status_code == 401
    assert response.json["detail"].startswith("The API token is unknown, revoked")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_unknown_token_is_401(client):
    for secret in ("itops_not-a-real-token", "garbage"):
        response = client.get("/api/v1/me", headers=bearer(secret))
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"


def test_malformed_authorization_header_is_401(client):
    response = client.get("/api/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 401
    assert "Bearer" in response.json["detail"]


def test_no_credentials_is_401_problem(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401 and response.json["instance"] == "/api/v1/me"


def test_disabled_users_token_stops_working(app, token_of):
    user, secret = token_of(Role.EMPLOYEE)
    user.active = False
    db.session.commit()
    assert app.test_client().get("/api/v1/me", headers=bearer(secret)).status_code == 401


def test_a_user_cannot_revoke_someone_elses_token(app, token_of):
    _, alice_secret = token_of(Role.EMPLOYEE, name="alice-token")
    _, bob_secret = token_of(Role.EMPLOYEE, name="bob-token")
    client = app.test_client()
    alice_token_id = client.get("/api/v1/tokens", headers=bearer(alice_secret)).json[0]["id"]
    response = client.delete(f"/api/v1/tokens/{alice_token_id}", headers=bearer(bob_secret))
    assert response.status_code == 404
    assert client.get("/api/v1/me", headers=bearer(alice_secret)).status_code == 200


def test_employee_is_refused_on_an_it_staff_api_route(app, token_of):
    _, secret = token_of(Role.EMPLOYEE)
    response = app.test_client().get("/api/v1/users", headers=bearer(secret))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["detail"] == "Your role does not allow this."


def test_it_staff_is_refused_on_an_admin_api_route(app, token_of, make_user):
    _, secret = token_of(Role.IT_STAFF)
    target = make_user(Role.EMPLOYEE)
    client = app.test_client()
    assert client.get("/api/v1/users", headers=bearer(secret)).status_code == 200
    response = client.post(f"/api/v1/users/{target.id}/revoke-sessions", headers=bearer(secret))
    assert response.status_code == 403
    db.session.refresh(target)
    assert target.session_version == 1


def test_admin_lists_users_with_cursor_pagination(app, token_of, make_user):
    _, secret = token_of(Role.ADMIN)
    for n in range(5):
        make_user(Role.EMPLOYEE, username=f"user{n}")
    client = app.test_client()
    first = client.get("/api/v1/users?limit=3", headers=bearer(secret)).json
    second = client.get(f"/api/v1/users?limit=3&cursor={first['next_cursor']}", headers=bearer(secret)).json
    names = [u["username"] for u in first["items"] + second["items"]]
    assert names == sorted(names) and len(names) == len(set(names)) == 6
    assert second["next_cursor"] is None


def test_bad_cursor_and_bad_query_are_422(app, token_of):
    _, secret = token_of(Role.ADMIN)
    client = app.test_client()
    bad_cursor = client.get("/api/v1/users?cursor=%%%", headers=bearer(secret))
    assert bad_cursor.status_code == 422 and "cursor" in bad_cursor.json["errors"]
    bad_role = client.get("/api/v1/users?role=wizard", headers=bearer(secret))
    assert bad_role.status_code == 422
    assert "role" in bad_role.json["errors"]["query"]


def test_malformed_json_is_400(app, token_of):
    _, secret = token_of(Role.EMPLOYEE)
    response = app.test_client().post("/api/v1/tokens", data="{not json",
                                      headers={**bearer(secret), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert db.session.query(ApiToken).count() == 1


def test_invalid_body_is_422_with_field_errors(app, token_of):
    _, secret = token_of(Role.EMPLOYEE)
    response = app.test_client().post("/api/v1/tokens", json={"name": ""}, headers=bearer(secret))
    assert response.status_code == 422
    assert "name" in response.json["errors"]["json"]
    assert db.session.query(ApiToken).count() == 1


def test_oversized_body_is_413(app, token_of):
    _, secret = token_of(Role.EMPLOYEE)
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = app.test_client().post("/api/v1/tokens", data=b"x" * (limit + 1),
                                      headers={**bearer(secret), "Content-Type": "application/json"})
    assert response.status_code == 413
    assert str(limit) in response.json["detail"]


def test_admin_revokes_sessions_through_the_api(app, token_of, make_user):
    _, secret = token_of(Role.ADMIN)
    target = make_user(Role.EMPLOYEE)
    browser = app.test_client()
    sign_in(browser, target)
    assert browser.get("/").status_code == 200
    response = app.test_client().post(f"/api/v1/users/{target.id}/revoke-sessions", headers=bearer(secret))
    assert response.status_code == 204
    assert browser.get("/").status_code == 302


def test_job_progress_is_visible_to_its_creator_and_admins_only(app, client_as):
    from itops.core import jobs

    owner = client_as(Role.IT_STAFF)
    job = jobs.create_job("test.kind", "A job", by=owner.user, total=4)
    db.session.commit()
    assert owner.get(f"/api/v1/jobs/{job.id}").json["state"] == "queued"
    assert client_as(Role.EMPLOYEE).get(f"/api/v1/jobs/{job.id}").status_code == 404
    assert client_as(Role.ADMIN).get(f"/api/v1/jobs/{job.id}").status_code == 200


def test_token_made_in_the_browser_is_shown_once_and_never_cached(client_as):
    client = client_as(Role.EMPLOYEE)
    response = client.post("/account/tokens", data={"name": "laptop script", "csrf_token": csrf_token(client)})
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    shown = re.search(r'readonly value="([^"]+)" aria-label="New API token"', html)
    assert shown, "the new secret is not on the page"
    secret = shown.group(1)
    assert ApiToken.query.filter_by(name="laptop script").one().token_hash != secret
    # The name field is blank again, so a second click does not quietly make a twin token.
    assert 'value="laptop script"' not in html
    assert secret not in client.get("/account").get_data(as_text=True)
