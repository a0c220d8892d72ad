"""Session fixture `switches`: simulated Cisco IOS switches (fake-switches) on free loopback ports.

`switch_farm()` starts a farm of its own for a test that stops and restarts its switches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from itops.demo.switches import SwitchError, SwitchFarm, start_switches
from tests.peers import peer_unavailable

USERNAME = "netops"
PASSWORD = "switch-login-pass-7"
ENABLE_SECRET = "switch-enable-secret-7"


def _start(count: int, log_path: Path, name_prefix: str) -> SwitchFarm:
    try:
        return start_switches(count, username=USERNAME, password=PASSWORD, enable_secret=ENABLE_SECRET,
                              name_prefix=name_prefix, log_path=log_path)
    except (SwitchError, OSError) as exc:
        peer_unavailable("fake-switches", str(exc))


@pytest.fixture(scope="session")
def switches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchFarm]:
    """Three switches shared by the session; tests must not stop them (use switch_farm for that)."""
    farm = _start(3, tmp_path_factory.mktemp("switches") / "switches.log", "sw")
    try:
        yield farm
    finally:
        farm.stop()


@pytest.fixture
def switch_farm(tmp_path: Path) -> Iterator[Callable[[int], SwitchFarm]]:
    """switch_farm(n): n switches in a farm of this test's own, stopped at the end of the test."""
    farms: list[SwitchFarm] = []

    def start(count: int = 1) -> SwitchFarm:
        farms.append(_start(count, tmp_path / f"farm{len(farms)}.log", f"lab{len(farms)}-"))
        return farms[-1]

    yield start
    for farm in farms:
        farm.stop()
