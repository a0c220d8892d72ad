"""Turning command output into facts: TextFSM templates from ntc-templates where one exists
(show version, show ip interface, show interfaces ... for network devices), small parsers for the
Linux commands that have no template (/proc/uptime and /proc/loadavg, df -P, free -b).

Everything here is pure text in, data out, so it is tested without any device.
"""

from __future__ import annotations

import functools
import io
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

LINUX_UPTIME_LOAD = "cat /proc/uptime /proc/loadavg"
LINUX_DF = "df -P -k"
LINUX_FREE = "free -b"

# Filesystems that say nothing about a disk filling up.
PSEUDO_FILESYSTEMS = {"tmpfs", "devtmpfs", "udev", "none", "shm", "proc", "sysfs", "cgroup", "cgroup2", "overlay"}

_UPTIME_UNITS = {"year": 365 * 86400, "week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}
_UPTIME_PART = re.compile(r"(\d+)\s+(year|week|day|hour|minute|second)s?", re.IGNORECASE)
_PROC_UPTIME_LOADAVG = re.compile(r"\s*([\d.]+)\s+[\d.]+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+\d+/\d+")
_LOAD_AVERAGE = re.compile(r"load averages?:\s*([\d.]+),?\s+([\d.]+),?\s+([\d.]+)")

_NAME_KEYS = ("interface", "port", "intf", "name")
_STATUS_KEYS = ("link_status", "status", "link", "admin_state")
_PROTOCOL_KEYS = ("protocol_status", "proto", "protocol")


@dataclass
class Facts:
    """What a poll learned: numeric values for the history, details for the device page."""

    values: dict[str, float] = field(default_factory=dict)
    details: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def textfsm_rows(platform: str, command: str, output: str) -> list[dict] | None:
    """Rows parsed by the ntc-templates template for (platform, command), or None when there is
    no template for it or the output does not fit it.

    The same rows as ntc_templates.parse.parse_output, for a fraction of its CPU: that builds a
    CliTable (a deep copy of the whole index), scans the index and compiles the template on every
    call. Here the template is looked up once per (platform, command) and each thread keeps its
    compiled state machine, reset before every parse. Commands whose index row names several
    templates (merged by key) still go through parse_output.
    """
    from ntc_templates.parse import ParsingException, parse_output
    from textfsm import TextFSMError

    try:
        template = _template_text(platform, command)
        if template is _SEVERAL_TEMPLATES:
            return parse_output(platform=platform, command=command, data=output)
        if template is None:
            return None
        machines = _per_thread.__dict__.setdefault("textfsm", {})
        fsm = machines.get((platform, command))
        if fsm is None:
            import textfsm

            fsm = machines[(platform, command)] = textfsm.TextFSM(io.StringIO(template))
        fsm.Reset()
        header = [name.lower() for name in fsm.header]
        return [dict(zip(header, record)) for record in fsm.ParseText(output)]
    except (ParsingException, TextFSMError):
        return None


_SEVERAL_TEMPLATES = object()
_per_thread = threading.local()


@functools.lru_cache(maxsize=512)
def _template_text(platform: str, command: str):
    """The ntc-templates template for (platform, command) as text; None when there is none."""
    from ntc_templates.parse import _get_template_dir
    from textfsm import clitable

    template_dir = _get_template_dir()
    index = clitable.CliTable("index", template_dir).index
    row = index.GetRowMatch({"Command": command, "Platform": platform})
    if not row:
        return None
    names = index.index[row]["Template"].split(":")
    if len(names) > 1:
        return _SEVERAL_TEMPLATES
    return Path(template_dir, names[0]).read_text()


def uptime_seconds(text: str) -> float | None:
    """Seconds from 'uptime is 1 year, 18 weeks, 5 days, 1 hour, 11 minutes' style text."""
    parts = _UPTIME_PART.findall(text or "")
    if not parts:
        return None
    return float(sum(int(count) * _UPTIME_UNITS[unit.lower()] for count, unit in parts))


def interfaces_from_rows(rows: list[dict]) -> list[dict]:
    """[{name, status, protocol}] from the rows of any interface template.

    status is "up", "down" or "admin down" (shut on purpose, not a fault).
    """
    interfaces = []
    for row in rows:
        name = _first(row, _NAME_KEYS)
        status = _first(row, _STATUS_KEYS)
        if not name or not status:
            continue
        status = status.lower()
        if "admin" in status or status == "disabled":
            status = "admin down"
        elif status in ("up", "connected"):
            status = "up"
        else:
            status = "down"
        interfaces.append({"name": name, "status": status, "protocol": (_first(row, _PROTOCOL_KEYS) or "").lower()})
    return interfaces


def version_facts(rows: list[dict], facts: Facts) -> None:
    """Version, serial, hardware, hostname and uptime from a parsed `show version`."""
    if not rows:
        return
    row = rows[0]
    for detail, keys in (("version", ("version", "os")), ("serial", ("serial", "serial_number", "serialnum")),
                         ("hardware", ("hardware", "model", "platform")), ("hostname", ("hostname",)),
                         ("uptime", ("uptime",))):
        value = _first(row, keys)
        if value:
            facts.details[detail] = value
    seconds = uptime_seconds(facts.details.get("uptime", ""))
    if seconds is not None:
        facts.values["uptime_s"] = seconds


def interface_facts(interfaces: list[dict], facts: Facts, required: list[str]) -> None:
    facts.details["interfaces"] = interfaces
    facts.values["if_up"] = float(sum(1 for i in interfaces if i["status"] == "up"))
    facts.values["if_down"] = float(sum(1 for i in interfaces if i["status"] != "up"))
    status_by_name = {i["name"]: i["status"] for i in interfaces}
    for name in required:
        status = status_by_name.get(name)
        if status is None:
            facts.problems.append(f"interface {name} not found")
        elif status != "up":
            facts.problems.append(f"interface {name} is {status}")


def linux_uptime_load(output: str, facts: Facts) -> None:
    """`cat /proc/uptime /proc/loadavg`: '123.4 56.7' then '0.52 0.58 0.59 1/234 5678'."""
    match = _PROC_UPTIME_LOADAVG.match(output)
    if match:
        facts.values["uptime_s"] = float(match[1])
        facts.values.update(load1=float(match[2]), load5=float(match[3]), load15=float(match[4]))
        return
    match = _LOAD_AVERAGE.search(output)  # the output of plain `uptime`
    if match:
        facts.values.update(load1=float(match[1]), load5=float(match[2]), load15=float(match[3]))


def linux_disks(output: str, facts: Facts, threshold_pct: float) -> None:
    """`df -P -k`: use per mount of real filesystems; the fullest one is disk_used_pct."""
    filesystems = []
    for line in output.strip().splitlines()[1:]:
        columns = line.split(None, 5)
        if len(columns) < 6 or not columns[4].rstrip("%").isdigit() or columns[0] in PSEUDO_FILESYSTEMS:
            continue
        if columns[5].startswith(("/dev", "/run", "/sys", "/proc")):
            continue
        filesystems.append({"filesystem": columns[0], "mount": columns[5], "size_kb": int(columns[1]),
                            "used_kb": int(columns[2]), "used_pct": float(columns[4].rstrip("%"))})
    if not filesystems:
        return
    facts.details["filesystems"] = filesystems
    fullest = max(filesystems, key=lambda fs: fs["used_pct"])
    facts.values["disk_used_pct"] = fullest["used_pct"]
    for fs in filesystems:
        if fs["used_pct"] > threshold_pct:
            facts.problems.append(f"disk {fs['mount']} is {fs['used_pct']:g}% full (threshold {threshold_pct:g}%)")


def linux_memory(output: str, facts: Facts) -> None:
    """`free -b`: the Mem: line (total used free shared buff/cache available)."""
    for line in output.splitlines():
        columns = line.split()
        if columns[:1] == ["Mem:"] and len(columns) >= 7 and all(c.isdigit() for c in columns[1:7]):
            total, available = int(columns[1]), int(columns[6])
            facts.values["mem_total_bytes"] = float(total)
            facts.values["mem_available_bytes"] = float(available)
            if total:
                facts.values["mem_used_pct"] = round(100 * (total - available) / total, 1)
            return


def _first(row: dict, keys: tuple[str, ...]) -> str | None:
    """The first non-empty value among `keys`; list values (serial: ['X']) give their first item."""
    for key in keys:
        value = row.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return str(value)
    return None
