"""Shared helpers for the bench scripts: bench instances, gunicorn, a keep-alive HTTP client, load and figures.

Everything here talks to 127.0.0.1 only. The scripts import it as `from _common import ...` (bench/ is on
sys.path when a script in it runs); importing it also puts the project root on sys.path for `itops`.
"""
from __future__ import annotations

import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

HOST = "127.0.0.1"
MARKER = ".bench-instance"       # a folder holding this file may be wiped and recreated by a bench script
CREDENTIALS = "bench.json"       # what the seed leaves for the other scripts (mode 0600)
GUNICORN_LOG = "gunicorn.log"


class BenchError(RuntimeError):
    """The bench could not run (not a slow result: those are reported, not raised)."""


# --- instances -----------------------------------------------------------------------------------

def default_instance(name: str) -> Path:
    return PROJECT_ROOT / "var" / name


def sqlalchemy_url(url: str) -> str:
    """The same normalisation itops.config applies, so the bench and the app open the same database."""
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def instance_env(instance: Path, database_url: str | None) -> dict[str, str]:
    """The environment for `flask` and gunicorn: this instance, this database and nothing from the shell
    that could point the bench at another database, a directory server or a metrics folder."""
    env = dict(os.environ)
    for name in ("ITOPS_DATABASE_URL", "ITOPS_LDAP_URL", "ITOPS_METRICS_DIR", "PROMETHEUS_MULTIPROC_DIR",
                 "ITOPS_SECRET_KEY", "ITOPS_ENCRYPTION_KEY", "ITOPS_SECRET_KEY_FILE", "ITOPS_ENCRYPTION_KEY_FILE"):
        env.pop(name, None)
    env["ITOPS_INSTANCE_DIR"] = str(instance)
    env["FLASK_APP"] = "app"
    if database_url:
        env["ITOPS_DATABASE_URL"] = database_url
    return env


def use_instance_in_process(instance: Path, database_url: str | None) -> None:
    """Point this process's itops.create_app() at the instance (call before creating the app)."""
    wanted = instance_env(instance, database_url)
    for name in [name for name in os.environ if name not in wanted]:
        del os.environ[name]
    os.environ.update(wanted)


def fresh_instance(instance: Path, database_url: str | None, *, wipe_database: bool = False) -> None:
    """An empty instance folder (recreated if a bench made it) and an empty, migrated database."""
    instance = instance.resolve()
    if instance.exists():
        if (instance / MARKER).exists():
            shutil.rmtree(instance)
        elif any(instance.iterdir()):
            raise BenchError(f"{instance} exists and was not made by a bench script; choose another --instance")
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)
    (instance / MARKER).write_text("made by itops bench scripts; deleted and recreated by them\n")
    if database_url:
        _empty_database(database_url, wipe=wipe_database)
    flask(["db", "upgrade"], instance_env(instance, database_url))


def _empty_database(url: str, *, wipe: bool) -> None:
    from sqlalchemy import MetaData, create_engine, inspect

    engine = create_engine(sqlalchemy_url(url))
    try:
        tables = inspect(engine).get_table_names()
        if tables and not wipe:
            raise BenchError(f"the database already has {len(tables)} tables; give an empty database, or add "
                             "--wipe-database to drop every table in it first")
        if tables:
            metadata = MetaData()
            metadata.reflect(engine)
            metadata.drop_all(engine)
    finally:
        engine.dispose()


