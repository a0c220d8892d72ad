"""Session fixture `postgres_url`: a throwaway PostgreSQL cluster on loopback.

`start_postgres` is plain Python so non-pytest code can reuse it.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from itops.demo.slapd import free_port
from tests.peers import peer_unavailable

DATABASE = "itops_test"


class PostgresError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def postgres_bin() -> Path:
    """The bin folder of the highest PostgreSQL version under /usr/lib/postgresql."""
    versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")
                if p.parent.parent.name.isdigit()]
    if not versions:
        raise PostgresError("no /usr/lib/postgresql/*/bin/pg_ctl (Debian package postgresql)")
    return max(versions, key=lambda path: int(path.parent.name))


def start_postgres(workdir: Path, port: int) -> tuple[str, Callable[[], None]]:
    """initdb + start a trust-auth cluster in `workdir` on 127.0.0.1:`port` and create DATABASE.

    Returns (SQLAlchemy URL, stop). The postgres user must be able to enter every
    parent of `workdir`, so pytest's 0700 tmp_path does not work; the caller
    removes `workdir` after stop().
    """
    bin_dir, workdir = postgres_bin(), Path(workdir).resolve()
    # initdb refuses to run as root: drop to the postgres user.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(workdir, "postgres", "postgres")
    data, log = workdir / "data", workdir / "postgres.log"

    def run(*command: str) -> None:
        done = subprocess.run([*as_postgres, *command], cwd=workdir, capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresError(f"{Path(command[0]).name} failed: {done.stdout}{done.stderr}{server_log}".strip())

    def stop() -> None:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")

    run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o",
        f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off", "start")
    try:
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", DATABASE)
    except PostgresError:
        stop()
        raise
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{DATABASE}", stop


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of an empty DATABASE, shared by the session; the cluster is deleted afterwards."""
    workdir = Path(tempfile.mkdtemp(prefix="itops-pg.", dir="/tmp"))
    try:
        url, stop = start_postgres(workdir, free_port())
    except (PostgresError, OSError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(workdir, ignore_errors=True)
        peer_unavailable("postgres", str(exc))
    try:
        yield url
    finally:
        stop()
        shutil.rmtree(workdir, ignore_errors=True)
