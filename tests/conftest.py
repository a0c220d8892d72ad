"""One app and one migrated database per test session; rows are cleared after each test.

The database is migrated once (which also exercises the migrations), and each test ends by
deleting every row, so tests that commit, run CLI commands, or drive a live server through
chromium all see a clean database without a schema rebuild.
"""
from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import flask_migrate
import pytest
from flask import g
from sqlalchemy import text
from werkzeug.serving import make_server

from itops import create_app
from itops.config import LdapSettings, parse_role_groups
from itops.core.auth import services as auth_services
from itops.core.auth.request_auth import SESSION_STARTED_KEY
from itops.core.migrations import init_migrations
from itops.core.policy import Role
from itops.demo.slapd import free_port
from itops.extensions import db, limiter

pytest_plugins = ["tests.peers.slapd", "tests.peers.postgres", "tests.peers.chromium", "tests.peers.smtp",
                  "tests.peers.switches", "tests.peers.sshd", "tests.peers.snmpd", "tests.peers.sip",
                  "tests.peers.redis"]

PASSWORD = "correct horse battery staple"
CSRF_INPUT = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


def pytest_report_header(config):
    return f"itops test database: {os.environ.get('ITOPS_TEST_DATABASE', 'sqlite')}"


@pytest.fixture(scope="session")
def database_url(request, tmp_path_factory) -> str:
    choice = os.environ.get("ITOPS_TEST_DATABASE", "sqlite")
    if choice == "postgres":
        return request.getfixturevalue("postgres_url")
    if choice != "sqlite":
        raise pytest.UsageError(f"ITOPS_TEST_DATABASE must be sqlite or postgres, not {choice!r}")
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'itops.db'}"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("instance")


def build_test_app(database_url: str):
    application = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Fast hashing for the many test users; production uses scrypt.
        "ITOPS_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        "ITOPS_LOGIN_RATE_LIMIT": "5 per minute",
    })
    application.before_request_funcs.setdefault(None, []).insert(0, _fresh_g)
    init_migrations(application)  # the tests migrate in-process
    return application


@pytest.fixture
def app_with_routes(app, database_url):
    """A second app on the same database, for tests that add routes of their own."""
    def build(*rules):
        extra = build_test_app(database_url)
        for rule, endpoint, view in rules:
            extra.add_url_rule(rule, endpoint, view)
        return extra
    return build


@pytest.fixture(scope="session")
def app(database_url, instance_dir):
    # Hermetic: the developer's own ITOPS_* settings must not leak into the tests.
    saved = {k: v for k, v in os.environ.items() if k.startswith("ITOPS_")}
    for key in saved:
        if key not in ("ITOPS_REQUIRE_PEERS", "ITOPS_TEST_DATABASE"):
            del os.environ[key]
    os.environ["ITOPS_INSTANCE_DIR"] = str(instance_dir)
    application = build_test_app(database_url)
    with application.app_context():
        flask_migrate.upgrade()
    yield application
    with application.app_context():
        db.engine.dispose()
    os.environ.pop("ITOPS_INSTANCE_DIR", None)
    os.environ.update(saved)


def _fresh_g() -> None:
    """Tests hold one app context open around their requests; in production each request has its
    own, so give each request a fresh `g` (Flask-Login and Flask-WTF cache per-request state there)."""
    for name in list(vars(g)):
        delattr(g, name)


def _clear_all_tables() -> None:
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def app_context(app):
    with app.app_context():
        yield
        db.session.rollback()
        db.session.remove()
        _clear_all_tables()
    limiter.reset()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    counter = iter(range(1, 10_000))

    def make(role: Role | str = Role.EMPLOYEE, username: str | None = None, password: str = PASSWORD, **fields):
        role = Role(role)
        user = auth_services.create_local_user(username or f"{role.value.replace('_', '')}{next(counter)}",
                                               password, role=role, **fields)
        db.session.commit()
        return user

    return make


def sign_in(client, user) -> None:
    """Put a signed-in session on the client without the login form (the login tests use the form)."""
    import time

    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        session[SESSION_STARTED_KEY] = int(time.time())
        session.permanent = True


@pytest.fixture
def client_as(app, make_user):
    """client_as("it_staff") -> a test client signed in as a new user with that role."""

    def build(role: Role | str, **fields):
        client = app.test_client()
        client.user = make_user(role, **fields)
        sign_in(client, client.user)
        return client

    return build


def csrf_token(client, path: str = "/account") -> str:
    """A valid CSRF token for the client's session, read from a rendered form."""
    page = client.get(path)
    match = CSRF_INPUT.search(page.get_data(as_text=True))
    assert match, f"no csrf_token input on {path} (status {page.status_code})"
    return match.group(1)


@pytest.fixture
def directory(app, slapd):
    """Point directory sign-in at the test slapd for one test."""
    app.config["ITOPS_LDAP"] = LdapSettings(
        url=slapd.url, base_dn=slapd.base_dn, people_dn=slapd.people_dn, groups_dn=slapd.groups_dn,
        bind_dn=slapd.admin_dn, bind_password=slapd.admin_password, user_attribute="uid",
        role_groups=parse_role_groups("admin=itops-admins,it_staff=itops-it,hr=itops-hr"),
        default_role="employee", timeout=5)
    yield slapd
    app.config["ITOPS_LDAP"] = None


@pytest.fixture(scope="session")
def live_server(app):
    """The app served over real HTTP on a free loopback port, for chromium."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def make_asset(app):
    """make_asset("laptop", name=..., holder=user) -> a committed asset made through the service."""
    from itops.assets import services as asset_services

    def make(kind: str = "laptop", *, holder=None, status: str = "in_stock", **values):
        values.setdefault("name", f"{kind}-{next(counter)}")
        asset = asset_services.create_asset(kind, values, by="test", status=status)
        if holder is not None:
            asset_services.checkout(asset, holder, by="test")
        db.session.commit()
        return asset

    counter = iter(range(1, 100_000))
    return make


@pytest.fixture
def api_as(app, make_user):
    """api_as(role) -> (client, user) calling with a personal API token, no cookies."""

    def build(role, username=None, **fields):
        user = make_user(role, username, **fields)
        secret = auth_services.issue_token(user, "tests").secret
        db.session.commit()
        client = app.test_client(use_cookies=False)
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
        return client, user
    return build
