"""Probe output parsing, result rules, the session pool's bookkeeping and config normalisation,
all without a device (the real peers are in tests/integration/test_probes.py)."""

import threading

import pytest

from itops.monitoring.probes import Credentials, ProbeTarget, run_probe
from itops.monitoring.probes import parsing
from itops.monitoring.probes.config_backup import config_diff, config_hash, normalise_config
from itops.monitoring.probes.sip import options_request, parse_response
from itops.monitoring.probes.ssh import facts_from_outputs
from itops.monitoring.probes.ssh_pool import SshSessionPool

SHOW_VERSION = """\
Cisco IOS Software, C3750 Software (C3750-IPSERVICESK9-M), Version 12.2(58)SE2, RELEASE SOFTWARE (fc1)
Technical Support: http://www.cisco.com/techsupport
Copyright (c) 1986-2011 by Cisco Systems, Inc.
Compiled Thu 21-Jul-11 01:53 by prod_rel_team

ROM: Bootstrap program is C3750 boot loader
BOOTLDR: C3750 Boot Loader (C3750-HBOOT-M) Version 12.2(44)SE5, RELEASE SOFTWARE (fc1)

core-sw1 uptime is 1 year, 2 weeks, 3 days, 4 hours, 5 minutes
System returned to ROM by power-on
System image file is "flash:c3750-ipservicesk9-mz.122-58.SE2.bin"

cisco WS-C3750G-24TS-1U (PowerPC405) processor (revision H0) with 131072K bytes of memory.
Processor board ID FOC1530X2F7
Last reset from power-on
System serial number            : FOC1530X2F7

Configuration register is 0xF
"""

SHOW_IP_INTERFACE = """\
GigabitEthernet0/1 is up, line protocol is up
  Internet address is 10.0.0.1/24
GigabitEthernet0/2 is down, line protocol is down
  Internet protocol processing disabled
GigabitEthernet0/3 is administratively down, line protocol is down
  Internet protocol processing disabled
"""

PROC_UPTIME_LOADAVG = "3600.50 7000.25\n0.52 0.58 0.59 1/234 5678\n"

DF = """
Filesystem     1024-blocks      Used Available Capacity Mounted on
/dev/vda         264212084  29786132 221000000      12% /
tmpfs              1000000    999000      1000     100% /dev/shm
/dev/vdb            100000     95000      5000      95% /var/lib/data
"""

FREE = """\
               total        used        free      shared  buff/cache   available
Mem:     25276510208  1600000000 20000000000    1000000  3600000000 23676510208
Swap:              0           0           0
"""

SWITCH = Credentials(username="netops", password="Sw1tch-Pa55", enable_secret="En4ble-Secr3t")


def test_show_version_gives_version_serial_hardware_and_uptime_through_textfsm():
    facts = facts_from_outputs("cisco_ios", {"show version": SHOW_VERSION}, {})
    assert facts.details["version"] == "12.2(58)SE2"
    assert facts.details["serial"] == "FOC1530X2F7"
    assert facts.details["hardware"] == "WS-C3750G-24TS-1U"
    assert facts.details["hostname"] == "core-sw1"
    assert facts.values["uptime_s"] == 365 * 86400 + 2 * 7 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60
    assert facts.problems == []


def test_interface_states_tell_admin_down_from_down_and_required_ones_degrade():
    facts = facts_from_outputs("cisco_ios", {"show ip interface": SHOW_IP_INTERFACE},
                               {"required_interfaces": ["GigabitEthernet0/1", "GigabitEthernet0/2", "Vlan99"]})
    assert [(i["name"], i["status"]) for i in facts.details["interfaces"]] == [
        ("GigabitEthernet0/1", "up"), ("GigabitEthernet0/2", "down"), ("GigabitEthernet0/3", "admin down")]
    assert facts.values["if_up"] == 1 and facts.values["if_down"] == 2
    assert facts.problems == ["interface GigabitEthernet0/2 is down", "interface Vlan99 not found"]


