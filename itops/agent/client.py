"""Talking to the itops server: the two agent endpoints, their refusals, and when to retry.

Every failure becomes one of three errors whose `exit_code` is the status docs/agent-protocol.md
gives for `run --once`: TokenRefused (3), Retryable (4) and ReportRefused (5). Tokens never appear
in messages; token_hint() shows a safe prefix where one is useful.
"""
from __future__ import annotations

import email.utils
import gzip
import http.client
import ipaddress
import json
import random
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Any

from itops.agent.collect import AGENT_VERSION

ENROLL_PATH = "/api/v1/agent/enroll"
INVENTORY_PATH = "/api/v1/agent/inventory"
TIMEOUT = 30
MAX_BODY = 8 * 1024 * 1024
MAX_COMPRESSED = 2 * 1024 * 1024
FIRST_RETRY = 30.0
MAX_RETRY = 3600.0
TOKEN_HINT_CHARS = 12


class PushError(Exception):
    """The server did not take the report; `detail` is the message for the person reading the log."""

    exit_code = 1

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class TokenRefused(PushError):
    """401/403: the token is unknown, revoked or not valid here; retrying cannot help."""

    exit_code = 3


class ReportRefused(PushError):
    """400/413/422: the report itself is wrong or too large; the same report would fail again."""

    exit_code = 5


class Retryable(PushError):
    """Network failure, timeout, 429, 5xx or an unexpected answer: try again later."""

    exit_code = 4

    def __init__(self, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.retry_after = retry_after


def normalize_server(url: str) -> str:
    """The server's base URL without a trailing slash; ValueError unless it is https, or http to
    this machine (plain http elsewhere would send the bearer token in clear text)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the server URL must look like https://itops.example.com, not {url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("the server URL must not carry a query, fragment or credentials")
    _ = parts.port  # raises ValueError for a malformed port
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("plain http is allowed only to this machine (loopback); use https")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_hint(token: str) -> str:
    """Enough of a token to tell which one it is (the prefix names its kind), never the secret."""
    return token[:TOKEN_HINT_CHARS] + "..."


def enroll(server: str, enrollment_token: str, report: dict[str, Any]) -> dict[str, Any]:
    """Enroll this machine; the answer holds its asset id and tag, agent token and report interval."""
    answer = _post(server + ENROLL_PATH, enrollment_token, report)
    if not isinstance(answer.get("agent_token"), str) or "asset_id" not in answer:
        raise Retryable("the server's enrollment answer has no agent token or asset id")
    return answer


def push(server: str, agent_token: str, report: dict[str, Any]) -> dict[str, Any]:
    """Send an inventory report; the answer holds the asset id, change count and report interval."""
    return _post(server + INVENTORY_PATH, agent_token, report)


def encode_report(report: dict[str, Any]) -> bytes:
    """The gzip'd JSON body, or ReportRefused before sending one the server would refuse anyway."""
    raw = json.dumps(report, separators=(",", ":")).encode("utf-8")
    if len(raw) > MAX_BODY:
        raise ReportRefused(f"the report is {len(raw)} bytes; the server takes at most {MAX_BODY}")
    body = gzip.compress(raw)
    if len(body) > MAX_COMPRESSED:
        raise ReportRefused(f"the compressed report is {len(body)} bytes; the server takes at most {MAX_COMPRESSED}")
    return body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would follow a redirect with the Authorization header, possibly to another host, and
    turn the POST into a bodiless GET; a redirect means the configured URL is wrong, so say that."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _post(url: str, token: str, report: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=encode_report(report), method="POST", headers={
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Accept": "application/json",
        "User-Agent": f"itops-agent/{AGENT_VERSION}",
    })
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise _refusal(error) from None
    except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets, bad status lines
        reason = getattr(error, "reason", None) or error
        raise Retryable(f"cannot reach {url}: {reason}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise Retryable(f"{url} answered with something other than a JSON object")
    return answer


def _refusal(error: urllib.error.HTTPError) -> PushError:
    """The typed error for an HTTP error answer, with the problem's detail for the user."""
    status = error.code
    detail = f"HTTP {status}: {problem_detail(error)}"
    if status in (401, 403):
        return TokenRefused(f"the server refused the token ({detail})")
    if status in (400, 413, 422):
        return ReportRefused(f"the server refused the report ({detail})")
    if 300 <= status < 400:
        detail += f" (redirected to {error.headers.get('Location')}; use that URL)"
    retry_after = parse_retry_after(error.headers.get("Retry-After")) if status in (429, 503) else None
    return Retryable(f"the server failed ({detail})", retry_after)


def problem_detail(error: urllib.error.HTTPError) -> str:
    """The 'detail' (and field 'errors') of a problem+json body; else the start of the body or the reason."""
    try:
        body = error.read(64 * 1024)
    except (OSError, http.client.HTTPException):
        body = b""
    try:
        problem = json.loads(body)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return body.decode("utf-8", "replace").strip()[:200] or str(error.reason)
    message = str(problem.get("detail") or problem.get("title") or error.reason)
    fields = _error_lines(problem.get("errors"))
    return f"{message} [{'; '.join(fields)}]" if fields else message


def _error_lines(errors: Any, path: str = "") -> list[str]:
    """Flatten nested field errors ({"disks": {"0": {"total_bytes": ["..."]}}}) to 'disks.0.total_bytes: ...'."""
    if errors is None:
        return []
    if isinstance(errors, dict):
        return [line for key, value in errors.items()
                for line in _error_lines(value, f"{path}.{key}" if path else str(key))]
    if isinstance(errors, list):
        return [line for item in errors for line in _error_lines(item, path)]
    return [f"{path}: {errors}" if path else str(errors)]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delay-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def next_delay(attempt: int, interval: float, retry_after: float | None = None, rng: Any = random) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first).

    Exponential backoff from 30 s, doubling, capped at the report interval and at an hour, with full
    jitter (uniform below the cap) so machines that failed together, e.g. during a server outage, do
    not all come back together. The server's Retry-After is a floor (up to an hour), plus the jitter.
    """
    ceiling = min(FIRST_RETRY * 2 ** min(attempt, 20), interval, MAX_RETRY)
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = min(retry_after + delay, MAX_RETRY)
    return delay
