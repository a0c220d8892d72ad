"""A daemon run in the foreground under the test process: started, waited for, stopped by its pid."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from tests.peers import peer_unavailable


class Stoppable(Protocol):
    def stop(self) -> None: ...


PeerT = TypeVar("PeerT", bound=Stoppable)


class DaemonError(RuntimeError):
    """The daemon could not be started, or did not become ready in time."""


@dataclass
class Daemon:
    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def start_daemon(name: str, argv: Sequence[str], *, log_path: Path, ready: Callable[[], bool],
                 timeout: float = 15, env: Mapping[str, str] | None = None) -> Daemon:
    """Start `argv` (which must stay in the foreground), then poll `ready()` until it is true."""
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env,
                                       stdin=subprocess.DEVNULL)
        except OSError as exc:
            raise DaemonError(f"{name} could not be started: {exc}") from exc
    daemon = Daemon(name, process, log_path)
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise DaemonError(f"{name} exited with {process.returncode}: {daemon.log_tail()}")
        if time.monotonic() > deadline:
            daemon.stop()
            raise DaemonError(f"{name} not ready after {timeout:g} s: {daemon.log_tail()}")
        time.sleep(0.05)
    return daemon


@contextmanager
def peer_in_temp_folder(name: str, start: Callable[[Path], PeerT]) -> Iterator[PeerT]:
    """start(workdir) a peer in a fresh temporary folder; stop it and remove the folder afterwards.
    A peer that cannot start is reported through peer_unavailable (a failure under ITOPS_REQUIRE_PEERS=1)."""
    workdir = Path(tempfile.mkdtemp(prefix=f"itops-{name}."))
    try:
        peer = start(workdir)
    except (DaemonError, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        peer_unavailable(name, str(exc))
    try:
        yield peer
    finally:
        peer.stop()
        shutil.rmtree(workdir, ignore_errors=True)
