"""sip: one SIP OPTIONS request over UDP, as a desk phone's liveness check (RFC 3261).

The request carries what a phone needs to answer it: a Via with a fresh z9hG4bK branch and rport,
Max-Forwards, a From tag, To, Call-ID, CSeq and Content-Length. Over UDP it is retransmitted on
timer T1 (0.5 s, doubling) until the timeout. Only a final response (>= 200) whose Call-ID and
CSeq match counts; provisionals and stray datagrams are skipped.

2xx means up; 5xx and 6xx mean the phone answered but is not well (degraded); any other final
answer (401, 404, 405 ...) still shows a live SIP stack, so it is up with the code in details.
"""

from __future__ import annotations

import secrets
import socket
import time

from itops.monitoring.probes import ProbeResult, ProbeTarget, clip, down, judged, ms_since, port_from

SIP_PORT = 5060
T1 = 0.5
MAX_DATAGRAM = 65_535
CSEQ = 1


def options_request(host: str, port: int, local_host: str, local_port: int, *, call_id: str, branch: str,
                    from_tag: str, user: str = "itops") -> bytes:
    request_uri = f"sip:{_uri_host(host)}:{port}"
    local = f"{_uri_host(local_host)}:{local_port}"
    lines = [
        f"OPTIONS {request_uri} SIP/2.0",
        f"Via: SIP/2.0/UDP {local};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{local}>;tag={from_tag}",
        f"To: <{request_uri}>",
        f"Call-ID: {call_id}",
        f"CSeq: {CSEQ} OPTIONS",
        f"Contact: <sip:{user}@{local}>",
        "Accept: application/sdp",
        "User-Agent: itops-monitor",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response(data: bytes) -> tuple[int, str, dict[str, str]] | None:
    """(status code, reason, lower-cased headers) of a SIP response, or None if it is not one."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", errors="replace")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or parts[0] != "SIP/2.0" or not parts[1].isdigit() or len(parts[1]) != 3:
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(_COMPACT.get(name.strip().lower(), name.strip().lower()), value.strip())
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


# RFC 3261 compact header forms that matter for matching a response
_COMPACT = {"i": "call-id", "v": "via", "f": "from", "t": "to", "l": "content-length"}


def probe(target: ProbeTarget, params: dict, timeout: float) -> ProbeResult:
    port = port_from(target, params, default=SIP_PORT)
    try:
        family, _, _, _, address = socket.getaddrinfo(target.host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as exc:
        return down(f"cannot resolve {target.host}: {exc.strerror}")
    call_id = secrets.token_hex(16)
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)  # a connected UDP socket reports ICMP port-unreachable as refused
        except OSError as exc:
            return down(f"cannot reach {target.host}: {exc.strerror or exc}")
        local_host, local_port = sock.getsockname()[:2]
        request = options_request(target.host, port, local_host, local_port, call_id=call_id,
                                  branch="z9hG4bK" + secrets.token_hex(8), from_tag=secrets.token_hex(6))
        return _exchange(sock, request, call_id, timeout)


def _exchange(sock: socket.socket, request: bytes, call_id: str, timeout: float) -> ProbeResult:
    started = time.perf_counter()
    deadline = started + timeout
    next_send, interval = started, T1
    garbage = None
    while True:
        now = time.perf_counter()
        if now >= deadline:
            if garbage is not None:
                return down("the device answered, but not with a SIP response to our OPTIONS",
                            output=clip(garbage.decode("utf-8", errors="replace"), 2000))
            return down(f"no SIP answer within {timeout:g} s")
        if now >= next_send:
            try:
                sock.send(request)
            except ConnectionRefusedError:
                return down("SIP port closed (ICMP port unreachable)")
            next_send, interval = now + interval, interval * 2
        sock.settimeout(max(0.001, min(next_send, deadline) - now))
        try:
            data = sock.recv(MAX_DATAGRAM)
        except TimeoutError:
            continue
        except ConnectionRefusedError:
            return down("SIP port closed (ICMP port unreachable)")
        rtt_ms = ms_since(started)
        response = parse_response(data)
        if response is None:
            garbage = data
            continue
        code, reason, headers = response
        if headers.get("call-id") != call_id or not headers.get("cseq", "").upper().startswith(f"{CSEQ} OPTIONS") \
                or code < 200:
            continue
        return _judge(code, reason, headers, rtt_ms, data)


def _judge(code: int, reason: str, headers: dict[str, str], rtt_ms: float, data: bytes) -> ProbeResult:
    details = {"status_code": code, "reason": reason, "user_agent": headers.get("user-agent") or headers.get("server"),
               "allow": headers.get("allow")}
    problems = [f"SIP {code} {reason}".strip()] if code >= 500 else []
    output = clip(data.decode("utf-8", errors="replace"), 2000)
    return judged(rtt_ms, {"rtt_ms": rtt_ms, "status_code": float(code)}, details, output, problems)


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
