"""Every endpoint declares who may call it; roles are enforced; security headers and CSRF."""
import pytest

from itops.core.policy import PUBLIC, declared_policy
from itops.core.policy import Role
from itops.core.security import CONTENT_SECURITY_POLICY
from tests.conftest import csrf_token, sign_in

EXTENSION_ENDPOINTS = {"static", "api-docs.openapi_json"}
# The agent endpoints are public to the guard because they check their own (enrollment or agent) tokens.
PUBLIC_ENDPOINTS = {"auth.login", "ops.healthz", "ops.metrics", "apidocs.docs", "agent.enroll", "agent.report_inventory"}
# So are the SCIM endpoints: they check SCIM tokens (tests/integration/test_scim.py covers the refusals).
PUBLIC_ENDPOINTS |= {f"scim.{name}" for name in (
    "service_provider_config", "resource_types", "resource_type", "schema_list", "schema", "list_users",
    "create_user", "get_user", "replace_user", "patch_user", "delete_user", "list_groups", "get_group",
    "change_group")}


def test_every_endpoint_declares_an_access_policy(app):
    undeclared = [endpoint for endpoint, view in app.view_functions.items()
                  if endpoint not in EXTENSION_ENDPOINTS and declared_policy(view) is None]
    assert undeclared == []


def test_only_the_expected_endpoints_are_public(app):
    public = {endpoint for endpoint, view in app.view_functions.items() if declared_policy(view) == PUBLIC}
    assert public == PUBLIC_ENDPOINTS


def test_an_endpoint_without_a_policy_is_refused(app_with_routes, make_user):
    extra = app_with_routes(("/undeclared", "undeclared", lambda: "should not be served"))
    client = extra.test_client()
    sign_in(client, make_user(Role.ADMIN))
    response = client.get("/undeclared")
    assert response.status_code == 403
    assert "should not be served" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/monitoring/", "/directory/", "/admin/users", "/admin/audit"])
def test_employee_is_refused_on_staff_pages_with_a_friendly_403(client_as, path):
    response = client_as(Role.EMPLOYEE).get(path)
    assert response.status_code == 403
    html = response.get_data(as_text=True)
    assert "Not allowed" in html and "Your role does not allow this." in html
    assert "Traceback" not in html


@pytest.mark.parametrize("role,path,status", [
    (Role.EMPLOYEE, "/assets/", 200), (Role.EMPLOYEE, "/tickets/", 200),
    (Role.IT_STAFF, "/monitoring/", 200), (Role.IT_STAFF, "/directory/", 403),
    (Role.HR, "/directory/", 200), (Role.HR, "/assets/", 403), (Role.HR, "/monitoring/", 403),
    (Role.ADMIN, "/directory/", 200), (Role.ADMIN, "/monitoring/", 200), (Role.IT_STAFF, "/admin/users", 403),
])
def test_area_access_by_role(client_as, role, path, status):
    assert client_as(role).get(path).status_code == status


def test_anonymous_html_request_redirects_to_login_with_next(client):
    response = client.get("/monitoring/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/monitoring/")


def test_security_headers_on_pages(client):
    response = client.get("/login")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_no_inline_script_in_any_template(app):
    import re
    from pathlib import Path

    templates = Path(app.template_folder)
    offenders = []
    for path in templates.rglob("*.html"):
        text = path.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+=\"", text) \
                or re.search(r"\sstyle=\"", text):
            offenders.append(str(path.relative_to(templates)))
    assert offenders == []


def test_every_post_form_carries_a_csrf_token(client_as):
    admin = client_as(Role.ADMIN)
    for path in ("/", "/account", "/admin/users", f"/admin/users/{admin.user.id}"):
        html = admin.get(path).get_data(as_text=True)
        forms = html.split("<form")[1:]
        post_forms = [f for f in forms if 'method="post"' in f.split(">")[0]]
        assert post_forms, path
        assert all('name="csrf_token"' in f.split("</form>")[0] for f in post_forms), path


def test_state_change_without_csrf_is_refused_and_changes_nothing(client_as, make_user):
    admin = client_as(Role.ADMIN)
    target = make_user(Role.EMPLOYEE)
    response = admin.post(f"/admin/users/{target.id}/role", data={"role": "admin"})
    assert response.status_code == 400
    from itops.extensions import db
    db.session.refresh(target)
    assert target.role == "employee"


def test_admin_changes_a_role_with_csrf(client_as, make_user):
    admin = client_as(Role.ADMIN)
    target = make_user(Role.EMPLOYEE)
    response = admin.post(f"/admin/users/{target.id}/role",
                          data={"role": "it_staff", "csrf_token": csrf_token(admin, "/")})
    assert response.status_code == 302
    from itops.extensions import db
    db.session.refresh(target)
    assert target.role == "it_staff"


def test_unknown_role_in_the_form_is_422(client_as, make_user):
    admin = client_as(Role.ADMIN)
    target = make_user(Role.EMPLOYEE)
    response = admin.post(f"/admin/users/{target.id}/role", data={"role": "wizard", "csrf_token": csrf_token(admin)})
    assert response.status_code == 422


def test_admin_cannot_demote_or_disable_themselves(client_as):
    admin = client_as(Role.ADMIN)
    token = csrf_token(admin)
    assert admin.post(f"/admin/users/{admin.user.id}/role", data={"role": "employee", "csrf_token": token}).status_code == 409
    assert admin.post(f"/admin/users/{admin.user.id}/disable", data={"csrf_token": token}).status_code == 409
