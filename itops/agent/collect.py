"""Inventory collection: one JSON-ready report in the shape docs/agent-protocol.md describes.

Each section comes from a small function that takes the sources it reads (a directory, a parsed
file, a psutil result, a command runner) as arguments whose defaults are the real ones, so tests
can point it at fixtures. A value the platform does not expose is None: nothing here is guessed.
"""
from __future__ import annotations

import ipaddress
import platform
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

AGENT_VERSION = "1.0.0"
SCHEMA_VERSION = 1

# The protocol's limits: strings of at most 255 characters, and these lists (by key) capped.
MAX_TEXT = 255
CAPS = {"packages": 20_000, "disks": 64, "network": 64, "addresses": 32, "users": 64}

DMI_DIR = Path("/sys/class/dmi/id")
CPUINFO = Path("/proc/cpuinfo")
# What firmware vendors leave in DMI fields when they never set them. Reporting one would let the
# server match unrelated machines by a shared "serial", so they count as unknown.
DMI_PLACEHOLDERS = frozenset({
    "", "none", "n/a", "na", "unknown", "default string", "to be filled by o.e.m.", "o.e.m.", "oem",
    "not specified", "not applicable", "not available", "system serial number", "system product name",
    "system manufacturer", "system name", "0123456789",
})
_MAC = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
COMMAND_TIMEOUT = 120  # rpm -qa on a cold cache can take a while; dpkg-query is quick
# dpkg-query -W also lists removed packages whose configuration files remain, so we ask for each
# package's status and drop the ones that are not (or not completely) on disk.
DPKG_COMMAND = ["dpkg-query", "-W", "-f=${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n"]
DPKG_ABSENT = frozenset({"not-installed", "config-files", "half-installed"})
RPM_COMMAND = ["rpm", "-qa", "--qf", "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n"]

Runner = Callable[[list[str]], subprocess.CompletedProcess]


def collect_report() -> dict[str, Any]:
    """The full inventory report of this machine, with the protocol's caps applied."""
    system = platform.system()
    sessions = psutil.users()
    report = {
        "schema": SCHEMA_VERSION,
        "agent_version": AGENT_VERSION,
        "collected_at": iso_time(time.time()),
        "hostname": socket.gethostname(),
        "fqdn": fqdn(),
        "os": os_info(system),
        "boot_time": iso_time(psutil.boot_time()),
        "hardware": hardware_info(),
        "cpu": cpu_info(system=system),
        "memory": {"total_bytes": psutil.virtual_memory().total},
        "disks": disks_info(),
        "network": network_info(),
        "users": users_info(sessions),
        "last_user": last_user(sessions),
        "battery": battery_info(),
        "software": software_info(),
    }
    return enforce_limits(report)


def enforce_limits(value: Any, key: str | None = None) -> Any:
    """A copy of `value` with every string cut to MAX_TEXT and each capped list cut to its cap.

    Done once over the whole report, so no section can forget it; lists are cut after the sections
    have sorted them, so the most useful entries (e.g. the latest sessions) are the ones kept.
    """
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, dict):
        return {name: enforce_limits(item, name) for name, item in value.items()}
    if isinstance(value, list):
        kept = value[:CAPS[key]] if key in CAPS else value
        return [enforce_limits(item) for item in kept]
    return value


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def fqdn(lookup: Callable[[], str] = socket.getfqdn) -> str | None:
    """The fully qualified name, or None: getfqdn falls back to the bare hostname or to 'localhost'."""
    name = lookup()
    if "." not in name or name.lower().startswith("localhost"):
        return None
    return name


def os_info(system: str | None = None, os_release: Mapping[str, str] | None = None) -> dict[str, Any]:
    system = system or platform.system()
    name, version = _os_name_version(system, os_release)
    return {"system": system, "name": name, "version": version,
            "kernel": platform.release(), "arch": platform.machine()}


