"""Session fixture `smtp_sink`: a real SMTP server (aiosmtpd) on loopback that keeps what it receives.

The sink can be stopped and started again on the same port, so a test can take "the mail server"
down and bring it back. Recipients listed in `refuse` get a permanent 550 at RCPT, those in
`defer` a temporary 451; `delay` slows each delivery down. clear() resets all of that.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from itops.demo.slapd import free_port
from tests.peers import peer_unavailable


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class SmtpSink:
    host: str = "127.0.0.1"
    port: int = 0
    messages: list[ReceivedMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # 550 at RCPT
    defer: set[str] = field(default_factory=set)  # 451 at RCPT
    delay: float = 0.0  # seconds before answering DATA, to make a delivery take a while
    _controller: object | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # aiosmtpd handler hooks -------------------------------------------------------------------
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 <%s>: mailbox unavailable" % address
        if address.lower() in self.defer:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        received = ReceivedMessage(envelope.mail_from, list(envelope.rcpt_tos),
                                   message_from_bytes(envelope.original_content, policy=policy.default),
                                   envelope.original_content)
        with self._lock:
            self.messages.append(received)
        return "250 OK: queued"

    # control ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._controller is not None

    def start(self) -> None:
        """Start listening (again) on self.port; a fresh Controller each time, as stop() closes its loop."""
        from aiosmtpd.controller import Controller

        if self._controller is not None:
            return
        if not self.port:
            self.port = free_port()  # Controller cannot take port=0: start() connects to itself
        controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
        self.refuse.clear()
        self.defer.clear()
        self.delay = 0.0

    def by_message_id(self) -> dict[str, int]:
        """How many times each Message-ID arrived."""
        counts: dict[str, int] = {}
        with self._lock:
            for received in self.messages:
                key = received.message["Message-ID"]
                counts[key] = counts.get(key, 0) + 1
        return counts


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    """One SMTP sink for the session; tests get it running and should clear() what they leave."""
    sink = SmtpSink()
    try:
        sink.start()
    except ImportError as exc:
        peer_unavailable("smtp", f"aiosmtpd is not installed: {exc}")
    except (OSError, RuntimeError, TimeoutError) as exc:
        peer_unavailable("smtp", f"aiosmtpd could not start: {exc}")
    try:
        yield sink
    finally:
        sink.stop()


SENDER = "IT Helpdesk <helpdesk@example.org>"


def settings_for(sink, **changes):
    from itops.config import SmtpSettings

    values = dict(host=sink.host, port=sink.port, security="none", username=None, password=None,
                  sender=SENDER, timeout=5)
    values.update(changes)
    return SmtpSettings(**values)


@pytest.fixture
def mail(app, smtp_sink):
    """Point the app at the SMTP sink for one test; the sink is running and empty."""
    saved = app.config.get("ITOPS_SMTP")
    smtp_sink.start()
    smtp_sink.clear()
    app.config["ITOPS_SMTP"] = settings_for(smtp_sink)
    yield smtp_sink
    app.config["ITOPS_SMTP"] = saved
    smtp_sink.start()
    smtp_sink.clear()


