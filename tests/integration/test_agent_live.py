"""The real agent (python -m itops.agent) on this machine against the app over real HTTP on loopback."""
import os
import socket
import stat
import subprocess
import sys

import psutil
from sqlalchemy import delete, select

from itops.assets import services
from itops.assets.models import Asset, InstalledSoftware
from itops.core.policy import Role
from itops.extensions import db


def agent(*args, state_path):
    env = {**os.environ, "ITOPS_AGENT_STATE": str(state_path)}
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(proxy, None)
    return subprocess.run([sys.executable, "-m", "itops.agent", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_real_agent_enrolls_pushes_and_reports_a_change(live_server, make_user, client_as, tmp_path):
    it_staff = make_user(Role.IT_STAFF)
    secret = services.issue_enrollment_token("live test", by=it_staff).secret
    db.session.commit()
    state = tmp_path / "agent" / "state.json"

    enrolled = agent("enroll", "--server", live_server, "--token", secret, state_path=state)
    assert enrolled.returncode == 0, enrolled.stderr
    assert secret not in enrolled.stdout + enrolled.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o600

    pushed = agent("run", "--once", state_path=state)
    assert pushed.returncode == 0, pushed.stderr
    asset = db.session.scalar(select(Asset))
    db.session.refresh(asset)
    assert asset.facts["hostname"] == socket.gethostname()
    assert asset.facts["memory"]["total_bytes"] == psutil.virtual_memory().total

    it = client_as(Role.IT_STAFF)
    page = it.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert socket.gethostname() in page
    assert f"{psutil.virtual_memory().total / 1073741824:.1f} GiB" in page
    software = it.get(f"/assets/{asset.id}/software").get_data(as_text=True)
    bash_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bash"], capture_output=True,
                                  text=True).stdout
    assert ">bash<" in software and bash_version in software

    # Simulate a change on the machine between two reports: as far as the server knows, bash was not
    # installed and the machine had 1 GiB less memory. The next real report must show both, once.
    events_before = len(services.history(asset))
    db.session.execute(delete(InstalledSoftware).where(InstalledSoftware.asset_id == asset.id,
                                                       InstalledSoftware.name == "bash"))
    asset.software_digest = None
    asset.facts = {**asset.facts, "memory": {"total_bytes": psutil.virtual_memory().total - 1073741824}}
    db.session.commit()

    again = agent("run", "--once", state_path=state)
    assert again.returncode == 0, again.stderr
    db.session.expire_all()
    history = services.history(asset)
    assert len(history) == events_before + 1
    change = history[0]
    assert change.kind == "inventory" and "software installed: 1" in change.details["changes"]
    assert any(line.startswith("memory ") for line in change.details["changes"])
    assert any(item.startswith("bash ") for item in change.details["installed"])

    # A third report with nothing new records nothing.
    assert agent("run", "--once", state_path=state).returncode == 0
    db.session.expire_all()
    assert len(services.history(asset)) == events_before + 1


def test_real_agent_with_a_revoked_enrollment_token_exits_3(live_server, make_user, tmp_path):
    it_staff = make_user(Role.IT_STAFF)
    issued = services.issue_enrollment_token("revoked", by=it_staff)
    services.revoke_enrollment_token(issued.token.id, by=it_staff)
    db.session.commit()
    result = agent("enroll", "--server", live_server, "--token", issued.secret, state_path=tmp_path / "s.json")
    assert result.returncode == 3
    assert "unknown, revoked or expired" in result.stderr + result.stdout
    assert db.session.scalar(select(Asset.id)) is None