def _os_name_version(system: str, os_release: Mapping[str, str] | None) -> tuple[str, str | None]:
    """Distribution name and version: /etc/os-release on Linux, the platform module elsewhere."""
    if system == "Linux":
        if os_release is None:
            try:
                os_release = platform.freedesktop_os_release()
            except OSError:
                os_release = {}
        # Rolling distributions (Arch, Debian sid) have no VERSION_ID.
        return os_release.get("NAME") or system, os_release.get("VERSION_ID") or None
    if system == "Darwin":
        return "macOS", platform.mac_ver()[0] or None
    # Windows: platform.release() says "10" on Windows 11 before Python 3.12; the build is reliable.
    return system, platform.version() or None


def hardware_info(dmi_dir: Path = DMI_DIR) -> dict[str, str | None]:
    """Manufacturer, model and serial from DMI (Linux). product_serial is usually readable by root only."""
    return {"manufacturer": _dmi_value(dmi_dir / "sys_vendor"),
            "model": _dmi_value(dmi_dir / "product_name"),
            "serial": _dmi_value(dmi_dir / "product_serial")}


def _dmi_value(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:  # no DMI on this platform, or not readable by this user
        return None
    if value.casefold() in DMI_PLACEHOLDERS or not value.strip("0 "):
        return None
    return value


def cpu_info(cpuinfo: Path = CPUINFO, system: str | None = None) -> dict[str, Any]:
    return {"model": cpu_model(cpuinfo, system),
            "cores_physical": psutil.cpu_count(logical=False),
            "cores_logical": psutil.cpu_count(logical=True),
            "frequency_mhz": cpu_frequency(psutil.cpu_freq())}


def cpu_model(cpuinfo: Path = CPUINFO, system: str | None = None) -> str | None:
    """'model name' from /proc/cpuinfo on Linux (platform.processor() there is only the arch)."""
    if (system or platform.system()) != "Linux":
        return platform.processor() or None
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None  # e.g. many ARM kernels do not name the CPU


def cpu_frequency(freq: Any) -> float | None:
    """The maximum frequency when known, else the current one: the current one changes with load,
    which would show up as an inventory change on every report. psutil reports 0 for unknown."""
    if freq is None:
        return None
    for mhz in (freq.max, freq.current):
        if mhz and mhz > 0:
            return round(float(mhz), 1)
    return None


def disks_info(partitions: Iterable[Any] | None = None,
               usage: Callable[[str], Any] = psutil.disk_usage) -> list[dict[str, Any]]:
    if partitions is None:
        partitions = psutil.disk_partitions(all=False)
    disks = []
    for part in partitions:
        if _is_pseudo_mount(part):
            continue
        try:
            space = usage(part.mountpoint)
        except OSError:  # PermissionError, or a drive without media
            continue
        disks.append({"device": part.device, "mountpoint": part.mountpoint, "fstype": part.fstype,
                      "total_bytes": space.total, "used_bytes": space.used})
    return disks


def _is_pseudo_mount(part: Any) -> bool:
    """Snap packages and other loop-mounted images: read-only, always full, and not storage."""
    return (part.fstype == "squashfs" or part.device.startswith("/dev/loop")
            or part.mountpoint == "/snap" or part.mountpoint.startswith("/snap/"))


def network_info(if_addrs: Mapping[str, Iterable[Any]] | None = None) -> list[dict[str, Any]]:
    """Interfaces with a real MAC or a non-loopback address; loopback carries nothing worth recording."""
    if if_addrs is None:
        if_addrs = psutil.net_if_addrs()
    interfaces = []
    for name in sorted(if_addrs):
        addrs = list(if_addrs[name])
        mac = next(filter(None, (_mac(a.address) for a in addrs if a.family == psutil.AF_LINK)), None)
        ips = (_ip_address(a.address) for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))
        addresses = [ip for ip in ips if ip]
        if mac or addresses:
            interfaces.append({"name": name, "mac": mac, "addresses": addresses})
    return interfaces


