"""Device probes: one function per check kind, all behind `run_probe`.

A probe asks one device one question (is the port open, does it answer ICMP, what does `show
version` say, what does SNMP report, does the phone answer SIP OPTIONS) and returns a ProbeResult.
Probes are pure: no database, no Flask app, so they run the same in the scheduler's thread pool
and in a Celery worker. They never raise: every failure is a "down" result with the reason in
words, and every text that leaves a probe has the target's secrets masked out.

The kind modules (tcp, icmp, ssh, snmp, sip) are imported on first use, so importing this package
costs nothing and pulls in neither netmiko nor pysnmp.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
import traceback
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from itops.monitoring.probes.ssh_pool import SshSessionPool

log = logging.getLogger(__name__)

PROBE_KINDS = ("tcp", "icmp", "ssh", "snmp", "sip")
MAX_OUTPUT_CHARS = 16_000
MAX_TIMEOUT_S = 300.0
MASK = "********"


@dataclass(frozen=True)
class Credentials:
    """Secrets for one device, already decrypted by the caller. None of them is in repr()."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    enable_secret: str | None = field(default=None, repr=False)
    snmp_community: str | None = field(default=None, repr=False)  # v2c
    # {"user", "auth_protocol", "auth_key", "priv_protocol", "priv_key"}; protocols as in snmp.AUTH_PROTOCOLS
    snmp_v3: dict | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)  # PEM/OpenSSH text, instead of a password

    def secrets(self) -> tuple[str, ...]:
        """Every secret value, longest first, so a secret inside another is masked whole."""
        values = [self.password, self.enable_secret, self.snmp_community, self.ssh_private_key]
        if self.snmp_v3:
            values += [self.snmp_v3.get("auth_key"), self.snmp_v3.get("priv_key")]
        return tuple(sorted({str(v) for v in values if v}, key=len, reverse=True))


@dataclass(frozen=True)
class ProbeTarget:
    host: str  # an address or a name
    port: int | None = None
    device_type: str | None = None  # netmiko device type for ssh (cisco_ios, linux, any netmiko type)
    credentials: Credentials = Credentials()


@dataclass(frozen=True)
class ProbeResult:
    status: str  # "up" | "degraded" | "down"
    latency_ms: float | None
    values: dict[str, float]  # numeric samples: uptime_s, load1, disk_used_pct, if_up, if_down, rtt_ms ...
    details: dict  # structured extras: version, serial, interfaces, sip status code and reason ...
    output: str | None = None  # the poll's text output, truncated, secrets masked
    error: str | None = None  # why it is down (or degraded), in words, secrets masked


class ProbeError(Exception):
    """A probe failed in a way it can put in words; the message becomes ProbeResult.error."""


def down(error: str, *, latency_ms: float | None = None, details: dict | None = None,
         output: str | None = None) -> ProbeResult:
    return ProbeResult("down", latency_ms, {}, details or {}, output, error)


def judged(latency_ms: float | None, values: dict[str, float], details: dict, output: str | None,
           problems: list[str]) -> ProbeResult:
    """An answered probe: "degraded" with the problems listed when there are any, else "up"."""
    if problems:
        details = {**details, "problems": problems}
        return ProbeResult("degraded", latency_ms, values, details, output, "; ".join(problems))
    return ProbeResult("up", latency_ms, values, details, output, None)


def run_probe(kind: str, target: ProbeTarget, params: dict, timeout: float, *,
              ssh_pool: SshSessionPool | None = None) -> ProbeResult:
    """Run one probe of `kind` against `target`; never raises.

    `timeout` bounds the whole probe in seconds. `ssh_pool` is the session pool for ssh probes
    (default: this process's shared pool).
    """
    credentials = target.credentials
    try:
        if kind not in PROBE_KINDS:
            raise ProbeError(f"unknown check kind {kind!r} (known: {', '.join(PROBE_KINDS)})")
        _check_timeout(timeout)
        _check_host(target.host)
        params = dict(params or {})
        module = importlib.import_module(f"itops.monitoring.probes.{kind}")
        if kind == "ssh":
            result = module.probe(target, params, float(timeout), pool=ssh_pool)
        else:
            result = module.probe(target, params, float(timeout))
    except ProbeError as exc:
        result = down(str(exc))
    except Exception as exc:  # a probe must never take its caller down
        log.warning("%s probe of %s failed unexpectedly: %s", kind, target.host,
                    mask_secrets(traceback.format_exc(), credentials))
        result = down(f"unexpected probe failure: {type(exc).__name__}: {exc}")
    return _masked(result, credentials)


def mask_secrets(text: str, credentials: Credentials) -> str:
    for secret in credentials.secrets():
        text = text.replace(secret, MASK)
    return text


def ms_since(started: float) -> float:
    """Milliseconds since a time.perf_counter() value, rounded to the microsecond."""
    return round((time.perf_counter() - started) * 1000, 3)


def clip(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not kept]"


def port_from(target: ProbeTarget, params: dict, default: int | None) -> int:
    """params["port"], else the target's port, else `default`; refused unless 1..65535."""
    port = params.get("port", target.port if target.port is not None else default)
    if port is None:
        raise ProbeError("no port given for this check")
    if isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).isdigit() \
            or not 1 <= int(port) <= 65535:
        raise ProbeError(f"bad port {port!r}: a number from 1 to 65535")
    return int(port)


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT_S:
        raise ProbeError(f"bad timeout {timeout!r}: seconds, more than 0 and at most {MAX_TIMEOUT_S:.0f}")


def _check_host(host: Any) -> None:
    if not isinstance(host, str) or not host.strip() or len(host) > 253 or any(c.isspace() for c in host):
        raise ProbeError(f"bad address {host!r}")


def _masked(result: ProbeResult, credentials: Credentials) -> ProbeResult:
    """The one place where secrets are taken out of everything a probe returns."""
    if not credentials.secrets():
        return result
    return replace(
        result,
        output=None if result.output is None else mask_secrets(result.output, credentials),
        error=None if result.error is None else mask_secrets(result.error, credentials),
        details=_masked_value(result.details, credentials),
    )


def _masked_value(value: Any, credentials: Credentials) -> Any:
    if isinstance(value, str):
        return mask_secrets(value, credentials)
    if isinstance(value, dict):
        return {k: _masked_value(v, credentials) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked_value(v, credentials) for v in value]
    return value
