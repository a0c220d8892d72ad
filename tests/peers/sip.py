"""Session fixture `sip_phones`: three UDP SIP user agents on loopback that play desk phones.

- "ok" answers every OPTIONS with 200 OK (as a registered, idle phone does),
- "unavailable" answers 503 Service Unavailable (a phone that is up but out of service),
- "silent" receives and never answers (a phone that has hung).

Each keeps the requests it received, so a test can check what the probe sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.peers import peer_unavailable

ANSWERS = {"ok": "200 OK", "unavailable": "503 Service Unavailable", "silent": None}
ECHOED_HEADERS = ("via", "from", "to", "call-id", "cseq")


@dataclass
class FakePhone:
    mode: str
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[str] = field(default_factory=list)
    _socket: socket.socket | None = None
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, self.port))
        sock.settimeout(0.1)  # lets the loop notice stop()
        self.port = sock.getsockname()[1]
        self._socket = sock
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"sip-{self.mode}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._socket is not None:
            self._socket.close()
        self._socket = self._thread = None

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                data, address = self._socket.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            text = data.decode("utf-8", errors="replace")
            if not text.strip() or text.startswith("SIP/2.0"):
                continue  # keepalives and responses
            self.requests.append(text)
            answer = self.answer(text)
            if answer is not None:
                self._socket.sendto(answer, address)

    def answer(self, request: str) -> bytes | None:
        status = ANSWERS[self.mode]
        if status is None:
            return None
        lines = request.split("\r\n\r\n", 1)[0].split("\r\n")
        if not lines[0].startswith("OPTIONS "):
            status = "501 Not Implemented"
        echoed = [line for line in lines[1:] if line.split(":", 1)[0].strip().lower() in ECHOED_HEADERS]
        echoed = [line + ";tag=fakephone" if line.lower().startswith("to:") and "tag=" not in line else line
                  for line in echoed]
        response = [f"SIP/2.0 {status}", *echoed, "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE",
                    "User-Agent: itops-test-phone", "Content-Length: 0", "", ""]
        return "\r\n".join(response).encode()


@pytest.fixture(scope="session")
def sip_phones() -> Iterator[dict[str, FakePhone]]:
    phones = {mode: FakePhone(mode) for mode in ANSWERS}
    try:
        for phone in phones.values():
            phone.start()
    except OSError as exc:
        peer_unavailable("sip", str(exc))
    try:
        yield phones
    finally:
        for phone in phones.values():
            phone.stop()
