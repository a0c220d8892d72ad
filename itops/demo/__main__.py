"""`python -m itops.demo` (what `make run` calls): the whole embedded instance in one command.

Starts a private slapd under var/, migrates, loads the demo data on first start, and serves the
app with gunicorn on 127.0.0.1 beside the scheduler process. Ctrl-C stops everything it started.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from itops.config import PROJECT_ROOT
from itops.demo import data
from itops.demo.slapd import SlapdError, SlapdInstance, free_port, seed, start_slapd


def _instance_dir() -> Path:
    path = Path(os.environ.get("ITOPS_INSTANCE_DIR") or PROJECT_ROOT / "var").resolve()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _private_file(path: Path, make) -> str:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def _demo_state(instance_dir: Path) -> dict:
    """Ports chosen on first start, reused afterwards so bookmarks and logs stay valid."""
    path = instance_dir / "demo.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("ldap_port", free_port())
    path.write_text(json.dumps(state))
    return state


def _start_demo_switches(instance_dir: Path):
    """Three simulated Cisco switches on ports kept in demo.json, with a login generated on first start."""
    from itops.demo.switches import SwitchError, start_switches

    state = _demo_state(instance_dir)
    if "switch_ports" not in state:
        state["switch_ports"] = [free_port() for _ in data.DEMO_SWITCH_NAMES]
        (instance_dir / "demo.json").write_text(json.dumps(state))
    login_file = instance_dir / "demo-switch-login.json"
    login = json.loads(_private_file(login_file, lambda: json.dumps({
        "username": "netops", "password": secrets.token_urlsafe(16), "enable_secret": secrets.token_urlsafe(16)})))
    try:
        farm = start_switches(len(state["switch_ports"]), ports=state["switch_ports"], username=login["username"],
                              password=login["password"], enable_secret=login["enable_secret"], name_prefix="demo-sw",
                              log_path=instance_dir / "switches.log")
    except (SwitchError, OSError) as exc:
        print(f"itops: the simulated switches did not start ({exc}); the demo runs without them", file=sys.stderr)
        return None, {}
    return farm, {"ITOPS_DEMO_SWITCHES": ",".join(str(s.port) for s in farm.switches),
                  "ITOPS_DEMO_SWITCH_LOGIN_FILE": str(login_file)}


def _stop_leftover_slapd(workdir: Path) -> None:
    """A previous run that was killed hard may have left its slapd running; stop it first."""
    pid_file = workdir / "slapd.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
        if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"slapd"):
            os.kill(pid, signal.SIGTERM)
    except (ValueError, OSError):
        pass


def _start_directory(instance_dir: Path, logins: dict) -> tuple[SlapdInstance, Path]:
    workdir = instance_dir / "slapd"
    password_file = instance_dir / "slapd-admin-password"
    admin_password = _private_file(password_file, lambda: secrets.token_urlsafe(24))
    port = int(os.environ.get("ITOPS_DEMO_LDAP_PORT") or _demo_state(instance_dir)["ldap_port"])
    _stop_leftover_slapd(workdir)
    slapd = start_slapd(workdir, port=port, admin_password=admin_password)
    seed(slapd, data.directory_people(logins), data.DIRECTORY_GROUPS)
    return slapd, password_file


def _run(command: list[str], env: dict) -> None:
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise SystemExit(f"itops: `{' '.join(command[-3:])}` failed with exit code {done.returncode}")


def _wait_until_healthy(url: str, server: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"itops: the web server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"itops: the web server did not answer {url} within {seconds:.0f} s")


def _start_own_agent(instance_dir: Path, server_url: str) -> subprocess.Popen | None:
    """This machine's inventory agent, so the demo shows one real computer. Enrolls on first start."""
    env = {**os.environ, "ITOPS_AGENT_STATE": str(instance_dir / "agent" / "state.json")}
    if not (instance_dir / "agent" / "state.json").exists():
        token = (instance_dir / "demo-enrollment-token").read_text().strip()
        enrolled = subprocess.run([sys.executable, "-m", "itops.agent", "enroll", "--server", server_url,
                                   "--token", token], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
        if enrolled.returncode != 0:
            print(f"itops: this machine's agent did not enroll ({enrolled.stderr.strip()}); the demo runs without it",
                  file=sys.stderr)
            return None
    return subprocess.Popen([sys.executable, "-m", "itops.agent", "run", "--interval", "900"], env=env,
                            cwd=PROJECT_ROOT)


def _interrupt(*_args) -> None:
    raise KeyboardInterrupt


def main() -> int:
    instance_dir = _instance_dir()
    logins = data.demo_logins(instance_dir)
    host = os.environ.get("ITOPS_HOST", "127.0.0.1")
    port = int(os.environ.get("ITOPS_PORT", "5000"))
    try:
        slapd, password_file = _start_directory(instance_dir, logins)
    except SlapdError as exc:
        print(f"itops: the demo directory (slapd) did not start: {exc}", file=sys.stderr)
        return 1

    env = {
        **os.environ,
        "ITOPS_INSTANCE_DIR": str(instance_dir),
        "ITOPS_LDAP_URL": slapd.url,
        "ITOPS_LDAP_BASE_DN": slapd.base_dn,
        "ITOPS_LDAP_BIND_DN": slapd.admin_dn,
        "ITOPS_LDAP_BIND_PASSWORD_FILE": str(password_file),
        "ITOPS_BASE_URL": f"http://{host}:{port}",
        "FLASK_APP": "app",
    }
    env.pop("ITOPS_LDAP_BIND_PASSWORD", None)
    flask = [sys.executable, "-m", "flask"]
    children: list[subprocess.Popen] = []
    switches, switch_env = _start_demo_switches(instance_dir)
    env.update(switch_env)
    try:
        _run([*flask, "db", "upgrade"], env)
        _run([*flask, "itops", "demo", "load"], env)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "1", "--threads", "8",
             "--access-logfile", "-", "--graceful-timeout", "5", "--no-control-socket", "app:app"],
            env=env, cwd=PROJECT_ROOT))
        _wait_until_healthy(f"http://{host}:{port}/healthz", children[0])
        # The periodic work (email outbox, SLA sweep, auto-close) runs in its own process, never in web workers.
        children.append(subprocess.Popen([*flask, "itops", "scheduler"], env=env, cwd=PROJECT_ROOT))
        agent = _start_own_agent(instance_dir, f"http://{host}:{port}")
        if agent is not None:
            children.append(agent)
        print("\n".join([
            "", f"itops is running at http://{host}:{port}/  (directory: {slapd.url}"
            + (f"; {len(switches.switches)} simulated switches on 127.0.0.1:"
               + ",".join(str(s.port) for s in switches.switches) if switches else "") + ")",
            "Demo logins (also in var/demo-logins.json):", *data.login_lines(logins),
            "Press Ctrl-C to stop.", ""]), flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        server = children[0]  # the agent may stop (e.g. its token revoked); the demo goes on without it
        while server.poll() is None:
            try:
                server.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        failed = server.returncode not in (None, 0)
        return 1 if failed else 0
    except KeyboardInterrupt:
        return 0
    finally:
        print("\nitops: stopping the web server, the scheduler, the switches and the directory…", flush=True)
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if switches is not None:
            switches.stop()
        slapd.stop()


if __name__ == "__main__":
    sys.exit(main())