def test_output_without_a_template_is_kept_but_not_parsed():
    facts = facts_from_outputs("cisco_ios", {"show widgets": "widget 1 is fine"}, {})
    assert facts.details["parsed_commands"] == [] and facts.values == {}


def test_linux_uptime_load_disks_and_memory():
    facts = facts_from_outputs("linux", {parsing.LINUX_UPTIME_LOAD: PROC_UPTIME_LOADAVG, parsing.LINUX_DF: DF,
                                         parsing.LINUX_FREE: FREE}, {"disk_threshold_pct": 90})
    assert facts.values["uptime_s"] == 3600.5
    assert (facts.values["load1"], facts.values["load5"], facts.values["load15"]) == (0.52, 0.58, 0.59)
    assert [fs["mount"] for fs in facts.details["filesystems"]] == ["/", "/var/lib/data"]  # tmpfs is not a disk
    assert facts.values["disk_used_pct"] == 95
    assert facts.problems == ["disk /var/lib/data is 95% full (threshold 90%)"]
    assert facts.values["mem_total_bytes"] == 25276510208
    assert facts.values["mem_used_pct"] == pytest.approx(6.3, abs=0.1)


def test_linux_load_threshold_and_plain_uptime_output():
    output = " 18:50:41 up 17 min,  0 user,  load average: 3.12, 2.47, 1.40"
    facts = facts_from_outputs("linux", {"uptime": output}, {"load_threshold": 3})
    assert facts.values["load1"] == 3.12
    assert facts.problems == ["load 3.12 above 3"]


def test_uptime_seconds_reads_every_unit():
    assert parsing.uptime_seconds("2 days, 1 hour, 1 second") == 2 * 86400 + 3601
    assert parsing.uptime_seconds("no idea") is None


def test_credentials_repr_shows_no_secret():
    credentials = Credentials("netops", "Sw1tch-Pa55", "En4ble-Secr3t", "c0mmunity-x",
                              {"user": "u", "auth_key": "auth-k3y-1", "priv_key": "priv-k3y-1"}, "-----KEY-----")
    text = repr(ProbeTarget("127.0.0.1", 22, "cisco_ios", credentials))
    assert "netops" in text
    for secret in credentials.secrets():
        assert secret not in text


@pytest.mark.parametrize(("kind", "target", "params", "timeout", "error"), [
    ("telnet", ProbeTarget("127.0.0.1", 23), {}, 1, "unknown check kind 'telnet'"),
    ("tcp", ProbeTarget("127.0.0.1"), {}, 1, "no port given"),
    ("tcp", ProbeTarget("127.0.0.1", 70000), {}, 1, "bad port 70000"),
    ("tcp", ProbeTarget("127.0.0.1", 22), {}, 0, "bad timeout 0"),
    ("tcp", ProbeTarget("not an address", 22), {}, 1, "bad address"),
    ("ssh", ProbeTarget("127.0.0.1", 22, "cisco_ioss", SWITCH), {}, 1, "unknown SSH device type 'cisco_ioss'"),
    ("ssh", ProbeTarget("127.0.0.1", 22, "linux", Credentials()), {}, 1, "no username"),
    ("ssh", ProbeTarget("127.0.0.1", 22, "linux", SWITCH), {"commands": "uptime"}, 1, "commands must be a list"),
    ("snmp", ProbeTarget("127.0.0.1", 161, credentials=Credentials(snmp_community="pub1ic")),
     {"oids": {"x": "1.3.6.x"}}, 1, "bad OID '1.3.6.x'"),
    ("snmp", ProbeTarget("127.0.0.1", 161), {}, 1, "no SNMP community"),
    ("snmp", ProbeTarget("127.0.0.1", 161, credentials=Credentials(snmp_v3={"user": "u", "auth_key": "k" * 8,
                                                                            "auth_protocol": "SHA999"})),
     {}, 1, "unknown SNMPv3 auth protocol 'SHA999'"),
    ("icmp", ProbeTarget("127.0.0.1"), {"count": 0}, 1, "bad count 0"),
])
def test_bad_check_settings_are_down_with_a_clear_error(kind, target, params, timeout, error):
    result = run_probe(kind, target, params, timeout)
    assert result.status == "down"
    assert error in result.error


