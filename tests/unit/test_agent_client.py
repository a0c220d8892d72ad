"""The agent against a scripted stdlib HTTP server on loopback: wire format, exit statuses, state, retry timing."""
from __future__ import annotations

import gzip
import http.server
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest

from itops.agent import client, state
from itops.agent.__main__ import run_loop
from itops.agent.collect import collect_report

ROOT = Path(__file__).resolve().parents[2]
ENROLL_TOKEN = "itops_enr_" + "E" * 43
AGENT_TOKEN = "itops_agt_" + "A" * 43
OK = {"asset_id": 12, "changes": 3, "report_interval_seconds": 3600}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def report(self) -> dict:
        return json.loads(gzip.decompress(self.body))


@dataclass
class ScriptedServer:
    """Answers POSTs from a script of (status, JSON body, headers); the last answer repeats."""

    url: str = ""
    answers: list[tuple[int, dict, dict]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)

    def answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))

    def next_answer(self) -> tuple[int, dict, dict]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def wait_for(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"the agent sent {len(self.received)} requests, expected {count}"
            time.sleep(0.05)


class _Handler(http.server.BaseHTTPRequestHandler):
    scripted: ScriptedServer

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.scripted.received.append(Received(self.path, dict(self.headers), body))
        status, payload, headers = self.scripted.next_answer()
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/problem+json" if status >= 400 else "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    """urllib honours *_proxy variables; these tests must talk to loopback directly."""
    for name in list(os.environ):
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def server():
    scripted = ScriptedServer()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"scripted": scripted}))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    scripted.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield scripted
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def write_state(path: Path, server_url: str, mode: int = 0o600) -> Path:
    data = {"server": server_url, "agent_token": AGENT_TOKEN, "asset_id": 12, "asset_tag": "IT-000012",
            "report_interval_seconds": 3600}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with open(fd, "w") as file:
        json.dump(data, file)
    os.chmod(path, mode)  # the umask may have narrowed it
    return path


@pytest.fixture
def state_file(tmp_path, server):
    return write_state(tmp_path / "state.json", server.url)


def agent_command(*args: str, state_path: Path) -> tuple[list[str], dict[str, str]]:
    return [sys.executable, "-m", "itops.agent", *args], {**os.environ, "ITOPS_AGENT_STATE": str(state_path)}


def run_agent(*args: str, state_path: Path) -> subprocess.CompletedProcess:
    argv, env = agent_command(*args, state_path=state_path)
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the wire -------------------------------------------------------------------------------------

def test_push_sends_the_report_gzipped_with_the_bearer_token(server):
    server.answer(200, OK)
    report = collect_report()
    assert client.push(server.url, AGENT_TOKEN, report) == OK
    request, = server.received
    assert request.path == "/api/v1/agent/inventory"
    assert request.headers["Authorization"] == f"Bearer {AGENT_TOKEN}"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "itops-agent/1.0.0"
    assert request.report == report


def test_problem_details_and_retry_after_reach_the_errors(server):
    server.answer(422, {"title": "Unprocessable", "detail": "The report has errors.",
                        "errors": {"disks": {"0": {"total_bytes": ["Must be at least 0."]}}}})
    with pytest.raises(client.ReportRefused) as refused:
        client.push(server.url, AGENT_TOKEN, {"schema": 1})
    assert "The report has errors." in refused.value.detail
    assert "disks.0.total_bytes: Must be at least 0." in refused.value.detail
    server.answers[:] = []
    server.answer(429, {"detail": "Slow down."}, {"Retry-After": "120"})
    with pytest.raises(client.Retryable) as busy:
        client.push(server.url, AGENT_TOKEN, {"schema": 1})
    assert busy.value.retry_after == 120 and "Slow down." in busy.value.detail


def test_redirects_are_not_followed(server):
    server.answer(302, {}, {"Location": "http://127.0.0.1:9/elsewhere"})
    with pytest.raises(client.Retryable, match="redirected to http://127.0.0.1:9/elsewhere"):
        client.push(server.url, AGENT_TOKEN, {"schema": 1})
    assert len(server.received) == 1


def test_an_unreachable_server_is_retryable():
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(client.Retryable, match="cannot reach"):
        client.push(f"http://127.0.0.1:{port}", AGENT_TOKEN, {"schema": 1})


