"""Browser tests: pytest-playwright's `page` drives Debian's chromium against `live_server`.

Every context's console is watched: a test fails if any page it visits logs an error or a
Content-Security-Policy violation, or throws an uncaught exception, unless the test declared
that status on purpose (`console.allow_status(url, 404)` for a 404 page it opens itself).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, WebError, expect

from tests.conftest import PASSWORD
from tests.conftest import sign_in as sign_in_client

# Each expect() waits up to this long; the app answers locally in milliseconds.
expect.set_options(timeout=5_000)


@pytest.fixture(scope="session")
def base_url(live_server) -> str:
    """pytest-playwright gives every context this base URL, so tests can goto('/login')."""
    return live_server


@dataclass
class Console:
    """Console messages and uncaught page errors of the contexts attached to it."""

    messages: list[tuple[str, str, str]] = field(default_factory=list)  # (type, text, url)
    page_errors: list[str] = field(default_factory=list)
    allowed: set[tuple[str, int]] = field(default_factory=set)

    def attach(self, context: BrowserContext) -> Console:
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)
        return self

    def _on_console(self, message: ConsoleMessage) -> None:
        self.messages.append((message.type, message.text, message.location.get("url", "")))

    def _on_web_error(self, error: WebError) -> None:
        self.page_errors.append(str(error.error))

    def allow_status(self, url: str, status: int) -> None:
        """A page the test opens on purpose that answers `status` (its 'Failed to load' is expected)."""
        self.allowed.add((url, status))

    def _expected(self, text: str, url: str) -> bool:
        match = re.match(r"Failed to load resource: the server responded with a status of (\d+)", text)
        if not match:
            return False
        status = int(match.group(1))
        return any(url.endswith(allowed_url) and status == allowed_status
                   for allowed_url, allowed_status in self.allowed)

    def errors(self) -> list[str]:
        found = [f"{text} ({url})" for kind, text, url in self.messages
                 if kind == "error" and not self._expected(text, url)]
        return found + [f"uncaught: {error}" for error in self.page_errors]

    def csp_violations(self) -> list[str]:
        return [text for _kind, text, _url in self.messages if "Content Security Policy" in text]


@pytest.fixture(autouse=True)
def console(context: BrowserContext):
    """Watches the test's browser context; the test fails if any page logged an error."""
    watcher = Console().attach(context)
    yield watcher
    assert not watcher.csp_violations(), f"Content-Security-Policy violations: {watcher.csp_violations()}"
    assert not watcher.errors(), f"console errors: {watcher.errors()}"


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the login form and wait for the home page."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Hello,")


@pytest.fixture
def session_for(app, base_url, context: BrowserContext):
    """session_for(user): give the browser a signed-in session cookie without the login form.

    For tests about something else than signing in; each form sign-in costs a few page loads.
    """

    def give(user) -> None:
        client = app.test_client()
        sign_in_client(client, user)
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
        context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": base_url,
                              "httpOnly": True, "sameSite": "Lax"}])

    return give


def nav(page: Page):
    """The main navigation bar."""
    return page.get_by_role("navigation", name="Main")
