"""snmp: SNMP v2c (snmp_wire) or v3 (pysnmp 7), by numeric OID (no MIB files needed or loaded).

One GET reads sysUpTime, sysDescr and sysName (plus any scalars in params["oids"], name -> OID)
and ifNumber; then GETBULK walks the interface table's name, admin status, oper status and octet
counters, column by column in parallel, stopping at the end of each column. ifNumber sizes the
GETBULK, so a small table costs one request with no rows beyond it.

v2c, the common case, goes through snmp_wire: requests and responses BER-coded by hand on a UDP
socket, about a tenth of pysnmp's CPU per poll (pysnmp cost ~56 ms of CPU for a poll with MIB
lookups, ~12 ms without; most of a 10,000-check cycle). v3 goes through pysnmp, its answers read
by numeric OID without MIB lookups (lookupMib=False). pysnmp is asyncio-only and an SnmpEngine
costs ~0.15 s to build, so each thread keeps one event loop and one engine and reuses them for
every v3 poll it runs (the scheduler's pool threads and Celery worker threads alike).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
import re
import threading
import time
from typing import Any

from itops.monitoring.probes import ProbeError, ProbeResult, ProbeTarget, Credentials, down, judged, ms_since, port_from
from itops.monitoring.probes import parsing
from itops.monitoring.probes.snmp_wire import NO_ANSWER, V2cClient, octets_text

SNMP_PORT = 161
SYS_DESCR, SYS_UPTIME, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"  # rows in ifTable
IF_COLUMNS = {  # ifTable columns by numeric OID (IF-MIB)
    "name": (1, 3, 6, 1, 2, 1, 2, 2, 1, 2),  # ifDescr
    "admin": (1, 3, 6, 1, 2, 1, 2, 2, 1, 7),  # ifAdminStatus
    "oper": (1, 3, 6, 1, 2, 1, 2, 2, 1, 8),  # ifOperStatus
    "in_octets": (1, 3, 6, 1, 2, 1, 2, 2, 1, 10),  # ifInOctets
    "out_octets": (1, 3, 6, 1, 2, 1, 2, 2, 1, 16),  # ifOutOctets
}
AUTH_PROTOCOLS = {"MD5": "usmHMACMD5AuthProtocol", "SHA": "usmHMACSHAAuthProtocol",
                  "SHA224": "usmHMAC128SHA224AuthProtocol", "SHA256": "usmHMAC192SHA256AuthProtocol",
                  "SHA384": "usmHMAC256SHA384AuthProtocol", "SHA512": "usmHMAC384SHA512AuthProtocol"}
PRIV_PROTOCOLS = {"DES": "usmDESPrivProtocol", "3DES": "usm3DESEDEPrivProtocol", "AES": "usmAesCfb128Protocol",
                  "AES128": "usmAesCfb128Protocol", "AES192": "usmAesCfb192Protocol", "AES256": "usmAesCfb256Protocol"}
NUMERIC_OID = re.compile(r"^\.?[0-2](\.\d{1,10}){1,127}$")
MAX_WALK_REQUESTS = 200  # a guard against agents that never leave the table
MAX_REPETITIONS = 25
MAX_OIDS = 50

_per_thread = threading.local()


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def probe(target: ProbeTarget, params: dict, timeout: float) -> ProbeResult:
    if _loop_running_here():
        # pysnmp (v3) runs its own event loop, which a thread that already runs one cannot (an async
        # caller, or Playwright's sync API in the test process): such a poll gets a thread of its own.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snmp") as pool:
            return pool.submit(probe, target, params, timeout).result()
    port = port_from(target, params, default=SNMP_PORT)
    extra_oids = _extra_oids(params.get("oids", {}))
    required = params.get("required_interfaces", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise ProbeError("required_interfaces must be a list of strings")
    retries = params.get("retries", 1)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
        raise ProbeError(f"bad retries {retries!r}: 0 to 5")
    deadline = time.monotonic() + timeout
    session = _session(target, port, params.get("version"), timeout / (retries + 1), retries, deadline)
    try:
        facts, latency_ms = _poll(session, extra_oids, bool(params.get("interfaces", True)))
    except TimeoutError:
        return down(f"no SNMP answer within {timeout:g} s (agent down, wrong community, or filtered)")
    finally:
        session.close()
    if facts.details.get("interfaces") is not None or required:
        parsing.interface_facts(facts.details.get("interfaces", []), facts, required)
    output = "\n".join(f"{key}: {value}" for key, value in facts.details.items() if key != "interfaces")
    return judged(latency_ms, facts.values, facts.details, output, facts.problems)


def _session(target: ProbeTarget, port: int, version: Any, attempt_timeout: float, retries: int, deadline: float):
    """v2c through snmp_wire's client; v3 through pysnmp's engine. Both answer get() and bulk() alike."""
    credentials = target.credentials
    version = str(version) if version is not None else ("3" if credentials.snmp_v3 else "2c")
    if version in ("2", "2c", "v2c"):
        if not credentials.snmp_community:
            raise ProbeError("no SNMP community in the device's credentials")
        return V2cClient(target.host, port, credentials.snmp_community, attempt_timeout=attempt_timeout,
                         retries=retries, deadline=deadline)
    if version not in ("3", "v3"):
        raise ProbeError(f"unsupported SNMP version {version!r} (2c or 3)")
    return _PysnmpSession(_v3_auth(credentials), target.host, port, attempt_timeout, retries, deadline)


def _poll(session, extra_oids: dict[str, str], interfaces: bool) -> tuple[parsing.Facts, float]:
    facts = parsing.Facts()
    started = time.perf_counter()
    scalars = {"sys_descr": SYS_DESCR, "uptime": SYS_UPTIME, "sys_name": SYS_NAME, **extra_oids}
    answers = session.get(list(scalars.values()) + ([IF_NUMBER] if interfaces else []))
    latency_ms = ms_since(started)
    facts.values["rtt_ms"] = latency_ms
    missing = []
    for name, oid in scalars.items():
        value = answers.get(oid)
        if value is None:
            missing.append(name)
        elif name == "uptime":
            facts.values["uptime_s"] = int(value) / 100  # TimeTicks: hundredths of a second
        elif name in ("sys_descr", "sys_name") or not _is_number(value):
            facts.details[name] = _text(value)
        else:
            facts.values[name] = float(value)
    if missing:
        facts.details["missing_oids"] = missing
    if interfaces:
        rows = _walk_columns(session, IF_COLUMNS, _repetitions(answers.get(IF_NUMBER)))
        facts.details["interfaces"] = _interfaces(rows)
        facts.values["if_in_octets"] = float(sum(int(r.get("in_octets", 0)) for r in rows.values()))
        facts.values["if_out_octets"] = float(sum(int(r.get("out_octets", 0)) for r in rows.values()))
    return facts, latency_ms


def _repetitions(if_number) -> int:
    """GETBULK repetitions for a table of `if_number` rows: one more than the rows, so a single request
    also shows where each column ends; MAX_REPETITIONS when the agent did not say."""
    rows = if_number if _is_number(if_number) else MAX_REPETITIONS
    return max(1, min(MAX_REPETITIONS, rows + 1))


def _walk_columns(session, columns: dict[str, tuple[int, ...]], repetitions: int = MAX_REPETITIONS) -> dict[tuple, dict]:
    """Walk table columns side by side with GETBULK: {row index: {column name: value}}."""
    cursor = dict(columns)
    pending = list(columns)
    rows: dict[tuple, dict] = {}
    for _ in range(MAX_WALK_REQUESTS):
        if not pending:
            break
        binds = session.bulk([cursor[c] for c in pending], repetitions)
        finished = set()
        for position, (oid, value) in enumerate(binds):  # row-major: one varbind per pending column
            name = pending[position % len(pending)]
            prefix = columns[name]
            if name in finished or oid[:len(prefix)] != prefix or value is None or oid <= cursor[name]:
                finished.add(name)
                continue
            rows.setdefault(oid[len(prefix):], {})[name] = value
            cursor[name] = oid
        pending = [name for name in pending if name not in finished and binds]
    return rows


class _PysnmpSession:
    """SNMPv3 requests through pysnmp on this thread's event loop and engine, answers as Python values
    (snmp_wire's), each request bounded by the probe's deadline."""

    def __init__(self, auth, host: str, port: int, attempt_timeout: float, retries: int, deadline: float):
        from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget

        self.loop, self.engine = _thread_engine()
        self.auth, self.deadline = auth, deadline
        try:
            self.transport = self._run(UdpTransportTarget.create((host, port), timeout=attempt_timeout,
                                                                 retries=retries))
        except TimeoutError:
            raise
        except Exception as exc:  # pysnmp wraps resolver failures in its own error type
            raise ProbeError(f"cannot resolve {host}") from exc

    def _run(self, coroutine):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            coroutine.close()
            raise TimeoutError
        return self.loop.run_until_complete(asyncio.wait_for(coroutine, remaining))

    def get(self, oids: list[str]) -> dict[str, Any]:
        """OID -> value for the OIDs the agent has (NoSuchObject/NoSuchInstance are left out)."""
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, get_cmd

        binds = self._checked(self._run(get_cmd(self.engine, self.auth, self.transport, ContextData(),
                                                *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False)),
                              oids)
        return {".".join(map(str, oid)): value for oid, value in binds if value is not None}

    def bulk(self, oids: list[tuple[int, ...]], repetitions: int) -> list[tuple[tuple[int, ...], Any]]:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, bulk_cmd

        return self._checked(self._run(bulk_cmd(self.engine, self.auth, self.transport, ContextData(), 0, repetitions,
                                                *(ObjectType(ObjectIdentity(oid)) for oid in oids), lookupMib=False)),
                             oids)

    @staticmethod
    def _checked(answer, oids: list) -> list[tuple[tuple[int, ...], Any]]:
        error_indication, error_status, error_index, binds = answer
        if error_indication:
            raise ProbeError(_indication_in_words(error_indication))
        if error_status:
            position = int(error_index) - 1
            where = f" at {oids[position]}" if 0 <= position < len(oids) else ""
            raise ProbeError(f"the SNMP agent answered {error_status.prettyPrint()}{where}")
        return [(tuple(oid), _native(value)) for oid, value in binds]

    def close(self) -> None:
        pass  # the transport belongs to this thread's engine, which is kept for the next poll


def _interfaces(rows: dict[tuple, dict]) -> list[dict]:
    interfaces = []
    for index, row in sorted(rows.items()):
        admin, oper = int(row.get("admin", 0)), int(row.get("oper", 0))
        status = "admin down" if admin == 2 else "up" if oper == 1 else "down"
        interfaces.append({"index": ".".join(map(str, index)), "name": _text(row["name"]) if "name" in row else "",
                           "status": status, "in_octets": int(row.get("in_octets", 0)),
                           "out_octets": int(row.get("out_octets", 0))})
    return interfaces


def _indication_in_words(indication) -> str:
    name = type(indication).__name__
    return {
        "RequestTimedOut": NO_ANSWER,
        "WrongDigest": "SNMPv3 authentication failed (wrong auth key or protocol)",
        "UnknownUserName": "the SNMPv3 user is unknown to the agent",
        "DecryptionError": "SNMPv3 decryption failed (wrong privacy key or protocol)",
        "UnsupportedSecurityLevel": "the agent does not accept this SNMPv3 security level",
        "NotInTimeWindow": "SNMPv3 time window mismatch",
    }.get(name, f"SNMP failed: {indication}")


def _v3_auth(credentials: Credentials):
    import pysnmp.hlapi.v3arch.asyncio as hlapi

    v3 = credentials.snmp_v3 or {}
    if not v3.get("user"):
        raise ProbeError("no SNMPv3 user in the device's credentials")
    options: dict[str, Any] = {}
    if v3.get("auth_key"):
        options["authKey"] = v3["auth_key"]
        options["authProtocol"] = getattr(hlapi, _protocol(v3.get("auth_protocol") or "SHA", AUTH_PROTOCOLS, "auth"))
        if v3.get("priv_key"):
            options["privKey"] = v3["priv_key"]
            options["privProtocol"] = getattr(hlapi, _protocol(v3.get("priv_protocol") or "AES", PRIV_PROTOCOLS, "privacy"))
    return hlapi.UsmUserData(v3["user"], **options)


def _protocol(name: str, known: dict[str, str], what: str) -> str:
    key = str(name).upper().replace("-", "")
    if key not in known:
        raise ProbeError(f"unknown SNMPv3 {what} protocol {name!r} ({', '.join(known)})")
    return known[key]


def _extra_oids(oids: Any) -> dict[str, str]:
    if not isinstance(oids, dict) or len(oids) > MAX_OIDS:
        raise ProbeError(f"oids must be a mapping of up to {MAX_OIDS} names to numeric OIDs")
    for name, oid in oids.items():
        if not isinstance(name, str) or not isinstance(oid, str) or not NUMERIC_OID.match(oid):
            raise ProbeError(f"bad OID {oid!r} for {name!r}: numeric, like 1.3.6.1.2.1.1.3.0")
    return {name: oid.lstrip(".") for name, oid in oids.items()}


def _thread_engine():
    """This thread's event loop and SnmpEngine, made on its first SNMP poll (again if the loop was closed).

    The loop is made the thread's current loop on every use, not only at creation: the engine's dispatcher
    looks it up, and other code on the same thread (an asyncio.run() elsewhere) may have replaced it."""
    loop = getattr(_per_thread, "loop", None)
    if getattr(_per_thread, "engine", None) is None or loop is None or loop.is_closed():
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        _per_thread.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(_per_thread.loop)
        _per_thread.engine = SnmpEngine()
    asyncio.set_event_loop(_per_thread.loop)
    return _per_thread.loop, _per_thread.engine


def _native(value) -> Any:
    """A pysnmp answer as the Python value snmp_wire gives for the same BER type."""
    name = type(value).__name__
    if name in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
        return None
    if name == "IpAddress":
        return ".".join(str(byte) for byte in value.asOctets())
    if hasattr(value, "asTuple"):  # OBJECT IDENTIFIER
        return tuple(value.asTuple())
    if hasattr(value, "asOctets"):
        return octets_text(value.asOctets())
    return int(value)


def _text(value) -> str:
    """Dotted numbers for OIDs (no MIB lookup), the text itself for strings."""
    if isinstance(value, tuple):
        return ".".join(str(part) for part in value)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