def _mac(raw: str | None) -> str | None:
    """A 48-bit MAC as aa:bb:cc:dd:ee:ff (Windows writes AA-BB-...), or None for the all-zero
    loopback address and for other link addresses (InfiniBand, tunnels) that are not MACs."""
    value = (raw or "").lower().replace("-", ":")
    if not _MAC.fullmatch(value) or value == "00:00:00:00:00:00":
        return None
    return value


def _ip_address(raw: str) -> str | None:
    """The address without its zone ('fe80::1%eth0' -> 'fe80::1'); None for loopback or unparsable."""
    try:
        address = ipaddress.ip_address(raw.partition("%")[0])
    except ValueError:
        return None
    return None if address.is_loopback else str(address)


def users_info(sessions: Iterable[Any]) -> list[dict[str, Any]]:
    """Logged-in sessions, latest first (so the cap keeps the latest)."""
    return [{"name": s.name, "terminal": s.terminal or None, "host": s.host or None, "started": iso_time(s.started)}
            for s in sorted(sessions, key=lambda s: s.started, reverse=True)]


def last_user(sessions: Iterable[Any]) -> str | None:
    """The user of the most recently started session."""
    latest = max(sessions, key=lambda s: s.started, default=None)
    return latest.name if latest else None


def battery_info(read: Callable[[], Any] | None = None) -> dict[str, Any] | None:
    """None without a battery (or where psutil has no sensors_battery)."""
    read = read or getattr(psutil, "sensors_battery", None)
    battery = read() if read else None
    if battery is None:
        return None
    seconds = battery.secsleft  # negative psutil constants mean "unknown" and "on mains"
    return {"percent": round(float(battery.percent), 1), "plugged": battery.power_plugged,
            "seconds_left": int(seconds) if seconds is not None and seconds >= 0 else None}


def run_command(argv: list[str]) -> subprocess.CompletedProcess:
    """Run a program without a shell; FileNotFoundError when it is not installed."""
    return subprocess.run(argv, capture_output=True, text=True, encoding="utf-8", errors="replace",
                          timeout=COMMAND_TIMEOUT, check=False)


def software_info(run: Runner = run_command) -> dict[str, Any]:
    """Installed packages from dpkg, else rpm, else an 'unsupported' status saying why."""
    for manager, argv, parse in (("dpkg", DPKG_COMMAND, _dpkg_packages), ("rpm", RPM_COMMAND, _rpm_packages)):
        try:
            done = run(argv)
        except FileNotFoundError:
            continue
        except subprocess.TimeoutExpired:
            return _software("error", manager, detail=f"{argv[0]} did not finish within {COMMAND_TIMEOUT} s")
        except OSError as error:
            return _software("error", manager, detail=f"{argv[0]}: {error.strerror or error}")
        if done.returncode != 0:
            detail = (done.stderr or "").strip() or f"{argv[0]} exited with status {done.returncode}"
            return _software("error", manager, detail=detail)
        return _software("ok", manager, packages=sorted(parse(done.stdout), key=lambda p: (p["name"], p["arch"] or "")))
    return _software("unsupported", None, detail="no supported package manager (dpkg-query or rpm) on this machine")


def _software(status: str, manager: str | None, packages: list[dict] | None = None,
              detail: str | None = None) -> dict[str, Any]:
    return {"status": status, "manager": manager, "packages": packages or [], "detail": detail}


def _rows(stdout: str, width: int) -> list[list[str]]:
    return [fields for line in stdout.splitlines() if len(fields := line.split("\t")) == width]


def _package(name: str, version: str, arch: str) -> dict[str, str | None]:
    return {"name": name, "version": version, "arch": arch if arch not in ("", "(none)") else None}


def _dpkg_packages(stdout: str) -> list[dict]:
    return [_package(*row[1:]) for row in _rows(stdout, 4) if row[0] not in DPKG_ABSENT]


def _rpm_packages(stdout: str) -> list[dict]:
    # gpg-pubkey "packages" are the signing keys rpm has imported, not software.
    return [_package(*row) for row in _rows(stdout, 3) if row[0] != "gpg-pubkey"]
