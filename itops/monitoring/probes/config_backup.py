"""Configuration backup for SSH network devices: fetch the running configuration over the pooled
session, normalise it so that only real changes change it, hash it, and diff two versions.

Normalising drops the lines a device rewrites on its own (timestamps of the last change, the NTP
clock period it keeps adjusting, the "Building configuration..." preamble) and, by default, the
values of passwords, secrets, keys and SNMP communities, so a stored backup is never a secret
and a changed hash always means somebody changed the configuration.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass

from itops.monitoring.probes import ProbeError, ProbeTarget, mask_secrets
from itops.monitoring.probes.ssh import checked_device_type, ssh_error_in_words
from itops.monitoring.probes.ssh_pool import SshSessionPool, shared_pool

RUNNING_CONFIG_COMMANDS = {
    "cisco_ios": "show running-config",
    "cisco_xe": "show running-config",
    "cisco_xr": "show running-config",
    "cisco_nxos": "show running-config",
    "arista_eos": "show running-config",
    "juniper_junos": "show configuration | display set",
}
VOLATILE_LINES = [re.compile(pattern) for pattern in (
    r"^! Last configuration change at ",
    r"^! NVRAM config last updated at ",
    r"^! No configuration change since last restart",
    r"^!\s*Time: ",  # NX-OS
    r"^ntp clock-period ",
    r"^Building configuration",
    r"^Current configuration\s*:",
    r"^## Last commit: ",  # Junos
)]
SECRET_VALUE = re.compile(
    r"(?P<keyword>\b(?:secret|password|community|key-string|pre-shared-key|key)\s+(?:[0-9]\s+)?)(?P<value>\S+)",
    re.IGNORECASE)
REMOVED = "<removed>"


@dataclass(frozen=True)
class ConfigSnapshot:
    text: str  # normalised
    sha256: str
    command: str


def fetch_running_config(target: ProbeTarget, timeout: float, *, pool: SshSessionPool | None = None,
                         command: str | None = None, hide_secrets: bool = True) -> ConfigSnapshot:
    """The device's running configuration, normalised and hashed.

    Raises ProbeError with the reason in words when the device cannot be read.
    """
    device_type = checked_device_type(target.device_type)
    command = command or RUNNING_CONFIG_COMMANDS.get(device_type)
    if not command:
        raise ProbeError(f"no known running-configuration command for device type {device_type}")
    try:
        raw = (pool or shared_pool()).run(
            target, device_type,
            lambda session, deadline: session.send(command, deadline),
            timeout)
    except Exception as exc:
        raise ProbeError(mask_secrets(ssh_error_in_words(exc, timeout), target.credentials)) from None
    text = mask_secrets(normalise_config(raw, hide_secrets=hide_secrets), target.credentials)
    if not text.strip():
        raise ProbeError(f"{command!r} returned no configuration")
    return ConfigSnapshot(text=text, sha256=config_hash(text), command=command)


def normalise_config(text: str, *, hide_secrets: bool = True) -> str:
    lines = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.rstrip()
        if any(pattern.match(line) for pattern in VOLATILE_LINES):
            continue
        if hide_secrets:
            line = SECRET_VALUE.sub(lambda m: m["keyword"] + REMOVED, line)
        lines.append(line)
    return "\n".join(lines).strip("\n") + "\n"


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def config_diff(old: str, new: str, *, old_label: str = "previous", new_label: str = "current",
                context: int = 3) -> str:
    """A unified diff between two configurations ("" when they are the same)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=old_label, tofile=new_label, n=context))
