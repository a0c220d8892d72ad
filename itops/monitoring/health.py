"""How a poll changes an asset's health: damping, flapping, maintenance and parents. No I/O here.

- Going down takes `down_after` consecutive failed polls; coming back takes `up_after` good ones.
  Between up and degraded there is no damping: both mean "it answers".
- A device whose parent (the switch it hangs off) is down is unreachable, not down, and opens no
  incident of its own; an outage of the parent is one incident, not one per device behind it.
- Inside a maintenance window the state is "maintenance": no changes, no incidents.
- `flap_changes` state changes within `flap_window` mark the device flapping: its incident stays open
  through the short recoveries and is resolved once it is stable. A device that goes down again within
  `flap_window` of its incident being resolved reopens that incident: a flapping device never opens a
  second ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from itops.monitoring.choices import Health

ANSWERING = (Health.UP, Health.DEGRADED)
OUT = (Health.DOWN, Health.UNREACHABLE)


@dataclass(frozen=True)
class Damping:
    down_after: int = 3
    up_after: int = 2
    flap_changes: int = 4
    flap_window: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class HealthBefore:
    state: Health
    failures: int
    successes: int
    recent_changes: tuple[datetime, ...]
    incident_open: bool
    incident_resolved_at: datetime | None = None   # when the last incident was resolved


@dataclass(frozen=True)
class HealthAfter:
    state: Health
    failures: int
    successes: int
    recent_changes: tuple[datetime, ...]
    flapping: bool
    changed: bool
    open_incident: bool       # open a new one now
    reopen_incident: bool     # reopen the last one (resolved within the flap window)
    resolve_incident: bool    # resolve the open one now


def poll_outcome(statuses: list[str]) -> Health:
    """One poll of an asset from its checks' answers: down when none answered, degraded when some
    did not or reported trouble, up when all are fine."""
    if not statuses or all(status == "down" for status in statuses):
        return Health.DOWN
    if any(status != "up" for status in statuses):
        return Health.DEGRADED
    return Health.UP


def next_health(before: HealthBefore, outcome: Health, *, now: datetime, parent_out: bool = False,
                in_maintenance: bool = False, damping: Damping = Damping()) -> HealthAfter:
    failed = outcome is Health.DOWN
    failures = before.failures + 1 if failed else 0
    successes = 0 if failed else before.successes + 1

    if in_maintenance:
        state = Health.MAINTENANCE
    elif failed:
        confirmed = failures >= damping.down_after or before.state in OUT
        if confirmed:
            state = Health.UNREACHABLE if parent_out else Health.DOWN
        else:
            state = before.state if before.state is not Health.MAINTENANCE else Health.UNKNOWN
    elif before.state in OUT and successes < damping.up_after:
        state = before.state   # not back until it has answered `up_after` times in a row
    else:
        state = outcome

    changed = state is not before.state
    window_start = now - damping.flap_window
    recent = tuple(t for t in before.recent_changes if t >= window_start) + ((now,) if changed else ())
    flapping = len(recent) >= damping.flap_changes

    needs_incident = state is Health.DOWN and not before.incident_open
    recently_resolved = (before.incident_resolved_at is not None
                         and before.incident_resolved_at >= window_start)
    # Resolved once it answers and is stable; a flapping device keeps its one incident open meanwhile.
    resolve_incident = before.incident_open and state in ANSWERING and not flapping
    return HealthAfter(state, failures, successes, recent, flapping, changed,
                       open_incident=needs_incident and not recently_resolved,
                       reopen_incident=needs_incident and recently_resolved, resolve_incident=resolve_incident)


def in_window(now: datetime, *, starts_at=None, ends_at=None, weekday=None, start_minute=None,
              duration_minutes=None) -> bool:
    """Whether `now` (UTC) falls inside a one-off (starts_at..ends_at) or weekly maintenance window."""
    if starts_at is not None and ends_at is not None:
        return starts_at <= now < ends_at
    if weekday is None or start_minute is None or not duration_minutes:
        return False
    # The weekly window may run past midnight into the next day(s): look at this week's and last week's start.
    week_start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    for weeks_back in (0, 1):
        start = week_start - timedelta(weeks=weeks_back) + timedelta(days=weekday, minutes=start_minute)
        if start <= now < start + timedelta(minutes=duration_minutes):
            return True
    return False
