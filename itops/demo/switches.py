"""Simulated Cisco IOS switches (fake-switches) on loopback, for the demo (`make run`) and the tests.

All switches of one `start_switches()` call run in one child process with its own Twisted reactor,
so stopping that process takes them all down at once (a "switch killed") and starting again on the
same ports brings them back. Ports are chosen by the kernel (port 0) inside the child, which then
reports them, so two farms never race for a port. Credentials reach the child through its
environment, never its command line.

    farm = start_switches(3)
    farm.switches[0].port, farm.switches[0].username ...
    farm.stop(); farm.start()     # the same switches again, on the same ports
    farm.stop()

Stdlib only in the parent: fake-switches and Twisted are imported in the child process alone.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "demo-switch-pass"
DEFAULT_ENABLE_SECRET = "demo-enable-secret"

_READY = "READY "
_START_TIMEOUT = 30.0  # a cold Twisted import on a busy 2-core machine can take a few seconds
_STOP_TIMEOUT = 10.0
_ENV_USERNAME = "ITOPS_SWITCH_USERNAME"
_ENV_PASSWORD = "ITOPS_SWITCH_PASSWORD"
_ENV_ENABLE = "ITOPS_SWITCH_ENABLE_SECRET"


class SwitchError(RuntimeError):
    """The simulated switches could not be started or stopped."""


@dataclass(frozen=True)
class SimulatedSwitch:
    """One simulated switch: where it listens and how to log in (netmiko device type cisco_ios)."""

    hostname: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    enable_secret: str = field(repr=False)
    device_type: str = "cisco_ios"


@dataclass
class SwitchFarm:
    """Simulated switches run by one child process: stop() ends them all, start() brings them back
    on the same ports (a switch that was "killed" and came back)."""

    count: int
    host: str = "127.0.0.1"
    username: str = DEFAULT_USERNAME
    password: str = field(default=DEFAULT_PASSWORD, repr=False)
    enable_secret: str = field(default=DEFAULT_ENABLE_SECRET, repr=False)
    name_prefix: str = "sw"
    log_path: Path | None = None
    switches: list[SimulatedSwitch] = field(default_factory=list)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, ports: Sequence[int] | None = None, timeout: float = _START_TIMEOUT) -> SwitchFarm:
        """Start the child on `ports`, else on the ports used before, else on free ports."""
        if self.running:
            return self
        wanted = list(ports) if ports is not None else [s.port for s in self.switches] or [0] * self.count
        if len(wanted) != self.count:
            raise ValueError("give one port per switch")
        env = {**os.environ, _ENV_USERNAME: self.username, _ENV_PASSWORD: self.password,
               _ENV_ENABLE: self.enable_secret}
        command = [sys.executable, "-m", "itops.demo.switches", "--host", self.host, "--name-prefix",
                   self.name_prefix, "--ports", ",".join(str(p) for p in wanted)]
        stderr = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, env=env,
                                            cwd=Path(__file__).resolve().parents[2], start_new_session=True)
        finally:
            if self.log_path:
                stderr.close()
        try:
            names_ports = _wait_ready(self.process, timeout)
        except SwitchError:
            self.stop()
            raise
        self.switches = [SimulatedSwitch(hostname=name, host=self.host, port=port, username=self.username,
                                         password=self.password, enable_secret=self.enable_secret)
                         for name, port in names_ports]
        return self

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """SIGTERM the child (its reactor stops cleanly) and wait until every port is closed."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        process.stdout.close()
        deadline = time.monotonic() + timeout
        while any(_port_open(s.host, s.port) for s in self.switches):
            if time.monotonic() > deadline:
                raise SwitchError("simulated switches still answer after their process ended")
            time.sleep(0.05)


def start_switches(count: int, *, host: str = "127.0.0.1", ports: Sequence[int] | None = None,
                   username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD,
                   enable_secret: str = DEFAULT_ENABLE_SECRET, name_prefix: str = "sw",
                   log_path: Path | None = None, timeout: float = _START_TIMEOUT) -> SwitchFarm:
    """Start `count` simulated Cisco IOS switches on `host`, on `ports` or on free ports.

    Returns once every switch accepts connections. Raises SwitchError when fake-switches is not
    installed, a port is taken, or the child does not report ready within `timeout` seconds.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    farm = SwitchFarm(count, host=host, username=username, password=password, enable_secret=enable_secret,
                      name_prefix=name_prefix, log_path=log_path)
    return farm.start(ports, timeout)


def _wait_ready(process: subprocess.Popen, timeout: float) -> list[tuple[str, int]]:
    """Read the child's READY line: JSON [[hostname, port], ...]."""
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SwitchError(f"simulated switches not ready after {timeout:.0f} s")
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise SwitchError(f"simulated switch process exited with {process.wait()} before it was ready"
                                  " (is fake-switches installed? see scripts/install.sh)")
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith(_READY):
        raise SwitchError(f"unexpected output from the switch process: {line[:200]!r}")
    return [(name, int(port)) for name, port in json.loads(line[len(_READY):])]


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _serve(host: str, ports: list[int], name_prefix: str) -> None:
    """Child process: listen with one fake-switches core per port and run the reactor until SIGTERM."""
    from fake_switches.switch_factory import SwitchFactory
    from fake_switches.transports.ssh_service import SwitchSshService
    from twisted.internet import reactor

    users = {os.environ[_ENV_USERNAME]: os.environ[_ENV_PASSWORD].encode()}
    enable_secret = os.environ[_ENV_ENABLE]
    factory = SwitchFactory()
    listening = []
    for number, port in enumerate(ports, start=1):
        hostname = f"{name_prefix}{number:02}"
        core = factory.get("cisco_generic", hostname=hostname, password=enable_secret)
        listener = SwitchSshService(ip=host, port=port, switch_core=core, users=users).hook_to_reactor(reactor)
        listening.append((hostname, listener.getHost().port))
    sys.stdout.write(_READY + json.dumps(listening) + "\n")
    sys.stdout.flush()
    reactor.run()  # installs SIGTERM/SIGINT handlers that stop the reactor cleanly


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run simulated Cisco IOS switches (credentials from the environment).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ports", required=True, help="comma-separated ports, 0 for any free port")
    parser.add_argument("--name-prefix", default="sw")
    args = parser.parse_args(argv)
    _serve(args.host, [int(p) for p in args.ports.split(",")], args.name_prefix)


if __name__ == "__main__":
    main()
