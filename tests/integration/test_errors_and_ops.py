"""Friendly HTML error pages, problem+json for API clients, /healthz and /metrics."""
import pytest

from itops.core.policy import Role, require_role
from tests.conftest import sign_in


@pytest.fixture
def broken_app(app_with_routes):
    """An app with a route that fails unexpectedly, as a bug would."""
    @require_role()
    def explode():
        raise RuntimeError("secret internal detail")

    return app_with_routes(("/explode", "explode", explode), ("/api/v1/explode", "explode_api", explode))


def test_404_page_is_friendly(client_as):
    response = client_as(Role.EMPLOYEE).get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)


def test_404_on_the_api_is_problem_json(client_as):
    response = client_as(Role.EMPLOYEE).get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["title"] == "Not found"


def test_unexpected_error_hides_the_stack_trace(broken_app, make_user):
    client = broken_app.test_client()
    sign_in(client, make_user(Role.EMPLOYEE))
    page = client.get("/explode")
    assert page.status_code == 500
    text = page.get_data(as_text=True)
    assert "Something went wrong" in text and "secret internal detail" not in text and "Traceback" not in text
    api = client.get("/api/v1/explode")
    assert api.status_code == 500 and api.mimetype == "application/problem+json"
    assert "secret internal detail" not in api.get_data(as_text=True)


def test_405_is_clear(client_as):
    response = client_as(Role.EMPLOYEE).delete("/api/v1/me")
    assert response.status_code in (400, 405)  # CSRF is checked before routing details
    assert response.mimetype == "application/problem+json"


def test_rate_limit_429_on_html_is_a_friendly_page(client, make_user):
    from tests.integration.test_sign_in import login

    user = make_user()
    for _ in range(5):
        login(client, user.username, "wrong")
    response = login(client, user.username, "wrong")
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers


def test_healthz_reports_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_metrics_count_requests_per_endpoint(client):
    client.get("/healthz")
    client.get("/healthz")
    body = client.get("/metrics").get_data(as_text=True)
    line = [l for l in body.splitlines()
            if l.startswith("itops_http_requests_total{") and 'endpoint="ops.healthz"' in l][0]
    assert float(line.rsplit(" ", 1)[1]) >= 2
    assert 'itops_http_request_duration_seconds_bucket{endpoint="ops.healthz"' in body


def test_metrics_token_when_configured(app, client):
    app.config["ITOPS_METRICS_TOKEN"] = "scrape-secret"
    try:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
    finally:
        app.config["ITOPS_METRICS_TOKEN"] = None


def test_a_busy_sqlite_database_answers_503_with_retry_after(app_with_routes, make_user):
    import sqlite3

    from sqlalchemy.exc import OperationalError

    @require_role()
    def busy():
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))

    client = app_with_routes(("/api/v1/busy", "busy", busy)).test_client()
    sign_in(client, make_user(Role.EMPLOYEE))
    response = client.get("/api/v1/busy")
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert response.json["detail"] == "The server is busy; try again in a few seconds."


@pytest.mark.parametrize("path", ["/assets/99999999999999999999", "/api/v1/assets/99999999999999999999",
                                  "/tickets/99999999999999999999", "/api/v1/tickets/2147483648",
                                  "/jobs/99999999999999999999"])
def test_ids_too_big_for_the_database_are_not_found(client_as, path):
    assert client_as(Role.IT_STAFF).get(path).status_code == 404
