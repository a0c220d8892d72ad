"""`flask itops ...` commands: clear messages and exit codes."""
from itops.core.auth.models import ApiToken, User
from itops.extensions import db


def run(app, *args, stdin=None):
    return app.test_cli_runner().invoke(args=["itops", *args], input=stdin)


def test_create_user_from_stdin(app):
    result = run(app, "users", "create", "Grace", "--role", "it_staff", "--password-stdin",
                 stdin="a long enough password\n")
    assert result.exit_code == 0, result.output
    assert "created grace (IT staff)" in result.output
    user = db.session.query(User).filter_by(username="grace").one()
    assert user.role == "it_staff" and user.password_hash.startswith("pbkdf2:")


def test_bad_input_gets_a_message_and_an_exit_code(app, make_user):
    make_user(username="taken")
    short = run(app, "users", "create", "newbie", "--role", "employee", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    duplicate = run(app, "users", "create", "taken", "--role", "employee", "--password-stdin",
                    stdin="a long enough password\n")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    bad_role = run(app, "users", "create", "x", "--role", "wizard", "--password-stdin", stdin="pw\n")
    assert bad_role.exit_code == 2 and "wizard" in bad_role.output
    unknown = run(app, "users", "revoke-sessions", "nobody")
    assert unknown.exit_code == 2 and "no user named 'nobody'" in unknown.output
    assert db.session.query(User).count() == 1


def test_create_token_prints_the_secret_once(app, make_user):
    user = make_user(username="robot")
    result = run(app, "users", "create-token", "robot", "inventory sync")
    assert result.exit_code == 0
    secret = result.output.strip()
    assert secret.startswith("itops_")
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).json["username"] == "robot"
    assert db.session.query(ApiToken).filter_by(user_id=user.id).one().name == "inventory sync"


def test_revoke_sessions_and_tokens(app, make_user):
    user = make_user(username="leaver")
    secret = run(app, "users", "create-token", "leaver", "laptop").output.strip()
    result = run(app, "users", "revoke-sessions", "leaver", "--tokens")
    assert result.exit_code == 0 and "API tokens revoked" in result.output
    db.session.expire_all()
    assert db.session.get(User, user.id).session_version == 2
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_refresh_directory_shows_progress_and_the_result(app, directory):
    from tests.integration.test_sign_in import login

    assert login(app.test_client(), "eve", "eve-pass-1").status_code == 302
    result = run(app, "users", "refresh-directory")
    assert result.exit_code == 0, result.output
    assert "directory users" in result.output  # the progress bar's label
    assert "checked: 1" in result.output


def test_refresh_directory_without_a_directory_fails_clearly(app):
    result = run(app, "users", "refresh-directory")
    assert result.exit_code == 1
    assert "No directory is configured" in result.output


def test_demo_load_is_idempotent(app):
    first = run(app, "demo", "load")
    second = run(app, "demo", "load")
    assert first.exit_code == second.exit_code == 0
    assert "created: admin" in first.output and "already loaded" in second.output
    assert db.session.query(User).filter_by(username="admin", role="admin").count() == 1


def test_demo_load_with_a_directory_creates_assets_held_by_directory_people(app, directory):
    from itops.assets.models import Asset
    result = run(app, "demo", "load")
    assert result.exit_code == 0, result.output
    assert "12 assets" in result.output and "2 tickets" in result.output  # the test directory has no omar
    eve = db.session.query(User).filter_by(username="eve").one()
    assert eve.source == "directory"
    held = {a.name for a in db.session.query(Asset).filter_by(holder_id=eve.id)}
    assert held == {"eve-thinkpad", "Eve's phone"}
    assert "already loaded" in run(app, "demo", "load").output


def test_enrollment_token_from_the_cli_enrolls_an_agent(app, client):
    import gzip
    import json

    from tests.integration.test_agent_ingest import report
    result = run(app, "assets", "enrollment-token", "build hosts", "--days", "7")
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("itops_enr_")
    response = client.post("/api/v1/agent/enroll", data=gzip.compress(json.dumps(report()).encode()),
                           headers={"Authorization": f"Bearer {secret}", "Content-Encoding": "gzip"})
    assert response.status_code == 201
    assert run(app, "assets", "enrollment-token", "x", "--days", "999").exit_code == 2
