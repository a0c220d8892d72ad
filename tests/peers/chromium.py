"""pytest-playwright override: drive Debian's Chromium, since `playwright install` cannot download here."""

import shutil
from pathlib import Path

import pytest

from tests.peers import peer_unavailable

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Launch args for every Playwright browser; the extra flags keep Chromium off the network."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).is_file():
        peer_unavailable("chromium", "no chromium binary (Debian package chromium)")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_ARGS}
