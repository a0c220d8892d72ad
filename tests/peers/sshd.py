"""Session fixture `sshd`: a second, private OpenSSH server on a free loopback port (netmiko `linux`).

It has its own config and host key in a temporary folder and never touches the system sshd.
Two ways in:
- key: the user running the tests, with a throwaway Ed25519 key made for this session;
- password: when the tests run as root, a throwaway system account `itopsprobe<pid>` with a random
  password (removed at the end; accounts left by killed runs are removed at the next start).
Root itself cannot log in with a password (PermitRootLogin prohibit-password), so a wrong
password is refused by sshd for real.
"""

from __future__ import annotations

import getpass
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from itops.demo.slapd import free_port
from tests.peers.daemon import Daemon, DaemonError, peer_in_temp_folder, start_daemon

SSHD = Path("/usr/sbin/sshd")
THROWAWAY_PREFIX = "itopsprobe"


@dataclass
class SshdPeer:
    host: str
    port: int
    key_user: str
    private_key: str = field(repr=False)
    password_user: str | None
    password: str | None = field(repr=False)
    daemon: Daemon = field(repr=False)

    def stop(self) -> None:
        self.daemon.stop()
        if self.password_user:
            _delete_account(self.password_user)


def start_sshd(workdir: Path, port: int) -> SshdPeer:
    if not SSHD.exists():
        raise DaemonError(f"{SSHD} is missing (Debian package openssh-server; see scripts/install.sh)")
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation dir: sshd refuses to start without it
    _keygen(workdir / "host_ed25519")
    _keygen(workdir / "client_key")
    shutil.copy(workdir / "client_key.pub", workdir / "authorized_keys")
    password_user, password = _throwaway_account() if os.geteuid() == 0 else (None, None)
    key_user = getpass.getuser()
    config = workdir / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {workdir / 'host_ed25519'}",
        f"PidFile {workdir / 'sshd.pid'}", f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        "PubkeyAuthentication yes", "PasswordAuthentication yes", "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password", "StrictModes no", "UsePAM no", "PrintMotd no",
        f"AllowUsers {key_user} {password_user or ''}".strip(), "MaxStartups 50", "",
    ]))
    try:
        subprocess.run([str(SSHD), "-t", "-f", str(config)], check=True, capture_output=True, timeout=30)
        daemon = start_daemon("sshd", [str(SSHD), "-D", "-f", str(config), "-E", str(workdir / "sshd.log")],
                              log_path=workdir / "sshd.out", ready=lambda: _answers_ssh(port))
    except (subprocess.SubprocessError, DaemonError):
        if password_user:
            _delete_account(password_user)
        raise
    return SshdPeer("127.0.0.1", port, key_user, (workdir / "client_key").read_text(), password_user, password, daemon)


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   capture_output=True, timeout=30)


def _throwaway_account() -> tuple[str, str]:
    _delete_stale_accounts()
    name = f"{THROWAWAY_PREFIX}{os.getpid()}"
    password = "pw-" + secrets.token_urlsafe(12)
    if not _account_exists(name):
        subprocess.run(["useradd", "--no-create-home", "--home-dir", "/", "--shell", "/bin/sh",
                        "--comment", "itops test peer, safe to delete", name],
                       check=True, capture_output=True, timeout=30)
    subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True, capture_output=True, timeout=30)
    return name, password


def _delete_stale_accounts() -> None:
    """Remove accounts left behind by test runs that were killed (their pid is gone)."""
    for entry in pwd.getpwall():
        suffix = entry.pw_name[len(THROWAWAY_PREFIX):]
        if entry.pw_name.startswith(THROWAWAY_PREFIX) and suffix.isdigit() and not Path(f"/proc/{suffix}").exists():
            _delete_account(entry.pw_name)


def _delete_account(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, timeout=30, check=False)


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _answers_ssh(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@pytest.fixture(scope="session")
def sshd() -> Iterator[SshdPeer]:
    with peer_in_temp_folder("sshd", lambda workdir: start_sshd(workdir, free_port())) as peer:
        yield peer