def test_oversized_reports_are_refused_before_sending():
    with pytest.raises(client.ReportRefused, match="at most 8388608"):
        client.encode_report({"blob": "x" * (8 * 1024 * 1024)})
    random_hex = os.urandom(5 * 1024 * 1024 // 2).hex()  # 5 MiB of hex digits gzip to about 2.7 MiB
    with pytest.raises(client.ReportRefused, match="compressed"):
        client.encode_report({"blob": random_hex})


@pytest.mark.parametrize("url, expected", [
    ("https://itops.example.com/", "https://itops.example.com"),
    ("https://itops.example.com/itops//", "https://itops.example.com/itops"),
    ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
    ("http://localhost:8080", "http://localhost:8080"),
    ("http://[::1]:8080/", "http://[::1]:8080"),
])
def test_server_urls_are_normalised(url, expected):
    assert client.normalize_server(url) == expected


@pytest.mark.parametrize("url", ["ftp://itops.example.com", "itops.example.com", "http://itops.example.com",
                                 "https://itops.example.com/?x=1", "https://itops.example.com:99999"])
def test_bad_server_urls_are_refused(url):
    with pytest.raises(ValueError):
        client.normalize_server(url)


# --- the command line -----------------------------------------------------------------------------

def test_run_once_reports_and_prints_a_summary(server, state_file):
    server.answer(200, OK)
    done = run_agent("run", "--once", state_path=state_file)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"reported to {server.url}: asset IT-000012, 3 changes\n"
    assert server.received[0].report["hostname"] == socket.gethostname()
    assert AGENT_TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize("status, body, code, shown", [
    (401, {"detail": "Unknown or revoked token."}, 3, "Unknown or revoked token."),
    (403, {"detail": "This token cannot report inventory."}, 3, "cannot report inventory"),
    (422, {"detail": "The report has errors.", "errors": {"cpu.cores_logical": ["Must be at least 1."]}}, 5,
     "cpu.cores_logical: Must be at least 1."),
    (413, {"detail": "The body is over 2 MiB compressed."}, 5, "over 2 MiB"),
    (503, {"detail": "Down for maintenance."}, 4, "Down for maintenance."),
])
def test_run_once_exit_statuses_follow_the_protocol(server, state_file, status, body, code, shown):
    server.answer(status, body)
    done = run_agent("run", "--once", state_path=state_file)
    assert done.returncode == code
    assert shown in done.stderr and done.stdout == ""
    assert len(server.received) == 1  # --once never retries


def test_run_once_without_state_is_a_configuration_error(tmp_path):
    done = run_agent("run", "--once", state_path=tmp_path / "absent.json")
    assert done.returncode == 2 and "enroll this machine first" in done.stderr


def test_a_state_file_others_can_read_is_fixed_with_a_warning(server, tmp_path):
    loose = write_state(tmp_path / "state.json", server.url, mode=0o644)
    server.answer(200, {**OK, "report_interval_seconds": 900})
    done = run_agent("run", "--once", state_path=loose)
    assert done.returncode == 0 and "readable by others" in done.stderr
    assert mode_of(loose) == 0o600
    assert json.loads(loose.read_text())["report_interval_seconds"] == 900  # the server's new interval


def test_enroll_saves_a_private_state_file_and_never_prints_tokens(server, tmp_path):
    server.answer(201, {"asset_id": 12, "asset_tag": "IT-000012", "agent_token": AGENT_TOKEN,
                        "report_interval_seconds": 900})
    path = tmp_path / "agent" / "state.json"
    done = run_agent("enroll", "--server", server.url + "/", "--token", ENROLL_TOKEN, "--state", str(path),
                     state_path=tmp_path / "unused.json")
    assert done.returncode == 0, done.stderr
    request, = server.received
    assert request.path == "/api/v1/agent/enroll" and request.headers["Authorization"] == f"Bearer {ENROLL_TOKEN}"
    assert request.report["hostname"] == socket.gethostname()
    assert json.loads(path.read_text()) == {"server": server.url, "agent_token": AGENT_TOKEN, "asset_id": 12,
                                            "asset_tag": "IT-000012", "report_interval_seconds": 900}
    assert mode_of(path) == 0o600 and mode_of(path.parent) == 0o700
    output = done.stdout + done.stderr
    assert AGENT_TOKEN not in output and ENROLL_TOKEN not in output
    assert AGENT_TOKEN[:12] in done.stdout and "IT-000012" in done.stdout
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_a_refused_enrollment_token_writes_no_state(server, tmp_path):
    server.answer(401, {"detail": "This enrollment token has expired."})
    path = tmp_path / "state.json"
    done = run_agent("enroll", "--server", server.url, "--token", ENROLL_TOKEN, state_path=path)
    assert done.returncode == 3 and "has expired" in done.stderr and not path.exists()


def test_enroll_refuses_plain_http_to_another_host(tmp_path):
    done = run_agent("enroll", "--server", "http://192.0.2.1", "--token", ENROLL_TOKEN,
                     state_path=tmp_path / "state.json")
    assert done.returncode == 2 and "https" in done.stderr and ENROLL_TOKEN not in done.stderr


def test_sigterm_stops_the_loop_promptly(server, state_file):
    server.answer(200, OK)
    argv, env = agent_command("run", "--interval", "3600", state_path=state_file)
    agent = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        server.wait_for(1)
        time.sleep(0.2)  # into the hour-long wait
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=5)
    finally:
        agent.kill()
    assert agent.returncode == 0 and "reported to" in stderr


