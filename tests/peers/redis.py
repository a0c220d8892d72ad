"""Session fixture `redis_url`: a private redis-server on a free loopback port, nothing written to disk."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator

import pytest

from itops.demo.slapd import free_port
from tests.peers import peer_unavailable
from tests.peers.daemon import DaemonError, start_daemon


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        peer_unavailable("redis", "redis-server is not installed (make test installs it)")
    workdir = tmp_path_factory.mktemp("redis")
    port = free_port()
    try:
        daemon = start_daemon("redis", [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                        "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"],
                              log_path=workdir / "redis.log", ready=lambda: _answers(port))
    except DaemonError as exc:
        peer_unavailable("redis", str(exc))
    try:
        yield f"redis://127.0.0.1:{port}"
    finally:
        daemon.stop()
