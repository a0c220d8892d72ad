"""Monitoring's vocabulary: check kinds, health states, and the damping and retention defaults."""
from __future__ import annotations

import enum


class CheckKind(enum.StrEnum):
    TCP = "tcp"
    ICMP = "icmp"
    SSH = "ssh"
    SNMP = "snmp"
    SIP = "sip"
    AGENT = "agent"       # the inventory agent's last report; no network probe

    @property
    def label(self) -> str:
        return {"tcp": "TCP connect", "icmp": "Ping (ICMP)", "ssh": "SSH command", "snmp": "SNMP",
                "sip": "SIP OPTIONS", "agent": "Inventory agent"}[self.value]


class Health(enum.StrEnum):
    """An asset's health. Ordered by how much attention it needs: the dashboard lists the first ones first."""
    DOWN = "down"
    DEGRADED = "degraded"
    UNREACHABLE = "unreachable"   # its parent (e.g. the switch it hangs off) is down: no ticket of its own
    UNKNOWN = "unknown"           # not polled yet
    MAINTENANCE = "maintenance"   # inside a maintenance window: no state changes, no alerts
    UP = "up"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def rank(self) -> int:
        return list(Health).index(self)


# What a single probe answered (a ProbeResult's status), stored per sample as a small integer.
SAMPLE_STATUS = {"up": 0, "degraded": 1, "down": 2}
SAMPLE_STATUS_NAMES = {code: name for name, code in SAMPLE_STATUS.items()}
