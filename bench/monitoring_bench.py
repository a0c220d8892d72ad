"""Monitoring bench: poll-cycle time for 10,000 mixed checks, and SSH polls/s through itops against Nornir.

Everything runs on loopback (127.0.0.0/8) on free ports: simulated Cisco switches over SSH (fake-switches, spread
over several SwitchFarm processes), a real snmpd (started with tests/peers/snmpd.py's start_snmpd), and one child
process of this script with plain TCP listeners and SIP OPTIONS responders (answering as tests/peers/sip.py's
FakePhone does). ICMP goes to 127.0.x.y addresses, which the kernel answers.

1. A fresh bench instance (var/bench-monitoring), assets made through the assets services, checks and their
   health rows bulk-inserted as monitoring's services would write them; then poll cycles through the real
   `itops.monitoring.poll.run_cycle` with samples stored and committed: a first (cold) cycle, then steady ones.
2. SSH `show version` polls/s: the itops ssh probe (pooled sessions) against Nornir 3.6 + nornir_netmiko, the same
   worker count, the same switches.

A report, not a test: it prints figures against the targets (PASS/MISS) with the machine's load; exit status 1
only when the bench could not run. Every child process and the temporary folder go on exit, Ctrl-C or `kill`.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from _common import (
    HOST, PROJECT_ROOT, BenchError, default_instance, fresh_instance, machine_busy_seconds, machine_load,
    process_cpu_seconds, sigterm_as_interrupt, use_instance_in_process,
)

CYCLE_TARGET_S = 60.0     # a one-minute interval must hold
SSH_RATIO_TARGET = 4.0    # itops' pooled SSH polls against Nornir's, same workers
TIMEOUTS = {"ssh": 10.0, "snmp": 3.0, "tcp": 3.0, "icmp": 2.0, "sip": 3.0}
SWITCH_USERNAME = "bench"


# --- the peers -----------------------------------------------------------------------------------

def serve_listeners(tcp_count: int, sip_count: int) -> None:
    """Child process: TCP listeners that accept and close, and SIP responders answering OPTIONS with 200."""
    from tests.peers.sip import FakePhone

    phone = FakePhone("ok")  # only its answer(); the sockets here are asyncio's

    class Responder(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, address):
            text = data.decode("utf-8", errors="replace")
            if text.strip() and not text.startswith("SIP/2.0"):
                answer = phone.answer(text)
                if answer is not None:
                    self.transport.sendto(answer, address)

    async def close_at_once(_reader, writer):
        writer.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        tcp = [await asyncio.start_server(close_at_once, HOST, 0, backlog=1024) for _ in range(tcp_count)]
        sip = [await loop.create_datagram_endpoint(Responder, local_addr=(HOST, 0)) for _ in range(sip_count)]
        ports = {"tcp": [s.sockets[0].getsockname()[1] for s in tcp],
                 "sip": [t.get_extra_info("sockname")[1] for t, _ in sip]}
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        print("READY " + json.dumps(ports), flush=True)
        await stop.wait()

    asyncio.run(main())


@dataclass
class Fleet:
    """Everything the polls reach, all started by the bench and all stopped by close()."""

    workdir: Path
    farms: list = field(default_factory=list)
    snmpd: object = None
    listeners: subprocess.Popen | None = None
    tcp_ports: list[int] = field(default_factory=list)
    sip_ports: list[int] = field(default_factory=list)
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    enable_secret: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)

    @property
    def switches(self) -> list:
        return [switch for farm in self.farms for switch in farm.switches]

    def peer_pids(self) -> dict[str, list[int]]:
        pids = {"switch farms": [f.process.pid for f in self.farms if f.process is not None],
                "snmpd": [self.snmpd.daemon.process.pid] if self.snmpd is not None else [],
                "tcp+sip listeners": [self.listeners.pid] if self.listeners is not None else []}
        return pids

    def start(self, switches: int, farms: int, tcp: int, sip: int) -> None:
        from itops.demo.switches import start_switches
        from tests.peers.snmpd import start_snmpd

        per_farm = [switches // farms + (1 if n < switches % farms else 0) for n in range(farms)]

        def start_farm(number: int):
            return start_switches(per_farm[number], username=SWITCH_USERNAME, password=self.password,
                                  enable_secret=self.enable_secret, name_prefix=f"f{number}-sw",
                                  log_path=self.workdir / f"farm{number}.log", timeout=90)

        with ThreadPoolExecutor(farms) as pool:
            futures = [pool.submit(start_farm, n) for n in range(farms) if per_farm[n]]
            for future in futures:  # keep every farm that started, so close() stops it even if another failed
                with contextlib.suppress(Exception):
                    self.farms.append(future.result())
            for future in futures:
                future.result()
        snmp_dir = self.workdir / "snmpd"
        snmp_dir.mkdir()
        self.snmpd = start_snmpd(snmp_dir)
        self.listeners = subprocess.Popen(
            [sys.executable, __file__, "--serve-listeners", f"{tcp},{sip}"], cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
        ready, _, _ = select.select([self.listeners.stdout], [], [], 30)
        line = self.listeners.stdout.readline().decode() if ready else ""
        if not line.startswith("READY "):
            raise BenchError(f"the TCP/SIP listener process did not start: {line[:200]!r}")
        ports = json.loads(line[len("READY "):])
        self.tcp_ports, self.sip_ports = ports["tcp"], ports["sip"]

    def close(self) -> None:
        for farm in self.farms:
            with contextlib.suppress(Exception):
                farm.stop()
        if self.snmpd is not None:
            self.snmpd.stop()
        if self.listeners is not None:
            if self.listeners.poll() is None:
                self.listeners.terminate()
                try:
                    self.listeners.wait(10)
                except subprocess.TimeoutExpired:
                    self.listeners.kill()
                    self.listeners.wait(5)
            self.listeners.stdout.close()


# --- the instance --------------------------------------------------------------------------------

def check_mix(total: int) -> dict[str, int]:
    """20% SSH, 40% SNMP, the rest TCP, ICMP and SIP in thirds."""
    ssh, snmp = round(total * 0.2), round(total * 0.4)
    rest = total - ssh - snmp
    return {"ssh": ssh, "snmp": snmp, "tcp": rest - 2 * (rest // 3), "icmp": rest // 3, "sip": rest // 3}


def seed(fleet: Fleet, mix: dict[str, int]) -> dict[str, int]:
    """Switches (SSH, SNMP, ICMP), servers (SNMP, TCP, ICMP) and desk phones (SIP, ICMP) as assets; the checks
    spread round-robin over them, several per device; servers and phones hang off the switches."""
    from sqlalchemy import insert

    from itops.assets import services as assets
    from itops.core import crypto
    from itops.core.database import utcnow
    from itops.extensions import db
    from itops.monitoring.choices import Health
    from itops.monitoring.models import AssetHealth, Check

    credential = assets.create_credential("bench switches", SWITCH_USERNAME, fleet.password,
                                          enable_secret=fleet.enable_secret, by="bench")
    switch_ids = [assets.create_asset("switch", {
        "name": f"bench-{switch.hostname}", "manufacturer": "Cisco", "model": "Catalyst 3750",
        "management_address": switch.host, "device_type": switch.device_type, "credential_id": credential.id,
    }, by="bench").id for switch in fleet.switches]
    server_ids = [assets.create_asset("server", {"name": f"bench-srv-{n:04}"}, by="bench").id
                  for n in range(max(1, mix["tcp"] // 2))]
    phone_ids = [assets.create_asset("desk_phone", {"name": f"bench-phone-{n:04}"}, by="bench").id
                 for n in range(max(1, mix["sip"] // 2))]
    everyone = switch_ids + server_ids + phone_ids
    ports = {switch_id: switch.port for switch_id, switch in zip(switch_ids, fleet.switches)}
    # as services.checked_params stores it: the community encrypted (one token serves every check)
    snmp = {"host": fleet.snmpd.host, "port": fleet.snmpd.port,
            "community_encrypted": crypto.encrypt(fleet.snmpd.community)}
    spread = {"ssh": itertools.cycle(switch_ids), "snmp": itertools.cycle(switch_ids + server_ids),
              "tcp": itertools.cycle(server_ids), "icmp": itertools.cycle(everyone), "sip": itertools.cycle(phone_ids)}
    now = utcnow()
    rows = []
    for kind, count in mix.items():
        for n in range(count):
            asset_id = next(spread[kind])
            if kind == "ssh":
                params = {"port": ports[asset_id]}
            elif kind == "snmp":
                params = dict(snmp)
            elif kind == "icmp":
                params = {"host": f"127.0.{asset_id // 250 % 250}.{asset_id % 250 + 1}"}
            else:
                listening = fleet.tcp_ports if kind == "tcp" else fleet.sip_ports
                params = {"host": HOST, "port": listening[n % len(listening)]}
            rows.append({"asset_id": asset_id, "kind": kind, "params": params, "interval_seconds": 60,
                         "timeout_seconds": TIMEOUTS[kind], "enabled": True, "next_due_at": now, "created_at": now})
    db.session.execute(insert(Check), rows)
    parents = {asset_id: switch_ids[n % len(switch_ids)] for n, asset_id in enumerate(server_ids + phone_ids)}
    db.session.execute(insert(AssetHealth), [
        {"asset_id": asset_id, "state": Health.UNKNOWN.value, "state_rank": Health.UNKNOWN.rank, "changed_at": now,
         "failures": 0, "successes": 0, "recent_changes": [], "flapping": False, "incident_open": False,
         "incidents_opened": 0, "parent_asset_id": parents.get(asset_id)} for asset_id in everyone])
    db.session.commit()
    return {"switches": len(switch_ids), "servers": len(server_ids), "desk phones": len(phone_ids),
            "checks": len(rows)}


# --- measuring -----------------------------------------------------------------------------------

class CpuMeter:
    """CPU seconds used by the bench, its peers and the rest of the machine over a stretch of wall time."""

    def __init__(self, fleet: Fleet):
        self.fleet = fleet
        self.started = self._read()

    def _read(self) -> dict[str, float]:
        values = {"bench": sum(os.times()[:2])}
        for name, pids in self.fleet.peer_pids().items():
            values[name] = sum(process_cpu_seconds(pid) for pid in pids)
        values["machine"] = machine_busy_seconds() or 0.0
        values["wall"] = time.perf_counter()
        return values

    def summary(self) -> str:
        ended = self._read()
        used = {name: ended[name] - self.started[name] for name in ended}
        wall = used.pop("wall")
        others = used.pop("machine") - sum(used.values())
        parts = [f"{name} {seconds / wall * 100:.0f}%" for name, seconds in used.items()]
        return f"CPU (of one core): {', '.join(parts)}, everything else on the machine {max(0.0, others) / wall * 100:.0f}%"


def verdict(met: bool) -> str:
    return "PASS" if met else "MISS"


def measure_cycles(fleet: Fleet, cycles: int) -> None:
    from sqlalchemy import func, select

    from itops.core.database import utcnow
    from itops.extensions import db
    from itops.monitoring import poll
    from itops.monitoring.models import Check, Sample

    now = utcnow()
    for number in range(cycles + 1):
        label = "first cycle (opens SSH sessions)" if number == 0 else f"cycle {number} (sessions open)"
        meter = CpuMeter(fleet)
        started = time.perf_counter()
        result = poll.run_cycle(now=now + timedelta(seconds=61 * number))
        db.session.commit()
        wall = time.perf_counter() - started
        statuses = db.session.execute(select(Check.kind, Check.last_status, func.count())
                                      .group_by(Check.kind, Check.last_status)).all()
        failed = {f"{kind} {status}": n for kind, status, n in statuses if status != "up"}
        print(f"\n{label}: {result['checks']} checks in {wall:.1f} s = {result['checks'] / wall:.0f} checks/s "
              f"(probes {result['probe_seconds']:.1f} s, storing samples + health + commit "
              f"{wall - result['probe_seconds']:.1f} s); target < {CYCLE_TARGET_S:g} s "
              f"{verdict(wall < CYCLE_TARGET_S)}")
        print(f"  not up: {failed or 'none'}; health changes {result['changes']}")
        if failed:
            for kind, error in db.session.execute(select(Check.kind, Check.last_error).where(
                    Check.last_status != "up").group_by(Check.kind, Check.last_error).limit(5)):
                print(f"    {kind}: {error}")
        print(f"  {meter.summary()}; machine: {machine_load()}")
    samples = db.session.scalar(select(func.count()).select_from(Sample))
    print(f"\nsamples stored: {samples}")


def ssh_targets(fleet: Fleet) -> list:
    from itops.monitoring.probes import Credentials, ProbeTarget

    credentials = Credentials(username=SWITCH_USERNAME, password=fleet.password, enable_secret=fleet.enable_secret)
    return [ProbeTarget(switch.host, switch.port, switch.device_type, credentials) for switch in fleet.switches]


def itops_ssh_rate(fleet: Fleet, workers: int, duration: float) -> dict[str, tuple[float, int]]:
    """{what: (polls/s, failures)}: the first poll of each switch (with its handshake), then polls round-robin
    over the switches for `duration` seconds on the open sessions, through run_probe and one session pool."""
    from itops.monitoring.probes import run_probe
    from itops.monitoring.probes.ssh_pool import SshSessionPool

    pool = SshSessionPool()
    targets = ssh_targets(fleet)
    params = {"commands": ["show version"]}

    def poll(target) -> bool:
        return run_probe("ssh", target, params, TIMEOUTS["ssh"], ssh_pool=pool).status == "up"

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="itops-ssh") as executor:
            started = time.perf_counter()
            first = list(executor.map(poll, targets))
            figures = {"first poll, opening the session": (len(targets) / (time.perf_counter() - started),
                                                           first.count(False))}
            counts, lock, stop = {True: 0, False: 0}, threading.Lock(), threading.Event()
            order = itertools.cycle(targets)
            deadline = time.monotonic() + duration

            def loop() -> None:
                while time.monotonic() < deadline and not stop.is_set():
                    with lock:
                        target = next(order)
                    up = poll(target)
                    with lock:
                        counts[up] += 1

            started = time.perf_counter()
            try:
                for future in [executor.submit(loop) for _ in range(workers)]:
                    future.result()
            finally:
                stop.set()  # on Ctrl-C too: the threads end after their current poll
            figures["sessions open (pooled)"] = (counts[True] / (time.perf_counter() - started), counts[False])
    finally:
        pool.close_all()
    return figures


def nornir_ssh_rate(fleet: Fleet, workers: int, duration: float) -> dict[str, tuple[float, int]]:
    """{what: (polls/s, failures)}: one nr.run() polls every switch (netmiko_send_command with enable=True, as
    the fake IOS answers `show version` in enable mode only). Nornir keeps a host's connection open until
    close_connections(): measured both ways, closing after every run (as a Nornir script run once per poll
    interval does) and keeping them open across runs."""
    from nornir.core import Nornir
    from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory
    from nornir.core.plugins.connections import ConnectionPluginRegister
    from nornir.plugins.runners import ThreadedRunner
    from nornir_netmiko.tasks import netmiko_send_command

    ConnectionPluginRegister.auto_register()
    defaults = Defaults(username=SWITCH_USERNAME, password=fleet.password, platform="cisco_ios",
                        connection_options={"netmiko": ConnectionOptions(extras={"secret": fleet.enable_secret})})
    hosts = Hosts({switch.hostname: Host(name=switch.hostname, hostname=switch.host, port=switch.port,
                                         defaults=defaults) for switch in fleet.switches})
    nornir = Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=defaults),
                    runner=ThreadedRunner(num_workers=workers))
    figures = {}
    try:
        for what, close in (("connections opened every run", True), ("connections kept open", False)):
            polls = failures = 0
            started = time.perf_counter()
            while time.perf_counter() - started < duration:
                result = nornir.run(task=netmiko_send_command, command_string="show version", enable=True)
                failures += len(result.failed_hosts)
                polls += len(hosts) - len(result.failed_hosts)
                if close:
                    nornir.close_connections()
            figures[what] = (polls / (time.perf_counter() - started), failures)
    finally:
        nornir.close_connections()
    return figures


def measure_ssh(fleet: Fleet, workers: int, duration: float) -> None:
    print(f"\nSSH `show version` polls/s, {workers} workers, {len(fleet.switches)} switches, about {duration:g} s each:")
    rates = {}
    for name, measure in (("itops ssh probe", itops_ssh_rate), ("Nornir 3.6 + nornir_netmiko", nornir_ssh_rate)):
        meter = CpuMeter(fleet)
        for what, (rate, failures) in measure(fleet, workers, duration).items():
            rates[(name, what)] = rate
            print(f"  {name:28} {what:34} {rate:7.1f} polls/s  failures {failures}")
        print(f"    {meter.summary()}")
    itops = rates[("itops ssh probe", "sessions open (pooled)")]
    for what in ("connections opened every run", "connections kept open"):
        nornir = rates[("Nornir 3.6 + nornir_netmiko", what)]
        ratio = itops / nornir if nornir else float("inf")
        print(f"  itops pooled / Nornir with {what}: {ratio:.1f}x; target >= {SSH_RATIO_TARGET:g}x "
              f"{verdict(ratio >= SSH_RATIO_TARGET)}")


# --- main ----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--switches", type=int, default=200, help="simulated SSH switches (default 200)")
    parser.add_argument("--farms", type=int, default=4, help="switch processes they are spread over (default 4)")
    parser.add_argument("--checks", type=int, default=10_000, help="checks in a poll cycle (default 10,000)")
    parser.add_argument("--workers", type=int, default=20,
                        help="probe threads (ITOPS_POLL_THREADS) and Nornir workers (default 20)")
    parser.add_argument("--cycles", type=int, default=2, help="measured cycles after the first (default 2)")
    parser.add_argument("--duration", type=float, default=15, help="seconds per SSH rate measurement (default 15)")
    parser.add_argument("--listeners", type=int, default=20, help="TCP listeners and SIP responders, each (default 20)")
    parser.add_argument("--part", choices=("all", "cycle", "ssh"), default="all")
    parser.add_argument("--instance", type=Path, default=default_instance("bench-monitoring"),
                        help="instance folder, recreated (default var/bench-monitoring)")
    parser.add_argument("--database-url", help="a PostgreSQL URL instead of the instance's SQLite file")
    parser.add_argument("--wipe-database", action="store_true",
                        help="with --database-url: drop every table already in that database first")
    parser.add_argument("--serve-listeners", help=argparse.SUPPRESS)  # the child process: "TCP,SIP" counts
    args = parser.parse_args()
    if args.serve_listeners:
        serve_listeners(*(int(n) for n in args.serve_listeners.split(",")))
        return 0
    if args.switches < 1 or args.farms < 1 or args.checks < 10 or args.workers < 1:
        parser.error("--switches, --farms and --workers must be at least 1, --checks at least 10")
    sigterm_as_interrupt()
    print(f"machine before: {machine_load()}")
    workdir = Path(tempfile.mkdtemp(prefix="itops-monitoring-bench."))
    fleet = Fleet(workdir)
    try:
        started = time.perf_counter()
        fleet.start(args.switches, min(args.farms, args.switches), args.listeners, args.listeners)
        print(f"peers up in {time.perf_counter() - started:.1f} s: {len(fleet.switches)} switches in "
              f"{len(fleet.farms)} processes, snmpd on udp {fleet.snmpd.port}, {len(fleet.tcp_ports)} TCP listeners "
              f"and {len(fleet.sip_ports)} SIP responders in one process")
        if args.part in ("all", "cycle"):
            run_cycles(args, fleet)
        if args.part in ("all", "ssh"):
            measure_ssh(fleet, args.workers, args.duration)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the peers", file=sys.stderr)
        return 130
    finally:
        fleet.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nmachine after: {machine_load()}")
    return 0


def run_cycles(args, fleet: Fleet) -> None:
    instance = args.instance.resolve()
    started = time.perf_counter()
    fresh_instance(instance, args.database_url, wipe_database=args.wipe_database)
    use_instance_in_process(instance, args.database_url)
    from itops import create_app
    from itops.monitoring.probes.ssh_pool import shared_pool

    app = create_app({"ITOPS_POLL_THREADS": args.workers})
    mix = check_mix(args.checks)
    with app.app_context():
        made = seed(fleet, mix)
        print(f"instance {instance} ({args.database_url or 'SQLite'}) migrated and seeded in "
              f"{time.perf_counter() - started:.1f} s: {made}; checks by kind {mix}; "
              f"{args.workers} probe threads")
        try:
            measure_cycles(fleet, args.cycles)
        finally:
            shared_pool().close_all()


if __name__ == "__main__":
    sys.exit(main())
