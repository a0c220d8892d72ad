"""tcp: can a TCP connection be opened to the port, and how long does the handshake take."""

from __future__ import annotations

import socket
import time

from itops.monitoring.probes import ProbeResult, ProbeTarget, down, judged, ms_since, port_from


def probe(target: ProbeTarget, params: dict, timeout: float) -> ProbeResult:
    port = port_from(target, params, default=None)
    started = time.perf_counter()
    try:
        with socket.create_connection((target.host, port), timeout=timeout):
            latency_ms = ms_since(started)
    except socket.gaierror as exc:
        return down(f"cannot resolve {target.host}: {exc.strerror}")
    except TimeoutError:
        return down(f"no answer from port {port} within {timeout:g} s")
    except ConnectionRefusedError:
        return down(f"connection to port {port} refused", latency_ms=ms_since(started))
    except OSError as exc:
        return down(f"cannot connect to port {port}: {exc.strerror or exc}")
    return judged(latency_ms, {"rtt_ms": latency_ms}, {"port": port}, None, [])

