"""The agent's state file: which server to report to, with which agent token, as which asset.

It holds a bearer secret, so it is kept at mode 0600 in a 0700 directory and replaced atomically:
a crash mid-write must not leave a machine with half a token and no way to report.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("itops.agent")

ENV_VAR = "ITOPS_AGENT_STATE"
SYSTEM_PATH = Path("/var/lib/itops-agent/state.json")
USER_PATH = Path("~/.config/itops-agent/state.json")


class StateError(Exception):
    """The state file is missing, unreadable, incomplete or cannot be written (exit status 2)."""


def default_path(environ: Mapping[str, str] = os.environ, euid: int | None = None) -> Path:
    """$ITOPS_AGENT_STATE, else the system path for root, else one under the user's ~/.config."""
    if environ.get(ENV_VAR):
        return Path(environ[ENV_VAR]).expanduser()
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1  # Windows has no euid
    return SYSTEM_PATH if euid == 0 else USER_PATH.expanduser()


def load(path: Path) -> dict[str, Any]:
    """The saved state; StateError says what to do when there is none usable."""
    try:
        _tighten_mode(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"{path} does not exist: enroll this machine first "
                         "(python -m itops.agent enroll --server URL --token TOKEN)") from None
    except OSError as error:
        raise StateError(f"cannot read the state file {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise StateError(f"the state file {path} is not valid JSON; enroll again") from None
    if not isinstance(data, dict) or not data.get("server") or not data.get("agent_token"):
        raise StateError(f"the state file {path} has no server or agent token; enroll again")
    return data


def _tighten_mode(path: Path) -> None:
    """A state file others can read leaks the token: say so and fix it rather than refuse to run."""
    if os.name != "posix":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the state file %s was readable by others (mode %o); setting it to 0600", path, mode)
        try:
            path.chmod(0o600)
        except OSError as error:  # not our file: still usable, and the warning stands
            log.warning("cannot change the mode of %s: %s", path, error.strerror or error)


def ensure_writable(path: Path) -> None:
    """Create the state directory (0700) and check we may write there: enroll calls this before it
    asks the server for a token, since a token we cannot store is lost."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise StateError(f"cannot create {path.parent}: {error.strerror or error}") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise StateError(f"cannot write to {path.parent}: run as a user who may, or pass --state")


def save(path: Path, data: Mapping[str, Any]) -> None:
    """Write the state atomically: a temp file (0600 from its creation) in the same directory, then
    os.replace, so readers and crashes see the old file or the new one, never a torn one."""
    ensure_writable(path)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as file:
            json.dump(dict(data), file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise StateError(f"cannot write the state file {path}: {error.strerror or error}") from None