# --- the loop and its timing ----------------------------------------------------------------------

class Lowest:
    """An rng whose jitter is always 0."""
    @staticmethod
    def uniform(low, high):
        return low


class Highest:
    """An rng whose jitter is always the whole range."""
    @staticmethod
    def uniform(low, high):
        return high


def test_the_loop_retries_after_failures_and_stops_on_request(server, state_file):
    server.answer(503, {"detail": "Starting up."}, {"Retry-After": "0"})
    server.answer(500, {"detail": "Oops."})
    server.answer(200, OK)
    stop = threading.Event()
    outcome = []
    loop = threading.Thread(target=lambda: outcome.append(
        run_loop(state_file, state.load(state_file), None, stop, rng=Lowest)))
    loop.start()
    server.wait_for(3)
    stop.set()
    loop.join(timeout=5)
    assert outcome == [0] and len(server.received) == 3


def test_the_loop_ends_when_the_token_is_refused(server, state_file):
    server.answer(503, {"detail": "Busy."}, {"Retry-After": "0"})
    server.answer(401, {"detail": "Revoked."})
    assert run_loop(state_file, state.load(state_file), None, threading.Event(), rng=Lowest) == 3
    assert len(server.received) == 2


def test_the_loop_waits_for_the_next_interval_after_a_refused_report(server, state_file):
    server.answer(422, {"detail": "Bad report."})
    stop = threading.Event()
    loop = threading.Thread(target=run_loop, args=(state_file, state.load(state_file), None, stop))
    loop.start()
    server.wait_for(1)
    time.sleep(0.3)
    assert loop.is_alive() and len(server.received) == 1  # neither exited nor retried at once
    stop.set()
    loop.join(timeout=5)
    assert not loop.is_alive()


def test_next_delay_doubles_from_30_seconds_up_to_the_interval_and_an_hour():
    assert [client.next_delay(n, 3600, rng=Highest) for n in range(9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert client.next_delay(5, 100, rng=Highest) == 100
    assert client.next_delay(12, 86_400, rng=Highest) == 3600
    assert client.next_delay(10_000, 86_400, rng=Highest) == 3600


def test_next_delay_uses_full_jitter():
    rng = random.Random(7)
    delays = [client.next_delay(3, 3600, rng=rng) for _ in range(50)]
    assert all(0 <= d <= 240 for d in delays) and len(set(delays)) == 50
    assert min(delays) < 60 and max(delays) > 180


def test_next_delay_honours_retry_after():
    assert client.next_delay(0, 3600, retry_after=120, rng=Lowest) == 120
    assert client.next_delay(0, 3600, retry_after=120, rng=Highest) == 150
    assert client.next_delay(0, 3600, retry_after=10**6, rng=Lowest) == 3600


def test_retry_after_may_be_seconds_or_a_date():
    now = datetime(2026, 11, 25, 13, 0, tzinfo=timezone.utc)
    assert client.parse_retry_after("120") == 120
    assert client.parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    assert client.parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0
    assert client.parse_retry_after("soon") is None and client.parse_retry_after(None) is None


def test_default_state_paths(tmp_path):
    assert state.default_path({"ITOPS_AGENT_STATE": str(tmp_path / "s.json")}) == tmp_path / "s.json"
    assert state.default_path({}, euid=0) == Path("/var/lib/itops-agent/state.json")
    assert state.default_path({}, euid=1000) == Path.home() / ".config/itops-agent/state.json"