def flask(args: list[str], env: dict[str, str], *, stdin: str | None = None) -> str:
    """Run `flask <args>` for the instance in `env`; its output, or BenchError with what it printed."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], env=env, cwd=PROJECT_ROOT,
                          input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"`flask {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def write_private_json(path: Path, values: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(values, handle, indent=2)


def read_credentials(instance: Path) -> dict:
    path = instance / CREDENTIALS
    if not path.exists():
        raise BenchError(f"{path} not found: seed the instance first (bench/assets_seed.py --instance {instance})")
    return json.loads(path.read_text())


# --- gunicorn ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving app:app for one instance on a free loopback port; a context manager that always stops it.

    As the README's serving line: two sync workers by default (gthread with --threads above 1). The server runs in
    its own session, so a Ctrl-C reaches the bench (which then stops the server) rather than gunicorn alone.

    --preload: the app is built once in the master and the workers fork ready. Without it /healthz answered
    as soon as the first worker had imported the app, every client's keep-alive connection went to that
    worker while the second was still importing, and the bench measured one worker (one core, the GIL).
    """

    def __init__(self, env: dict[str, str], log_path: Path, *, workers: int = 2, threads: int = 1,
                 app: str = "app:app", cwd: Path = PROJECT_ROOT):
        self.env, self.log_path, self.workers, self.threads = env, log_path, workers, threads
        self.app, self.cwd = app, cwd
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._log_start = 0

    @property
    def description(self) -> str:
        kind = "sync" if self.threads == 1 else f"gthread x {self.threads} threads"
        return f"gunicorn {self.workers} workers ({kind}) on {HOST}:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        self.port = free_port()
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--bind", f"{HOST}:{self.port}", "--workers", str(self.workers),
                 "--threads", str(self.threads), "--preload", "--graceful-timeout", "5",
                 "--capture-output", "--no-control-socket", self.app],
                env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()
        self._wait_healthy(timeout)
        return self

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                connection = http.client.HTTPConnection(HOST, self.port, timeout=2)
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                connection.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn did not answer /healthz within {timeout:.0f} s\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchError(f"gunicorn exited with code {self.process.returncode}\n{self.log_tail()}")

    def log_text(self) -> str:
        """What gunicorn and the app wrote since this server started."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as handle:
            handle.seek(self._log_start)
            return handle.read().decode(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        """Tracebacks (with the log line before them), errors and worker timeouts in the log, one block each."""
        lines, blocks, index = self.log_text().splitlines(), [], 0
        while index < len(lines):
            line = lines[index]
            if line.startswith("Traceback (most recent call last)"):
                block = [lines[index - 1]] if index and "ERROR" in lines[index - 1] else []
                block.append(line)
                index += 1
                while index < len(lines):
                    line = lines[index]
                    chained = line.startswith(("During handling", "The above exception", "Traceback"))
                    if not line.strip() or line.startswith((" ", "\t")) or chained:
                        block.append(line)
                        index += 1
                        continue
                    block.append(line)  # the exception and its message end the traceback...
                    index += 1
                    following = index
                    while following < len(lines) and not lines[following].strip():
                        following += 1
                    if following < len(lines) and lines[following].startswith(("During handling",
                                                                                "The above exception")):
                        index = following  # ...unless a chained one follows: same problem, same block
                        continue
                    break
                blocks.append("\n".join(block))
                continue
            next_is_traceback = index + 1 < len(lines) and lines[index + 1].startswith("Traceback")
            if any(word in line for word in ("[ERROR]", "WORKER TIMEOUT", "[CRITICAL]", " ERROR in ")) \
                    and not next_is_traceback:
                blocks.append(line)
            index += 1
        return blocks

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) used so far by the master and its live workers; None off Linux."""
        if self.process is None:
            return None
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            total = 0
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    fields = (entry / "stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                pid, parent = int(entry.name), int(fields[1])
                if pid == self.process.pid or parent == self.process.pid:
                    total += int(fields[11]) + int(fields[12])  # utime, stime
            return total / ticks
        except (OSError, ValueError, IndexError):
            return None

    def worker_pids(self) -> list[int]:
        """The live children of the gunicorn master (its workers); [] off Linux or before start."""
        if self.process is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == self.process.pid:
                pids.append(int(entry.name))
        return sorted(pids)

    def workers_rss(self) -> dict[int, int]:
        """Resident memory (VmRSS, bytes) of each live worker, by pid (the master is not counted)."""
        return {pid: rss for pid in self.worker_pids() if (rss := process_rss(pid)) is not None}

    def workers_pss(self) -> dict[int, int]:
        """Proportional set size (Pss, bytes) of each live worker: pages shared with the master or the other
        workers count once in all, so the sum is what the workers really take."""
        return {pid: pss for pid in self.worker_pids() if (pss := process_pss(pid)) is not None}

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the master and its workers only
            self.process.wait(timeout=5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def process_rss(pid: int) -> int | None:
    """VmRSS of a process in bytes, from /proc/<pid>/status; None when it is gone or off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_cpu_seconds(pid: int | None) -> float:
    """utime + stime of one process so far, from /proc/<pid>/stat (0 when it is gone, or no pid)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def process_pss(pid: int) -> int | None:
    """Pss of a process in bytes, from /proc/<pid>/smaps_rollup; None when it is gone or off Linux."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def machine_busy_seconds() -> float | None:
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq, steal), from
    /proc/stat; with the server's and the bench's own CPU it tells how much other processes took."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def sqlite_database_size(path: Path) -> int:
    """Bytes of a SQLite database with its -wal and -shm files."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())


def sigterm_as_interrupt() -> None:
    """Ctrl-C and `kill <bench pid>` both raise KeyboardInterrupt, so the finally blocks stop gunicorn
    (SIGINT too: a shell without job control starts background commands with SIGINT ignored)."""
    def _raise(*_args):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, _raise)


# --- HTTP ----------------------------------------------------------------------------------------

@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.body)


