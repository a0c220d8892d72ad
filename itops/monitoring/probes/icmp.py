"""icmp: echo requests through icmplib, privileged (raw socket, as root) or unprivileged.

Unprivileged ICMP uses a datagram socket that Linux allows only to groups listed in
/proc/sys/net/ipv4/ping_group_range; the probe picks the mode the host allows and says which.
"""

from __future__ import annotations

import os
from pathlib import Path

from itops.monitoring.probes import ProbeError, ProbeResult, ProbeTarget, down, judged

PING_GROUP_RANGE = Path("/proc/sys/net/ipv4/ping_group_range")
MAX_COUNT = 20


def icmp_mode() -> str | None:
    """"privileged" as root, "unprivileged" when ping_group_range admits one of our groups, else None."""
    if os.geteuid() == 0:
        return "privileged"
    try:
        low, high = (int(part) for part in PING_GROUP_RANGE.read_text().split())
    except (OSError, ValueError):
        return None
    groups = {os.getegid(), *os.getgroups()}
    return "unprivileged" if any(low <= gid <= high for gid in groups) else None


def probe(target: ProbeTarget, params: dict, timeout: float) -> ProbeResult:
    from icmplib import ICMPLibError, NameLookupError, ping

    count = params.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ProbeError(f"bad count {count!r}: a number from 1 to {MAX_COUNT}")
    mode = icmp_mode()
    if mode is None:
        return down("ICMP is not permitted here: not root and ping_group_range admits none of our groups")
    interval = min(0.2, timeout / (count + 1))
    # icmplib's timeout is per reply after the last request: keep the whole probe inside `timeout`
    reply_timeout = max(0.05, timeout - interval * (count - 1))
    try:
        host = ping(target.host, count=count, interval=interval, timeout=reply_timeout,
                    privileged=mode == "privileged")
    except NameLookupError:
        return down(f"cannot resolve {target.host}")
    except ICMPLibError as exc:
        return down(f"ICMP failed: {exc}")
    details = {"mode": mode, "address": host.address, "sent": host.packets_sent, "received": host.packets_received}
    if host.packets_sent == 0:
        return down(f"no echo request could be sent to {target.host}", details=details)
    if not host.is_alive:
        return down(f"no echo reply within {timeout:g} s", details=details)
    values = {"rtt_ms": host.avg_rtt, "rtt_min_ms": host.min_rtt, "rtt_max_ms": host.max_rtt,
              "packet_loss_pct": round(host.packet_loss * 100, 1)}
    problems = [f"{values['packet_loss_pct']:g}% packet loss"] if host.packet_loss else []
    return judged(host.avg_rtt, values, details, None, problems)
