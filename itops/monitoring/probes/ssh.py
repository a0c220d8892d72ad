"""ssh: commands over a pooled netmiko session (cisco_ios with enable, linux, any netmiko device type).

Commands come from params["commands"] or the device type's defaults below. Output is parsed with
the ntc-templates TextFSM template for (device type, command) where one exists, and with the small
Linux parsers otherwise; the facts become values (uptime_s, if_up, load1, disk_used_pct ...) and
details (version, serial, interfaces, filesystems ...).

Degraded: an interface named in params["required_interfaces"] is not up, or (linux) a filesystem is
fuller than params["disk_threshold_pct"] (default 90) or load1 is above params["load_threshold"].
"""

from __future__ import annotations

import time
from typing import Any

from itops.monitoring.probes import ProbeError, ProbeResult, ProbeTarget, clip, down, judged, ms_since
from itops.monitoring.probes import parsing
from itops.monitoring.probes.ssh_pool import PooledSession, SshSessionPool, connection_errors, shared_pool

DEFAULT_COMMANDS: dict[str, tuple[str, ...]] = {
    "cisco_ios": ("show version", "show ip interface"),
    "cisco_xe": ("show version", "show ip interface"),
    "cisco_nxos": ("show version", "show interface brief"),
    "cisco_xr": ("show version", "show ip interface brief"),
    "arista_eos": ("show version", "show interfaces status"),
    "juniper_junos": ("show version", "show interfaces terse"),
    "linux": (parsing.LINUX_UPTIME_LOAD, parsing.LINUX_DF, parsing.LINUX_FREE),
}
MAX_COMMANDS = 20
MAX_COMMAND_LENGTH = 200
DISK_THRESHOLD_PCT = 90.0


def probe(target: ProbeTarget, params: dict, timeout: float, *, pool: SshSessionPool | None = None) -> ProbeResult:
    device_type = checked_device_type(params.get("device_type") or target.device_type)
    commands = _commands(params.get("commands"), device_type)
    if not target.credentials.username:
        raise ProbeError("no username in the device's credentials")
    pool = pool or shared_pool()
    started = time.perf_counter()
    try:
        outputs = pool.run(target, device_type, lambda session, deadline: _send_all(session, commands, deadline), timeout)
    except Exception as exc:
        return down(ssh_error_in_words(exc, timeout), latency_ms=ms_since(started))
    latency_ms = ms_since(started)
    facts = facts_from_outputs(device_type, outputs, params)
    facts.details["device_type"] = device_type
    output = clip("\n".join(f"$ {command}\n{text.strip()}" for command, text in outputs.items()))
    return judged(latency_ms, facts.values, facts.details, output, facts.problems)


def facts_from_outputs(device_type: str, outputs: dict[str, str], params: dict) -> parsing.Facts:
    facts = parsing.Facts()
    required = _string_list(params.get("required_interfaces", []), "required_interfaces")
    interfaces: list[dict] = []
    parsed_commands = []
    for command, text in outputs.items():
        try:
            if device_type == "linux" and _parse_linux(command, text, facts, params):
                parsed_commands.append(command)
                continue
            rows = parsing.textfsm_rows(device_type, command, text)
            if rows is None:
                continue
            if "version" in command:
                parsing.version_facts(rows, facts)
            interfaces += parsing.interfaces_from_rows(rows)
            parsed_commands.append(command)
        except (ValueError, LookupError, TypeError):  # odd output is shown as it is, never fails the poll
            facts.details.setdefault("unparsed_commands", []).append(command)
    if interfaces or required:
        parsing.interface_facts(interfaces, facts, required)
    load_threshold = params.get("load_threshold")
    if load_threshold is not None and facts.values.get("load1", 0) > float(load_threshold):
        facts.problems.append(f"load {facts.values['load1']:g} above {float(load_threshold):g}")
    facts.details["parsed_commands"] = parsed_commands
    return facts


def _parse_linux(command: str, text: str, facts: parsing.Facts, params: dict) -> bool:
    if command in (parsing.LINUX_UPTIME_LOAD, "uptime"):
        parsing.linux_uptime_load(text, facts)
    elif command.startswith("df"):
        parsing.linux_disks(text, facts, float(params.get("disk_threshold_pct", DISK_THRESHOLD_PCT)))
    elif command.startswith("free"):
        parsing.linux_memory(text, facts)
    else:
        return False
    return True


def _send_all(session: PooledSession, commands: tuple[str, ...], deadline: float) -> dict[str, str]:
    return {command: session.send(command, deadline) for command in commands}


def checked_device_type(device_type: Any) -> str:
    from netmiko.ssh_dispatcher import CLASS_MAPPER

    if not device_type:
        raise ProbeError("no device type for this SSH check (e.g. cisco_ios or linux)")
    if device_type not in CLASS_MAPPER or device_type.endswith(("_telnet", "_serial")):
        raise ProbeError(f"unknown SSH device type {device_type!r}")
    return device_type


def _commands(commands: Any, device_type: str) -> tuple[str, ...]:
    if commands is None:
        return DEFAULT_COMMANDS.get(device_type, ())
    commands = _string_list(commands, "commands")
    if len(commands) > MAX_COMMANDS or any(not c.strip() or len(c) > MAX_COMMAND_LENGTH or "\n" in c for c in commands):
        raise ProbeError(f"bad commands: at most {MAX_COMMANDS} one-line commands of up to {MAX_COMMAND_LENGTH} characters")
    return tuple(commands)


def _string_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ProbeError(f"{name} must be a list of strings")
    return list(value)


def ssh_error_in_words(exc: Exception, timeout: float) -> str:
    """Why the SSH poll failed, in words (never the exception's own text where it may echo input)."""
    import paramiko
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException, ReadTimeout

    if isinstance(exc, ProbeError):
        return str(exc)
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, NetmikoTimeoutException) and isinstance(cause, paramiko.ssh_exception.NoValidConnectionsError):
        return "connection refused"
    if isinstance(exc, NetmikoAuthenticationException):
        return "authentication failed (wrong username, password or key)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ReadTimeout):
        return f"the device did not finish answering within {timeout:g} s"
    if isinstance(exc, (NetmikoTimeoutException, TimeoutError)):
        return f"no SSH answer within {timeout:g} s"
    if isinstance(exc, paramiko.SSHException):
        if "banner" in str(exc).lower():
            return "no SSH banner: not an SSH server, or it hangs"
        return f"SSH failed: {exc}"
    if isinstance(exc, ValueError) and "enable" in str(exc).lower():
        return "could not enter enable mode (wrong enable secret?)"
    if isinstance(exc, EOFError):
        return "the device closed the connection"
    if isinstance(exc, connection_errors()):
        return f"connection failed: {type(exc).__name__}: {exc}"
    raise exc

