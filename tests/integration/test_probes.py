"""Every probe kind against its real peer: simulated Cisco switches, OpenSSH, net-snmp, SIP phones,
plain TCP listeners and ICMP on loopback; up, degraded and down, and the SSH session pool."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from itops.demo.slapd import free_port
from itops.monitoring.probes import Credentials, ProbeTarget, run_probe
from itops.monitoring.probes.config_backup import config_diff, fetch_running_config
from itops.monitoring.probes.icmp import icmp_mode
from itops.monitoring.probes.ssh_pool import SshSessionPool


@pytest.fixture
def pool() -> Iterator[SshSessionPool]:
    pool = SshSessionPool()
    yield pool
    pool.close_all()


def switch_target(switch, **changes) -> ProbeTarget:
    credentials = dict(username=switch.username, password=switch.password, enable_secret=switch.enable_secret)
    credentials.update(changes)
    return ProbeTarget(switch.host, switch.port, "cisco_ios", Credentials(**credentials))


def ssh_probe(target, pool, params=None, timeout=10.0):
    return run_probe("ssh", target, params or {}, timeout, ssh_pool=pool)


class Listener:
    """A plain TCP listener that accepts, then stays silent or sends `greeting` (garbage for SSH)."""

    def __init__(self, greeting: bytes | None = None, backlog: int = 16):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port = self.sock.getsockname()[1]
        self.greeting, self.accepted = greeting, []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            if self.greeting:
                conn.sendall(self.greeting)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


# tcp --------------------------------------------------------------------------------------------
def test_tcp_up_refused_and_timed_out():
    with Listener() as listener:
        up = run_probe("tcp", ProbeTarget("127.0.0.1", listener.port), {}, 2)
    assert up.status == "up" and up.latency_ms < 1000 and up.values["rtt_ms"] == up.latency_ms

    refused = run_probe("tcp", ProbeTarget("127.0.0.1"), {"port": free_port()}, 2)
    assert refused.status == "down" and "refused" in refused.error

    # a listener whose accept queue is full drops further SYNs: the connect hangs
    full = socket.create_server(("127.0.0.1", 0), backlog=0)
    fillers = [socket.create_connection(full.getsockname(), timeout=0.5) for _ in range(1)]
    try:
        started = time.monotonic()
        hung = run_probe("tcp", ProbeTarget("127.0.0.1", full.getsockname()[1]), {}, 0.5)
        assert hung.status == "down" and "no answer" in hung.error
        assert time.monotonic() - started < 2
    finally:
        for conn in fillers:
            conn.close()
        full.close()


# icmp -------------------------------------------------------------------------------------------
def test_icmp_echo_on_loopback_says_which_mode():
    if icmp_mode() is None:
        result = run_probe("icmp", ProbeTarget("127.0.0.1"), {}, 1)
        assert result.status == "down" and "not permitted" in result.error
        return
    result = run_probe("icmp", ProbeTarget("127.0.0.1"), {"count": 2}, 2)
    assert result.status == "up", result.error
    assert result.details["mode"] == icmp_mode() and result.details["received"] == 2
    assert result.values["packet_loss_pct"] == 0 and result.latency_ms < 1000


def test_icmp_unknown_name_is_down():
    result = run_probe("icmp", ProbeTarget("no-such-host.invalid"), {}, 1)
    assert result.status == "down" and "cannot resolve" in result.error


# ssh: simulated Cisco IOS -----------------------------------------------------------------------
def test_cisco_ios_with_enable_reports_version_serial_uptime_and_interfaces(switches, pool):
    switch = switches.switches[0]
    result = ssh_probe(switch_target(switch), pool)
    assert result.status == "up", result.error
    assert result.details["version"] == "12.2(58)SE2" and result.details["serial"] == "FOC1530X2F7"
    assert result.details["hostname"] == switch.hostname
    assert result.values["uptime_s"] > 365 * 86400
    assert len(result.details["interfaces"]) == 12 and result.values["if_down"] == 12
    assert result.details["parsed_commands"] == ["show version", "show ip interface"]
    assert "$ show version" in result.output and "Cisco IOS Software" in result.output


def test_cisco_required_interface_down_is_degraded(switches, pool):
    result = ssh_probe(switch_target(switches.switches[1]), pool, {"required_interfaces": ["FastEthernet0/1"]})
    assert result.status == "degraded" and result.error == "interface FastEthernet0/1 is down"
    assert result.details["version"]  # answered: everything else is still there


@pytest.mark.parametrize(("changes", "error"), [
    ({"password": "not-the-login"}, "authentication failed"),
    ({"enable_secret": "not-the-enable"}, "could not enter enable mode"),
])
def test_cisco_wrong_credentials_are_down_in_words(switches, pool, changes, error):
    result = ssh_probe(switch_target(switches.switches[2], **changes), pool)
    assert result.status == "down" and error in result.error


def test_ssh_closed_port_silent_server_and_garbage_banner_are_down_within_the_timeout(pool):
    closed = ssh_probe(ProbeTarget("127.0.0.1", free_port(), "cisco_ios", Credentials("a", "b")), pool)
    assert closed.status == "down" and closed.error == "connection refused"
    for greeting in (None, b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 100_000):
        with Listener(greeting) as listener:
            started = time.monotonic()
            result = ssh_probe(ProbeTarget("127.0.0.1", listener.port, "cisco_ios", Credentials("a", "b")), pool,
                               timeout=1.5)
            elapsed = time.monotonic() - started
        assert result.status == "down", greeting
        assert "SSH" in result.error and elapsed < 4


def test_a_second_poll_cycle_opens_no_ssh_connection(switches, pool):
    targets = [switch_target(s) for s in switches.switches]
    with ThreadPoolExecutor(3) as executor:
        first = list(executor.map(lambda t: ssh_probe(t, pool), targets))
        assert [r.status for r in first] == ["up"] * 3
        assert pool.handshakes == 3
        second = list(executor.map(lambda t: ssh_probe(t, pool), targets * 2))  # also two polls per device at once
    assert [r.status for r in second] == ["up"] * 6
    assert pool.handshakes == 3 and pool.open_sessions == 3


def test_pool_reconnects_after_the_switch_restarts(switch_farm, pool):
    farm = switch_farm(1)
    target = switch_target(farm.switches[0])
    assert ssh_probe(target, pool).status == "up" and pool.handshakes == 1
    farm.stop()
    down = ssh_probe(target, pool, timeout=3)
    assert down.status == "down" and down.error == "connection refused"
    farm.start()  # same port, new process: the pooled session is dead
    back = ssh_probe(target, pool)
    assert back.status == "up", back.error
    assert pool.handshakes == 2
    assert ssh_probe(target, pool).status == "up" and pool.handshakes == 2


def test_config_backup_is_normalised_hashed_and_diffed(switch_farm, pool):
    switch = switch_farm(1).switches[0]
    target = switch_target(switch)
    first = fetch_running_config(target, 10, pool=pool)
    assert first.text.startswith("version 12.1\n!\nhostname") and "Building configuration" not in first.text
    assert "Current configuration" not in first.text and first.text.endswith("end\n")
    assert fetch_running_config(target, 10, pool=pool).sha256 == first.sha256

    # the simulated IOS has no `end` in interface mode: leave configuration mode with two exits
    pool.run(target, "cisco_ios", lambda session, deadline: session.connection.send_config_set(
        ["interface FastEthernet0/3", "description uplink to core", "exit", "exit"], exit_config_mode=False), 10)
    second = fetch_running_config(target, 10, pool=pool)
    assert second.sha256 != first.sha256
    diff = config_diff(first.text, second.text)
    assert "+ description uplink to core" in diff
    assert pool.handshakes == 1


# ssh: linux over a real OpenSSH -----------------------------------------------------------------
def test_linux_over_openssh_with_a_key(sshd, pool):
    target = ProbeTarget(sshd.host, sshd.port, "linux", Credentials(sshd.key_user, ssh_private_key=sshd.private_key))
    result = ssh_probe(target, pool)
    assert result.status == "up", result.error
    assert result.values["uptime_s"] > 0 and "load1" in result.values
    assert 0 <= result.values["disk_used_pct"] <= 100 and result.values["mem_total_bytes"] > 0
    assert any(fs["mount"] == "/" for fs in result.details["filesystems"])
    assert "-----" not in result.output  # nothing of the key

    full = ssh_probe(target, pool, {"disk_threshold_pct": 0})
    assert full.status == "degraded" and "full (threshold 0%)" in full.error
    assert pool.handshakes == 1


def test_linux_over_openssh_with_a_password_and_a_wrong_one(sshd, pool):
    if sshd.password_user is None:
        pytest.skip("the throwaway password account needs root")
    good = ssh_probe(ProbeTarget(sshd.host, sshd.port, "linux", Credentials(sshd.password_user, sshd.password)), pool)
    assert good.status == "up", good.error
    bad = ssh_probe(ProbeTarget(sshd.host, sshd.port, "linux", Credentials(sshd.password_user, "pw-not-this-one")),
                    pool)
    assert bad.status == "down" and "authentication failed" in bad.error


# snmp -------------------------------------------------------------------------------------------
def snmp_target(snmpd, **credentials) -> ProbeTarget:
    return ProbeTarget(snmpd.host, snmpd.port, credentials=Credentials(**credentials))


def test_snmp_v2c_reads_system_interfaces_and_extra_oids(snmpd):
    result = run_probe("snmp", snmp_target(snmpd, snmp_community=snmpd.community),
                       {"oids": {"hrSystemProcesses": "1.3.6.1.2.1.25.1.6.0"}, "required_interfaces": ["lo"]}, 3)
    assert result.status == "up", result.error
    assert result.details["sys_name"] == "itops-test-agent" and "Linux" in result.details["sys_descr"]
    assert result.values["uptime_s"] >= 0 and result.values["hrSystemProcesses"] > 0
    lo = next(i for i in result.details["interfaces"] if i["name"] == "lo")
    assert lo["status"] == "up" and lo["in_octets"] >= 0
    assert result.values["if_up"] >= 1


def test_snmp_v3_auth_priv_and_a_missing_required_interface(snmpd):
    result = run_probe("snmp", snmp_target(snmpd, snmp_v3=snmpd.v3), {"required_interfaces": ["missing0"]}, 3)
    assert result.status == "degraded" and result.error == "interface missing0 not found"
    assert result.details["sys_name"] == "itops-test-agent"


def test_snmp_wrong_credentials_and_stopped_agent_are_down_within_the_timeout(snmpd):
    cases = [
        (snmp_target(snmpd, snmp_community="not-the-community"), "no SNMP answer"),
        (snmp_target(snmpd, snmp_v3={**snmpd.v3, "auth_key": "not-the-auth-key"}), "SNMPv3 authentication failed"),
        (ProbeTarget("127.0.0.1", free_port(), credentials=Credentials(snmp_community=snmpd.community)),
         "no SNMP answer"),
    ]
    for target, error in cases:
        started = time.monotonic()
        result = run_probe("snmp", target, {"retries": 0}, 0.8)
        assert result.status == "down" and error in result.error
        assert time.monotonic() - started < 2


# sip --------------------------------------------------------------------------------------------
def test_sip_options_200_503_silent_and_closed(sip_phones):
    ok = run_probe("sip", ProbeTarget("127.0.0.1", sip_phones["ok"].port), {}, 2)
    assert ok.status == "up" and ok.details["status_code"] == 200 and ok.details["reason"] == "OK"
    assert ok.values["rtt_ms"] < 1000 and ok.details["user_agent"] == "itops-test-phone"
    request = sip_phones["ok"].requests[-1]
    assert request.startswith(f"OPTIONS sip:127.0.0.1:{sip_phones['ok'].port} SIP/2.0\r\n")
    for header in ("Via: SIP/2.0/UDP ", ";branch=z9hG4bK", "Max-Forwards: 70", ";tag=", "Call-ID: ",
                   "CSeq: 1 OPTIONS", "Content-Length: 0"):
        assert header in request

    unavailable = run_probe("sip", ProbeTarget("127.0.0.1", sip_phones["unavailable"].port), {}, 2)
    assert unavailable.status == "degraded" and unavailable.error == "SIP 503 Service Unavailable"

    started = time.monotonic()
    silent = run_probe("sip", ProbeTarget("127.0.0.1", sip_phones["silent"].port), {}, 1.2)
    assert silent.status == "down" and silent.error == "no SIP answer within 1.2 s"
    assert 1.1 < time.monotonic() - started < 2
    assert len(sip_phones["silent"].requests) >= 2  # retransmitted on timer T1

    closed = run_probe("sip", ProbeTarget("127.0.0.1"), {"port": free_port()}, 1)
    assert closed.status == "down" and "closed" in closed.error


# secrets ----------------------------------------------------------------------------------------
def test_secrets_never_reach_results_or_logs(switches, snmpd, pool, caplog):
    caplog.set_level(logging.DEBUG)
    switch = switches.switches[0]
    results = [
        ssh_probe(switch_target(switch), pool),
        ssh_probe(switch_target(switch, password="wrong-login-Xy1"), pool),
        ssh_probe(switch_target(switch, enable_secret="wrong-enable-Xy2"), pool),
        run_probe("snmp", snmp_target(snmpd, snmp_v3={**snmpd.v3, "priv_key": "wrong-priv-Xy3"}), {"retries": 0}, 0.5),
        run_probe("snmp", snmp_target(snmpd, snmp_community=snmpd.community), {}, 3),
    ]
    secrets = [switch.password, switch.enable_secret, "wrong-login-Xy1", "wrong-enable-Xy2", "wrong-priv-Xy3",
               snmpd.community, snmpd.v3_auth_key, snmpd.v3_priv_key]
    seen = caplog.text + "".join(repr(r) for r in results)
    for secret in secrets:
        assert secret not in seen
