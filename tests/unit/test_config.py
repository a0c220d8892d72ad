"""Configuration from ITOPS_* variables and the embedded defaults."""
import stat

import pytest

from itops.config import ConfigError, load_config, parse_role_groups


def test_embedded_defaults_live_under_the_instance_dir(tmp_path):
    config = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path / "var")})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'var' / 'itops.db'}"
    for name in ("secret_key", "encryption_key"):
        path = tmp_path / "var" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o700
    assert config["ITOPS_LDAP"] is None


def test_keys_are_generated_once_and_reused(tmp_path):
    first = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path)})
    second = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path)})
    assert first["SECRET_KEY"] == second["SECRET_KEY"] and len(first["SECRET_KEY"]) >= 48
    assert first["ITOPS_ENCRYPTION_KEY"] == second["ITOPS_ENCRYPTION_KEY"]


def test_postgres_url_switches_driver_without_code_change(tmp_path):
    config = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path), "ITOPS_DATABASE_URL": "postgresql://u@db/itops"})
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db/itops"


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "bind"
    secret.write_text("s3cret\n")
    config = load_config({"ITOPS_INSTANCE_DIR": str(tmp_path), "ITOPS_LDAP_URL": "ldap://127.0.0.1:1",
                          "ITOPS_LDAP_BIND_PASSWORD_FILE": str(secret)})
    assert config["ITOPS_LDAP"].bind_password == "s3cret"
    assert "s3cret" not in repr(config["ITOPS_LDAP"])


def test_role_group_mapping():
    assert parse_role_groups("admin=IT-Admins, hr=people-team") == {"it-admins": "admin", "people-team": "hr"}
    with pytest.raises(ConfigError, match="role=group"):
        parse_role_groups("wizard=magicians")


@pytest.mark.parametrize("variables,message", [
    ({"ITOPS_SESSION_HOURS": "twelve"}, "ITOPS_SESSION_HOURS"),
    ({"ITOPS_SECURE_COOKIES": "maybe"}, "ITOPS_SECURE_COOKIES"),
    ({"ITOPS_LDAP_URL": "ldap://x", "ITOPS_LDAP_DEFAULT_ROLE": "boss"}, "ITOPS_LDAP_DEFAULT_ROLE"),
    ({"ITOPS_SECRET_KEY_FILE": "/nonexistent/key"}, "ITOPS_SECRET_KEY_FILE"),
])
def test_bad_settings_name_the_variable(tmp_path, variables, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"ITOPS_INSTANCE_DIR": str(tmp_path), **variables})


def test_sla_targets_are_checked(tmp_path):
    from itops.config import ConfigError, load_config
    env = {"ITOPS_INSTANCE_DIR": str(tmp_path)}
    assert load_config({**env, "ITOPS_SLA_TARGETS": "critical=15/120, low=960/9600"})["ITOPS_SLA_TARGETS"] == {
        "critical": (15, 120), "low": (960, 9600)}
    with pytest.raises(ConfigError, match="priority=response/resolution"):
        load_config({**env, "ITOPS_SLA_TARGETS": "urgent=5/10"})
    with pytest.raises(ConfigError):
        load_config({**env, "ITOPS_SLA_TARGETS": "high=1h/8h"})
