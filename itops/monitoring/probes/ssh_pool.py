"""A pool of open netmiko sessions, reused across polls so a healthy device costs no SSH handshake.

Sessions are keyed by (host, port, username, device type). Each has a lock, so one poll uses it
at a time; polls of different devices run in parallel. Before reuse a session is checked cheaply
(is its SSH transport still active? paramiko's keepalive packets make a dead peer show up there);
a reused session that still fails is closed, reopened once and the work tried again. Sessions idle
for longer than `max_idle` are closed on the next use of the pool or by close_idle().

`handshakes` counts connections opened, so a test can show that a second cycle opened none.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from itops.monitoring.probes import Credentials, ProbeError, ProbeTarget

log = logging.getLogger(__name__)

T = TypeVar("T")
SessionKey = tuple[str, int, str, str]
# connect(target, device_type, timeout) -> an open, authenticated netmiko connection
Connector = Callable[[ProbeTarget, str, float], Any]

SSH_PORT = 22
MIN_RETRY_S = 0.5  # a reconnect needs at least this long; with less time left the poll just fails
READ_PAUSE_MIN_S, READ_PAUSE_MAX_S = 0.003, 0.02  # between reads of a command's answer


@dataclass
class PooledSession:
    """An open netmiko connection and the prompt it showed once logged in (and enabled)."""

    connection: Any
    prompt: str

    def send(self, command: str, deadline: float) -> str:
        """Run one command, reading until the known prompt comes back after the command's echo.

        Waiting for the prompt found at login, instead of netmiko's default of finding it again
        before every command, saves one round trip per command (0.08 s -> 0.035 s on the simulator).
        Reading as soon as the answer is there, instead of send_command's fixed pauses (a 25 ms sleep
        before the first read of the output, 10 ms ones while reading the echo), saves most of the
        rest: short polls of the channel, 3 ms apart at first, backing off to 20 ms while nothing comes.
        The output is cleaned as send_command cleans it (echo and trailing prompt stripped).
        """
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no time left before {command!r}")
        connection = self.connection
        if not self.prompt or getattr(connection, "remote_conn", None) is None:  # a test double, or no prompt
            expect = re.escape(self.prompt) if self.prompt else None
            return connection.send_command(command, expect_string=expect, read_timeout=remaining)
        from netmiko.exceptions import ReadTimeout

        command = connection.normalize_cmd(command)
        connection.write_channel(command)
        end = re.compile(re.escape(self.prompt) + r"\s*$")
        output, pause = "", READ_PAUSE_MIN_S
        while True:
            new = connection.read_channel()
            output += new
            echoed = output.find("\n")
            if echoed >= 0 and end.search(output, echoed):
                return connection.strip_prompt(connection.strip_command(command, output))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ReadTimeout(f"the prompt did not come back after {command.strip()!r}")
            pause = READ_PAUSE_MIN_S if new else min(pause * 2, READ_PAUSE_MAX_S)
            time.sleep(min(pause, remaining))


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    session: PooledSession | None = None
    credential_digest: str | None = None
    last_used: float = 0.0


class SshSessionPool:
    def __init__(self, *, max_idle: float = 300.0, keepalive: float = 30.0, connect: Connector | None = None):
        self.max_idle = max_idle
        self.keepalive = keepalive
        self._connect = connect or self._netmiko_connect
        self._slots: dict[SessionKey, _Slot] = {}
        self._lock = threading.Lock()
        self._handshakes = 0
        self._connect_failures = 0
        self._last_sweep = time.monotonic()

    @property
    def handshakes(self) -> int:
        """SSH connections opened (authenticated) since the pool was made."""
        return self._handshakes

    @property
    def connect_failures(self) -> int:
        return self._connect_failures

    @property
    def open_sessions(self) -> int:
        with self._lock:
            return sum(1 for slot in self._slots.values() if slot.session is not None)

    def run(self, target: ProbeTarget, device_type: str, work: Callable[[PooledSession, float], T],
            timeout: float) -> T:
        """work(session, deadline) on the device's pooled session, opening one if needed.

        `deadline` is a time.monotonic() value the work should finish by. A reused session that
        fails with a connection error is reopened once and the work retried, time allowing.
        """
        deadline = time.monotonic() + timeout
        self._sweep_if_due()
        slot = self._slot(_key(target, device_type))
        if not slot.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ProbeError(f"the SSH session is busy with another poll for more than {timeout:g} s")
        try:
            digest = _credential_digest(target.credentials)
            if slot.session is not None and (slot.credential_digest != digest or not _transport_active(slot)):
                self._close(slot)  # credentials changed, or the device went away while idle
            reused = slot.session is not None
            if not reused:
                self._open(slot, target, device_type, deadline, digest)
            try:
                result = work(slot.session, deadline)
            except connection_errors():
                self._close(slot)
                if not reused or deadline - time.monotonic() < MIN_RETRY_S:
                    raise
                log.info("pooled SSH session to %s:%s failed; reconnecting once", target.host, target.port)
                self._open(slot, target, device_type, deadline, digest)
                try:
                    result = work(slot.session, deadline)
                except connection_errors():
                    self._close(slot)
                    raise
            slot.last_used = time.monotonic()
            return result
        finally:
            slot.lock.release()

    def close_idle(self, max_idle: float | None = None) -> int:
        """Close sessions unused for more than `max_idle` seconds (default: the pool's); returns how many."""
        limit = self.max_idle if max_idle is None else max_idle
        now = time.monotonic()
        closed = 0
        for slot in self._all_slots():
            if slot.session is None or now - slot.last_used <= limit:
                continue
            if slot.lock.acquire(blocking=False):  # in use means not idle
                try:
                    if slot.session is not None and now - slot.last_used > limit:
                        self._close(slot)
                        closed += 1
                finally:
                    slot.lock.release()
        return closed

    def close_all(self, wait: float = 10.0) -> None:
        """Close every session, waiting up to `wait` seconds for each poll in progress to finish."""
        for slot in self._all_slots():
            acquired = slot.lock.acquire(timeout=wait)
            try:
                self._close(slot)
            finally:
                if acquired:
                    slot.lock.release()

    # internals ------------------------------------------------------------------------------------
    def _slot(self, key: SessionKey) -> _Slot:
        with self._lock:
            return self._slots.setdefault(key, _Slot())

    def _all_slots(self) -> list[_Slot]:
        with self._lock:
            return list(self._slots.values())

    def _sweep_if_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last_sweep < min(self.max_idle, 30.0):
                return
            self._last_sweep = now
        self.close_idle()

    def _open(self, slot: _Slot, target: ProbeTarget, device_type: str, deadline: float, digest: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProbeError("no time left to open an SSH session")
        try:
            connection = self._connect(target, device_type, remaining)
        except BaseException:
            with self._lock:
                self._connect_failures += 1
            raise
        with self._lock:
            self._handshakes += 1
        slot.session = PooledSession(connection, "")
        slot.credential_digest, slot.last_used = digest, time.monotonic()
        try:
            slot.session.prompt = connection.find_prompt().strip()
        except BaseException:
            self._close(slot)
            raise

    @staticmethod
    def _close(slot: _Slot) -> None:
        session, slot.session, slot.credential_digest = slot.session, None, None
        if session is None:
            return
        try:
            session.connection.disconnect()
        except Exception as exc:  # the session is being dropped anyway
            log.debug("closing an SSH session failed: %s", type(exc).__name__)

    def _netmiko_connect(self, target: ProbeTarget, device_type: str, timeout: float) -> Any:
        from netmiko import ConnectHandler

        credentials = target.credentials
        connection = ConnectHandler(
            device_type=device_type, host=target.host, port=target.port or SSH_PORT,
            username=credentials.username or "", password=credentials.password or "",
            secret=credentials.enable_secret or "", pkey=_private_key(credentials.ssh_private_key),
            use_keys=False, allow_agent=False,  # only the given key: never the poller's own keys or agent
            conn_timeout=timeout, auth_timeout=timeout, banner_timeout=timeout, blocking_timeout=timeout,
            timeout=timeout, keepalive=int(self.keepalive),
        )
        try:
            if credentials.enable_secret:
                connection.enable()
        except BaseException:
            connection.disconnect()
            raise
        return connection


_shared_pool: SshSessionPool | None = None
_shared_pool_lock = threading.Lock()


def shared_pool() -> SshSessionPool:
    """This process's pool, made on first use (each scheduler or Celery worker process has its own)."""
    global _shared_pool
    with _shared_pool_lock:
        if _shared_pool is None:
            _shared_pool = SshSessionPool()
        return _shared_pool


@functools.cache
def connection_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the session itself failed (imported late: netmiko is heavy)."""
    import paramiko
    from netmiko.exceptions import NetmikoTimeoutException, ReadException, ReadTimeout

    return OSError, EOFError, paramiko.SSHException, NetmikoTimeoutException, ReadTimeout, ReadException


def _key(target: ProbeTarget, device_type: str) -> SessionKey:
    return target.host, target.port or SSH_PORT, target.credentials.username or "", device_type


def _credential_digest(credentials: Credentials) -> str:
    """A fingerprint of the login secrets, so changed credentials open a new session (never stored in clear)."""
    parts = (credentials.username, credentials.password, credentials.enable_secret, credentials.ssh_private_key)
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


def _transport_active(slot: _Slot) -> bool:
    channel = getattr(slot.session.connection, "remote_conn", None)
    transport = getattr(channel, "transport", None)
    return transport is None or transport.is_active()  # None: not a paramiko session (a test double)


def _private_key(text: str | None) -> Any:
    if text is None:
        return None
    import paramiko

    for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            return key_class.from_private_key(io.StringIO(text))
        except (paramiko.SSHException, ValueError):
            continue
    raise ProbeError("the SSH private key could not be read (Ed25519, ECDSA or RSA, without a passphrase)")
