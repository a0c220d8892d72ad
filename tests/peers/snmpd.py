"""Session fixture `snmpd`: a private net-snmp agent on a free loopback UDP port, v2c and v3.

Its config, persistent state and log live in a temporary folder (-C ignores /etc/snmp), so the
system agent is never touched. v2c: a read-only community; v3: one user with SHA authentication
and AES privacy (authPriv).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers.daemon import Daemon, DaemonError, peer_in_temp_folder, start_daemon

SNMPD = Path("/usr/sbin/snmpd")
SYS_NAME = "itops-test-agent"


@dataclass
class SnmpdPeer:
    host: str
    port: int
    community: str = field(repr=False)
    v3_user: str
    v3_auth_key: str = field(repr=False)
    v3_priv_key: str = field(repr=False)
    daemon: Daemon = field(repr=False)

    @property
    def v3(self) -> dict:
        return {"user": self.v3_user, "auth_protocol": "SHA", "auth_key": self.v3_auth_key,
                "priv_protocol": "AES", "priv_key": self.v3_priv_key}

    def stop(self) -> None:
        # snmpd rewrites its persistent file while exiting, so wait for it before the folder goes
        self.daemon.stop()


def start_snmpd(workdir: Path) -> SnmpdPeer:
    if not SNMPD.exists():
        raise DaemonError(f"{SNMPD} is missing (Debian package snmpd; see scripts/install.sh)")
    port = _free_udp_port()
    peer_args = dict(community="itops-ro-community", v3_user="itopsv3", v3_auth_key="itops-auth-key-1",
                     v3_priv_key="itops-priv-key-1")
    config = workdir / "snmpd.conf"
    config.write_text("\n".join([
        f"agentAddress udp:127.0.0.1:{port}",
        f"rocommunity {peer_args['community']} 127.0.0.1",
        f'createUser {peer_args["v3_user"]} SHA "{peer_args["v3_auth_key"]}" AES "{peer_args["v3_priv_key"]}"',
        f"rouser {peer_args['v3_user']} priv",
        f"sysName {SYS_NAME}", "sysLocation rack-42", "sysContact ops@example.org", "",
    ]))
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(workdir)}
    daemon = start_daemon("snmpd", [str(SNMPD), "-f", "-C", "-c", str(config), "-Lf", str(workdir / "snmpd.log")],
                          log_path=workdir / "snmpd.out", env=env, ready=lambda: _answers_v2c(port, peer_args["community"]))
    return SnmpdPeer("127.0.0.1", port, daemon=daemon, **peer_args)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers_v2c(port: int, community: str) -> bool:
    """A hand-built v2c GET of sysUpTime.0: any answer means the agent is listening."""
    encoded = community.encode()
    varbind = bytes.fromhex("300c0608 2b06010201010300 0500".replace(" ", ""))
    pdu_body = bytes.fromhex("020101 020100 020100") + bytes([0x30, len(varbind)]) + varbind
    pdu = bytes([0xA0, len(pdu_body)]) + pdu_body
    body = bytes.fromhex("020101") + bytes([0x04, len(encoded)]) + encoded + pdu
    message = bytes([0x30, len(body)]) + body
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        try:
            sock.sendto(message, ("127.0.0.1", port))
            return bool(sock.recv(2048))
        except OSError:
            return False


@pytest.fixture(scope="session")
def snmpd() -> Iterator[SnmpdPeer]:
    with peer_in_temp_folder("snmpd", start_snmpd) as peer:
        yield peer