class FakeConnection:
    """Stands in for a netmiko session; echoes the password to prove output is masked."""

    def __init__(self, password, fail_next=0):
        self.password, self.fail_next, self.closed, self.commands = password, fail_next, False, []

    def send_command(self, command, expect_string, read_timeout):
        assert expect_string == "sw01\\#"  # the prompt found at login, not looked up again
        if self.fail_next:
            self.fail_next -= 1
            raise EOFError("peer went away")
        self.commands.append(command)
        return f"ran {command} with {self.password}"

    def find_prompt(self):
        return "sw01#"

    def disconnect(self):
        self.closed = True


class FakeConnector:
    def __init__(self):
        self.opened: list[FakeConnection] = []
        self.fail_first_command = False

    def __call__(self, target, device_type, timeout):
        connection = FakeConnection(target.credentials.password, fail_next=1 if self.fail_first_command else 0)
        self.fail_first_command = False
        self.opened.append(connection)
        return connection


def _switch_target(password="Sw1tch-Pa55"):
    return ProbeTarget("127.0.0.1", 2201, "cisco_ios", Credentials("netops", password, "En4ble-Secr3t"))


def test_pool_reuses_a_session_and_masks_secrets_in_what_the_probe_returns():
    connector = FakeConnector()
    pool = SshSessionPool(connect=connector)
    first = run_probe("ssh", _switch_target(), {"commands": ["show clock"]}, 2, ssh_pool=pool)
    second = run_probe("ssh", _switch_target(), {"commands": ["show clock"]}, 2, ssh_pool=pool)
    assert first.status == second.status == "up"
    assert pool.handshakes == 1 and len(connector.opened) == 1
    assert "Sw1tch-Pa55" not in second.output and "********" in second.output


def test_pool_reconnects_once_when_a_reused_session_fails():
    connector = FakeConnector()
    pool = SshSessionPool(connect=connector)
    pool.run(_switch_target(), "cisco_ios", lambda session, deadline: session.send("a", deadline), 2)
    connector.opened[0].fail_next = 1  # the device restarted while the session sat idle
    assert pool.run(_switch_target(), "cisco_ios", lambda session, deadline: session.send("b", deadline), 2).startswith("ran b")
    assert pool.handshakes == 2 and connector.opened[0].closed


def test_pool_does_not_retry_a_fresh_session_that_fails():
    connector = FakeConnector()
    connector.fail_first_command = True
    pool = SshSessionPool(connect=connector)
    result = run_probe("ssh", _switch_target(), {"commands": ["show clock"]}, 2, ssh_pool=pool)
    assert result.status == "down" and result.error == "the device closed the connection"
    assert pool.handshakes == 1 and pool.open_sessions == 0


def test_pool_opens_a_new_session_when_the_credentials_change():
    connector = FakeConnector()
    pool = SshSessionPool(connect=connector)
    for password in ("old-pass-1", "old-pass-1", "new-pass-2"):
        pool.run(_switch_target(password), "cisco_ios", lambda session, deadline: session.send("x", deadline), 2)
    assert pool.handshakes == 2 and connector.opened[0].closed


def test_pool_closes_idle_sessions_and_all_sessions():
    connector = FakeConnector()
    pool = SshSessionPool(connect=connector, max_idle=60)
    for port in (1, 2):
        target = ProbeTarget("127.0.0.1", port, "cisco_ios", SWITCH)
        pool.run(target, "cisco_ios", lambda session, deadline: None, 2)
    assert pool.close_idle() == 0 and pool.open_sessions == 2
    assert pool.close_idle(max_idle=0) == 2 and pool.open_sessions == 0
    pool.run(_switch_target(), "cisco_ios", lambda session, deadline: None, 2)
    pool.close_all()
    assert pool.open_sessions == 0 and all(c.closed for c in connector.opened)


