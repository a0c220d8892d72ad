"""Pytest fixtures that run real peer services (slapd, PostgreSQL, Chromium) for the tests."""

import os
from typing import NoReturn

import pytest


def peer_unavailable(name: str, reason: str) -> NoReturn:
    """Skip when a peer cannot run here, but fail under ITOPS_REQUIRE_PEERS=1 (CI), so
    a broken peer never hides as a wall of skips."""
    if os.environ.get("ITOPS_REQUIRE_PEERS") == "1":
        pytest.fail(f"required peer {name} could not start: {reason}", pytrace=False)
    pytest.skip(f"peer {name} unavailable: {reason}")
