"""SNMP v2c on the wire: GET and GETBULK requests and their responses, BER-encoded by hand.

pysnmp builds and decodes every message through pyasn1 objects and the layers of its engine: for a
poll of a few dozen varbinds that cost ~12 ms of CPU, which made SNMP most of a poll cycle's CPU.
v2c needs none of it: a community string and a PDU of a handful of BER types (RFC 3416). This module
encodes requests and decodes responses in plain Python, on a connected UDP socket, for a small part
of that. SNMPv3, with its security model, stays with pysnmp.

Values come back as Python values: int (INTEGER, Counter32/64, Gauge32, TimeTicks), str (OCTET
STRING, as text or "0x..." hex like pyasn1 prints it; IpAddress dotted), tuple (OBJECT IDENTIFIER),
and None for NULL, noSuchObject, noSuchInstance and endOfMibView.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterable, Sequence

from itops.core.ber import integer, tlv
from itops.monitoring.probes import ProbeError

Oid = tuple[int, ...]

GET, GETBULK, RESPONSE = 0xA0, 0xA5, 0xA2
_INTEGER, _OCTETS, _NULL, _OID, _SEQUENCE = 0x02, 0x04, 0x05, 0x06, 0x30
_IP_ADDRESS, _OPAQUE = 0x40, 0x44
_UNSIGNED = {0x41, 0x42, 0x43, 0x46, 0x47}  # Counter32, Gauge32, TimeTicks, Counter64, UInteger32
ERROR_NAMES = ("noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess", "wrongType",
               "wrongLength", "wrongEncoding", "wrongValue", "noCreation", "inconsistentValue",
               "resourceUnavailable", "commitFailed", "undoFailed", "authorizationError", "notWritable",
               "inconsistentName")
NO_ANSWER = "no SNMP answer (agent down, wrong community or v3 user, or filtered)"
MAX_DATAGRAM = 65_535


class WireError(ValueError):
    """Bytes that are not a well-formed SNMP v2c message."""


# --- encoding --------------------------------------------------------------------------------------

def oid_of(oid: str | Sequence[int]) -> Oid:
    return tuple(int(arc) for arc in oid.strip(".").split(".")) if isinstance(oid, str) else tuple(oid)


def _encode_oid(oid: Oid) -> bytes:
    if len(oid) < 2:
        raise WireError(f"an OID has at least two arcs: {oid}")
    body = bytearray()
    for arc in (oid[0] * 40 + oid[1], *oid[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(_OID, bytes(body))


def encode_request(community: bytes, pdu_type: int, request_id: int, oids: Iterable[Oid],
                   non_repeaters: int = 0, max_repetitions: int = 0) -> bytes:
    """A v2c GET (error status and index 0) or GETBULK (non-repeaters, max-repetitions) message."""
    varbinds = b"".join(tlv(_SEQUENCE, _encode_oid(oid) + b"\x05\x00") for oid in oids)
    pdu = tlv(pdu_type, integer(request_id) + integer(non_repeaters) + integer(max_repetitions)
              + tlv(_SEQUENCE, varbinds))
    return tlv(_SEQUENCE, integer(1) + tlv(_OCTETS, community) + pdu)


# --- decoding --------------------------------------------------------------------------------------

def _header(data: bytes, position: int, end: int) -> tuple[int, int, int]:
    """(tag, start of the contents, end of the contents) of the TLV at `position`."""
    if position + 2 > end:
        raise WireError("truncated")
    tag, size = data[position], data[position + 1]
    position += 2
    if size & 0x80:
        count = size & 0x7F
        if not 0 < count <= 4 or position + count > end:
            raise WireError("bad length")
        size = int.from_bytes(data[position:position + count], "big")
        position += count
    if position + size > end:
        raise WireError("truncated")
    return tag, position, position + size


def _expect(data: bytes, position: int, end: int, tag: int) -> tuple[int, int]:
    found, start, stop = _header(data, position, end)
    if found != tag:
        raise WireError(f"expected tag {tag:#x}, found {found:#x}")
    return start, stop


def _decode_oid(body: bytes) -> Oid:
    arcs, value = [], 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise WireError("empty OID")
    first = arcs[0]
    return (min(first // 40, 2), first - 40 * min(first // 40, 2), *arcs[1:])


def octets_text(octets: bytes) -> str:
    """An OCTET STRING as pyasn1 prints it: the text, or 0x and hex when it holds control characters."""
    if any(byte < 32 and byte not in (9, 10, 13) for byte in octets):
        return "0x" + octets.hex()
    try:
        return octets.decode("utf-8")
    except UnicodeDecodeError:
        return octets.decode("latin-1")


def _value(tag: int, body: bytes):
    if tag == _INTEGER:
        return int.from_bytes(body, "big", signed=True)
    if tag in _UNSIGNED:
        return int.from_bytes(body, "big")
    if tag == _OCTETS:
        return octets_text(body)
    if tag == _OID:
        return _decode_oid(body)
    if tag == _IP_ADDRESS:
        return ".".join(str(byte) for byte in body)
    if tag == _OPAQUE:
        return "0x" + body.hex()
    return None  # NULL, noSuchObject (0x80), noSuchInstance (0x81), endOfMibView (0x82)


def decode_response(data: bytes) -> tuple[int, int, int, list[tuple[Oid, object]]]:
    """(request id, error status, error index, varbinds) of a v2c Response PDU."""
    start, end = _expect(data, 0, len(data), _SEQUENCE)
    start, stop = _expect(data, start, end, _INTEGER)
    if data[start:stop] != b"\x01":
        raise WireError("not SNMP v2c")
    _, stop = _expect(data, stop, end, _OCTETS)  # the community, echoed
    position, end = _expect(data, stop, end, RESPONSE)
    numbers = []
    for _ in range(3):
        start, position = _expect(data, position, end, _INTEGER)
        numbers.append(int.from_bytes(data[start:position], "big", signed=True))
    position, end = _expect(data, position, end, _SEQUENCE)
    varbinds = []
    while position < end:
        start, position = _expect(data, position, end, _SEQUENCE)
        oid_start, oid_end = _expect(data, start, position, _OID)
        tag, value_start, value_end = _header(data, oid_end, position)
        varbinds.append((_decode_oid(data[oid_start:oid_end]), _value(tag, data[value_start:value_end])))
    return numbers[0], numbers[1], numbers[2], varbinds


# --- the client ------------------------------------------------------------------------------------

class V2cClient:
    """Requests to one agent over a connected UDP socket: each tried `retries` + 1 times, `attempt_timeout`
    apart, never past `deadline` (a time.monotonic() value; TimeoutError once it has passed)."""

    def __init__(self, host: str, port: int, community: str, *, attempt_timeout: float, retries: int,
                 deadline: float):
        try:
            family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        except (socket.gaierror, UnicodeError) as exc:
            raise ProbeError(f"cannot resolve {host}") from exc
        self.community = community.encode()
        self.attempt_timeout, self.retries, self.deadline = attempt_timeout, retries, deadline
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.connect(address)
        except OSError as exc:
            self.sock.close()
            raise ProbeError(f"cannot reach {host}: {exc.strerror or exc}") from exc

    def get(self, oids: list[str]) -> dict[str, object]:
        """OID (dotted) -> value, for the OIDs the agent has."""
        binds = self.request(GET, [oid_of(oid) for oid in oids])
        return {".".join(map(str, oid)): value for oid, value in binds if value is not None}

    def bulk(self, oids: list[Oid], repetitions: int) -> list[tuple[Oid, object]]:
        return self.request(GETBULK, [oid_of(oid) for oid in oids], 0, repetitions)

    def request(self, pdu_type: int, oids: list[Oid], non_repeaters: int = 0,
                max_repetitions: int = 0) -> list[tuple[Oid, object]]:
        request_id = secrets.randbelow(0x7FFFFFFE) + 1
        message = encode_request(self.community, pdu_type, request_id, oids, non_repeaters, max_repetitions)
        for _attempt in range(self.retries + 1):
            if time.monotonic() >= self.deadline:
                raise TimeoutError
            try:
                self.sock.send(message)
                answer = self._receive(request_id, min(time.monotonic() + self.attempt_timeout, self.deadline))
            except ConnectionRefusedError:  # ICMP port unreachable: nothing listens there
                raise ProbeError(NO_ANSWER) from None
            if answer is not None:
                error_status, error_index, varbinds = answer
                if error_status:
                    name = ERROR_NAMES[error_status] if error_status < len(ERROR_NAMES) else f"error {error_status}"
                    where = f" at {'.'.join(map(str, oids[error_index - 1]))}" if 0 < error_index <= len(oids) else ""
                    raise ProbeError(f"the SNMP agent answered {name}{where}")
                return varbinds
        if time.monotonic() >= self.deadline:
            raise TimeoutError
        raise ProbeError(NO_ANSWER)

    def _receive(self, request_id: int, until: float):
        """(error status, error index, varbinds) of the response to `request_id`; None if none came in time.
        Answers to another request id (a late one to an earlier try) are skipped."""
        while (remaining := until - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                return None
            try:
                answered_id, error_status, error_index, varbinds = decode_response(data)
            except (WireError, IndexError) as exc:
                raise ProbeError("the agent answered something that is not an SNMP v2c response") from exc
            if answered_id == request_id:
                return error_status, error_index, varbinds
        return None

    def close(self) -> None:
        self.sock.close()