class Http:
    """One keep-alive connection and its own cookies: one per load thread, like one browser or agent."""

    def __init__(self, port: int, *, headers: dict[str, str] | None = None, timeout: float = 60):
        self.port, self.timeout = port, timeout
        self.headers = dict(headers or {})
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        all_headers = {**self.headers, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for attempt in (1, 2):
            reused = self.connection is not None
            connection = self._connect()
            try:
                connection.request(method, path, body=body, headers=all_headers)
                raw = connection.getresponse()
                data = raw.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # The server closed an idle keep-alive connection before reading this request: send it again.
                self.close()
                if attempt == 2 or not reused:
                    raise
                continue
            except Exception:
                self.close()
                raise
            for cookie in raw.headers.get_all("Set-Cookie") or []:
                self._store_cookie(cookie)
            if raw.will_close:
                self.close()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
        raise AssertionError("unreachable")

    def _store_cookie(self, header: str) -> None:
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        expired = re.search(r"max-age=0\b", attributes, re.I) or re.search(r"expires=[^;]*19[0-9]{2}", attributes, re.I)
        if expired or not value:
            self.cookies.pop(name, None)
        else:
            self.cookies[name] = value

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)

    def post_form(self, path: str, fields: dict[str, str]) -> Response:
        return self.request("POST", path, urllib.parse.urlencode(fields).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def post_json(self, path: str, value, headers: dict[str, str] | None = None) -> Response:
        return self.request("POST", path, json.dumps(value).encode(),
                            {"Content-Type": "application/json", **(headers or {})})


_CSRF_INPUT = re.compile(r"<input[^>]*\bname=\"csrf_token\"[^>]*>", re.I)
_CSRF_META = re.compile(r"<meta[^>]*\bname=\"csrf-token\"[^>]*>", re.I)


def csrf_token(html: str) -> str:
    """The CSRF token of the first form on the page (or the csrf-token meta tag)."""
    for pattern, attribute in ((_CSRF_INPUT, "value"), (_CSRF_META, "content")):
        tag = pattern.search(html)
        if tag:
            value = re.search(rf'\b{attribute}="([^"]*)"', tag.group(0))
            if value:
                return value.group(1)
    raise BenchError("no CSRF token on the page")


def sign_in(client: Http, username: str, password: str) -> None:
    """Sign in through /login as a browser does; the session cookie stays in `client`."""
    page = client.get("/login")
    if page.status != 200:
        raise BenchError(f"GET /login answered {page.status}")
    answer = client.post_form("/login", {"username": username, "password": password,
                                         "csrf_token": csrf_token(page.text)})
    if answer.status != 302:
        raise BenchError(f"sign-in as {username} answered {answer.status}, not a redirect: {excerpt(answer.body)}")


def show_problem(block: str) -> str:
    """A problem from the server log for the console: its first line, the project's own frames (not the
    libraries') with their source lines, and the exception."""
    lines = block.splitlines()
    if len(lines) <= 3:
        return "    " + "\n    ".join(lines)
    shown, venv = [lines[0]], str(PROJECT_ROOT / ".venv")
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("File \"") and str(PROJECT_ROOT) in line and venv not in line:
            shown.append(line)
            if index + 1 < len(lines) and not lines[index + 1].strip().startswith(("File ", "^")):
                shown.append(lines[index + 1])
    shown.append(lines[-1])
    return "    " + "\n    ".join(shown)


def excerpt(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace")
    text = re.sub(r"<[^>]+>", " ", text) if "<html" in text[:500].lower() else text
    return re.sub(r"\s+", " ", text).strip()[:limit]


# --- load and figures ----------------------------------------------------------------------------

@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)    # exceptions by type: connection errors, timeouts
    examples: list[str] = field(default_factory=list)    # the first few non-2xx answers and exceptions
    wall_s: float = 0.0

    @property
    def count(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.count / self.wall_s if self.wall_s else 0.0

    def ok(self, expected: Iterable[int] = (200,)) -> int:
        return sum(n for status, n in self.statuses.items() if status in set(expected))

    def problems(self, expected: Iterable[int] = (200,)) -> str:
        """'' when every answer was expected, else a short account of what was not."""
        expected = set(expected)
        parts = [f"{n} x {status}" for status, n in sorted(self.statuses.items()) if status not in expected]
        parts += [f"{n} x {name}" for name, n in sorted(self.failures.items())]
        return ", ".join(parts)


def run_load(task: Callable[[object, int], int], *, concurrency: int, setup: Callable[[int], object],
             requests: int | None = None, duration: float | None = None,
             teardown: Callable[[object], None] | None = None) -> LoadResult:
    """`concurrency` threads, each with its own context from setup(thread_number) (made before timing starts),
    call task(context, sequence_number) -> HTTP status until `requests` calls in all or `duration` seconds.
    Each call is timed; a call that raises counts as a failure and is timed too."""
    if (requests is None) == (duration is None):
        raise ValueError("give requests or duration")
    result = LoadResult()
    lock, stop = threading.Lock(), threading.Event()
    counter = iter(range(requests if requests is not None else 1 << 62))
    barrier = threading.Barrier(concurrency + 1)
    setup_errors: list[BaseException] = []
    timing = {"deadline": math.inf}

    def worker(number: int) -> None:
        try:
            context = setup(number)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            setup_errors.append(exc)
            barrier.abort()
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        local_latency, local_status, local_fail, local_examples = [], Counter(), Counter(), []
        try:
            while not stop.is_set():
                with lock:
                    sequence = next(counter, None)
                if sequence is None or time.monotonic() >= timing["deadline"]:
                    break
                started = time.perf_counter()
                try:
                    status = task(context, sequence)
                except Exception as exc:  # noqa: BLE001 - counted, the load goes on
                    local_latency.append((time.perf_counter() - started) * 1000)
                    local_fail[type(exc).__name__] += 1
                    if len(local_examples) < 3:
                        local_examples.append(f"{type(exc).__name__}: {exc}")
                    continue
                local_latency.append((time.perf_counter() - started) * 1000)
                local_status[status] += 1
        finally:
            with lock:
                result.latencies_ms.extend(local_latency)
                result.statuses.update(local_status)
                result.failures.update(local_fail)
                result.examples.extend(local_examples[: max(0, 5 - len(result.examples))])
            if teardown is not None:
                teardown(context)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True, name=f"load-{n}") for n in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            for thread in threads:
                thread.join()
            raise BenchError(f"a load thread could not start: {setup_errors[0]!r}") from setup_errors[0]
        started = time.perf_counter()
        if duration is not None:
            timing["deadline"] = time.monotonic() + duration
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        result.wall_s = time.perf_counter() - started
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(10)
        raise
    return result


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    values = sorted(latencies_ms)
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": values[-1] if values else math.nan}


TABLE_HEADER = f"{'scenario':46} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} {'req/s':>7}  target"


def table_line(label: str, result: LoadResult, *, p95_target_ms: float | None = None,
               expected: Iterable[int] = (200,)) -> tuple[str, bool]:
    """One printed line (ms) and whether it met the p95 target (True when there is none)."""
    stats = latency_summary(result.latencies_ms)
    verdict, met = "", True
    if p95_target_ms is not None:
        met = stats["p95"] < p95_target_ms
        verdict = f"p95 < {p95_target_ms:g} ms {'PASS' if met else 'MISS'}"
    problems = result.problems(expected)
    if problems:
        verdict += f"  ! not {'/'.join(map(str, expected))}: {problems}"
    line = (f"{label:46} {result.count:6d} {stats['p50']:7.1f} {stats['p95']:7.1f} {stats['p99']:7.1f} "
            f"{stats['max']:7.1f} {result.rate:7.1f}  {verdict}")
    return line, met


def machine_load() -> str:
    """Cores and load average, printed with the figures: a busy machine makes every line slower."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


def report_end_of_run(server: "Server") -> None:
    """What every bench prints last: the server log's last error, if any, and how loaded the machine was."""
    problems = server.log_problems()
    if problems:
        print(f"\nthe server log ({server.log_path}) has {len(problems)} errors; the last:")
        print(show_problem(problems[-1]))
    print(f"\nmachine after the run: {machine_load()}")


def run_against(server: "Server", measure: Callable[[], bool]) -> int:
    """Run `measure` (True when something failed) with the server up; always stop the server."""
    try:
        failed = measure()
        report_end_of_run(server)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; stopping gunicorn", file=sys.stderr)
        return 130
    finally:
        server.stop()
    return 1 if failed else 0


def add_seed_arguments(parser, *, what: str, default_count: int, instance_name: str) -> None:
    """The options every seed script takes: how many, where, which database, which random seed."""
    parser.add_argument("--count", type=int, default=default_count, help=f"{what} to create (default {default_count})")
    parser.add_argument("--instance", type=Path, default=default_instance(instance_name),
                        help=f"instance folder, recreated (default var/{instance_name})")
    parser.add_argument("--database-url", help="a PostgreSQL URL instead of the instance's SQLite file")
    parser.add_argument("--wipe-database", action="store_true",
                        help="with --database-url: drop every table already in that database first")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same data)")


def prepare_seed_instance(args) -> Path | None:
    """A fresh, migrated instance used by this process; None (after saying why) if that failed."""
    instance = args.instance.resolve()
    started = time.perf_counter()
    print(f"instance {instance}  database {args.database_url or 'SQLite (instance/itops.db)'}")
    try:
        fresh_instance(instance, args.database_url, wipe_database=args.wipe_database)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    use_instance_in_process(instance, args.database_url)
    return instance


def add_gunicorn_arguments(parser) -> None:
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per gunicorn worker: 1 runs the sync worker (the README's serving line), more "
                             "run gthread, which keeps each keep-alive client on one worker")


def add_page_bench_arguments(parser, *, instance_name: str) -> None:
    """The options every page bench takes: which seeded instance, how hard, and how gunicorn runs."""
    parser.add_argument("--instance", type=Path, default=default_instance(instance_name))
    parser.add_argument("--requests", type=int, default=400, help="measured requests per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured requests per scenario first")
    add_gunicorn_arguments(parser)
    parser.add_argument("--database-url", help="default: the one the seed used (from <instance>/bench.json)")
    parser.add_argument("--seed", type=int, default=1)