def test_pool_gives_a_session_to_one_poll_at_a_time():
    pool = SshSessionPool(connect=FakeConnector())
    inside, overlaps, lock = [0], [], threading.Lock()

    def work(session, deadline):
        with lock:
            inside[0] += 1
            overlaps.append(inside[0])
        threading.Event().wait(0.01)
        with lock:
            inside[0] -= 1

    threads = [threading.Thread(target=pool.run, args=(_switch_target(), "cisco_ios", work, 5)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(overlaps) == 1 and len(overlaps) == 8 and pool.handshakes == 1


RUNNING_CONFIG = """\
Building configuration...

Current configuration : 1234 bytes
!
! Last configuration change at 10:01:02 UTC Mon Jan 1 2024 by admin
! NVRAM config last updated at 10:01:03 UTC Mon Jan 1 2024 by admin
!
version 15.2
hostname core-sw1   
enable secret 5 $1$abcd$0123456789abcdefghij
username admin privilege 15 password 7 0822455D0A16
snmp-server community s3cret-comm RO
ntp clock-period 36028797
interface GigabitEthernet0/1
 description uplink
end
"""


def test_config_normalisation_drops_volatile_lines_and_hides_secrets():
    text = normalise_config(RUNNING_CONFIG)
    assert "Last configuration change" not in text and "NVRAM config" not in text
    assert "ntp clock-period" not in text and "Building configuration" not in text and "Current configuration" not in text
    assert "enable secret 5 <removed>" in text and "password 7 <removed>" in text
    assert "snmp-server community <removed> RO" in text and "s3cret-comm" not in text
    assert "hostname core-sw1\n" in text  # trailing blanks stripped
    assert text.startswith("!\n!\nversion 15.2\n") and text.endswith("end\n")


def test_volatile_changes_keep_the_hash_and_real_changes_show_in_the_diff():
    later = RUNNING_CONFIG.replace("10:01:02", "11:22:33").replace("36028797", "36028800")
    assert config_hash(normalise_config(later)) == config_hash(normalise_config(RUNNING_CONFIG))
    changed = normalise_config(RUNNING_CONFIG.replace(" description uplink", " description uplink to core"))
    diff = config_diff(normalise_config(RUNNING_CONFIG), changed, old_label="v1", new_label="v2")
    assert diff.splitlines()[:2] == ["--- v1", "+++ v2"]
    assert "- description uplink" in diff and "+ description uplink to core" in diff
    assert config_diff(changed, changed) == ""


def test_sip_options_request_is_well_formed_and_responses_are_parsed():
    request = options_request("127.0.0.1", 5062, "127.0.0.1", 40000, call_id="abc123", branch="z9hG4bKx1",
                              from_tag="t1").decode()
    head, _, body = request.partition("\r\n\r\n")
    lines = head.split("\r\n")
    assert lines[0] == "OPTIONS sip:127.0.0.1:5062 SIP/2.0" and body == ""
    assert "Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKx1;rport" in lines
    assert {"Max-Forwards: 70", "Call-ID: abc123", "CSeq: 1 OPTIONS", "Content-Length: 0"} <= set(lines)
    assert any(line.startswith("From: ") and line.endswith(";tag=t1") for line in lines)
    code, reason, headers = parse_response(b"SIP/2.0 503 Service Unavailable\r\ni: abc123\r\nCSeq: 1 OPTIONS\r\n\r\n")
    assert (code, reason, headers["call-id"]) == (503, "Service Unavailable", "abc123")
    assert parse_response(b"HTTP/1.1 200 OK\r\n\r\n") is None
