"""The health state machine: damping, parents, maintenance, flapping and when incidents open and close."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from itops.monitoring.choices import Health
from itops.monitoring.health import Damping, HealthBefore, in_window, next_health, poll_outcome

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
DAMPING = Damping(down_after=3, up_after=2, flap_changes=4, flap_window=timedelta(minutes=30))


def run(outcomes, *, start=Health.UP, parent_out=False, maintenance=(), step=timedelta(minutes=1)):
    """Feed polls one by one; returns every HealthAfter, keeping an incident open as the poller would."""
    state, failures, successes, recent, incident, resolved_at = start, 0, 0, (), False, None
    results = []
    for index, outcome in enumerate(outcomes):
        now = T0 + index * step
        after = next_health(HealthBefore(state, failures, successes, recent, incident, resolved_at), outcome, now=now,
                            parent_out=parent_out, in_maintenance=index in maintenance, damping=DAMPING)
        incident = (incident or after.open_incident or after.reopen_incident) and not after.resolve_incident
        resolved_at = now if after.resolve_incident else resolved_at
        state, failures, successes, recent = after.state, after.failures, after.successes, after.recent_changes
        results.append(after)
    return results


U, G, D = Health.UP, Health.DEGRADED, Health.DOWN


@pytest.mark.parametrize("statuses, expected", [
    (["up", "up"], U), (["up", "degraded"], G), (["up", "down"], G), (["down", "down"], D), ([], D), (["down"], D),
])
def test_one_poll_from_its_checks(statuses, expected):
    assert poll_outcome(statuses) is expected


def test_down_only_after_three_failures_and_one_incident():
    results = run([D, D, D, D, D])
    assert [r.state for r in results] == [U, U, D, D, D]
    assert [r.open_incident for r in results] == [False, False, True, False, False]


def test_a_single_failure_changes_nothing():
    results = run([D, U, D, D, U])
    assert all(r.state is U for r in results)
    assert not any(r.open_incident for r in results)


def test_back_up_after_two_successes_resolves_the_incident():
    results = run([D, D, D, U, U, U])
    assert [r.state for r in results] == [U, U, D, D, U, U]
    assert [r.resolve_incident for r in results] == [False] * 4 + [True, False]


def test_degraded_and_up_switch_without_damping():
    assert [r.state for r in run([G, U, G])] == [G, U, G]


def test_behind_a_down_parent_it_is_unreachable_and_opens_nothing():
    results = run([D, D, D, D], parent_out=True)
    assert [r.state for r in results] == [U, U, Health.UNREACHABLE, Health.UNREACHABLE]
    assert not any(r.open_incident for r in results)


def test_maintenance_holds_the_state_and_opens_nothing():
    results = run([D, D, D, D, U, U], maintenance={0, 1, 2, 3})
    assert [r.state for r in results[:4]] == [Health.MAINTENANCE] * 4
    assert not any(r.open_incident for r in results)
    assert results[4].state is U


def test_a_flapping_device_opens_one_incident_and_keeps_it_until_stable():
    # down 3, up 2, down 3 (again immediately: failures continue from a DOWN state), up 2 ...
    pattern = [D, D, D, U, U, D, D, D, U, U, D, D, D, U, U]
    results = run(pattern)
    assert sum(r.open_incident for r in results) == 1       # one ticket ...
    assert sum(r.reopen_incident for r in results) >= 1     # ... reopened when it fell over again
    assert any(r.flapping for r in results)
    assert not any(r.resolve_incident for r in results if r.flapping)
    # Then stable for longer than the window: the one incident is resolved.
    calm = run(pattern + [U] * 40)
    assert sum(r.open_incident for r in calm) == 1
    assert calm[-1].state is U and sum(r.resolve_incident for r in calm[len(pattern):]) == 1
    assert not calm[-1].flapping and calm[-1].state is U


def test_down_again_long_after_the_last_incident_opens_a_new_one():
    results = run([D, D, D, U, U] + [U] * 40 + [D, D, D])
    assert sum(r.open_incident for r in results) == 2 and not any(r.reopen_incident for r in results)


def test_unknown_devices_come_up_on_their_first_answer():
    assert run([U], start=Health.UNKNOWN)[0].state is U
    assert [r.state for r in run([D, D, D], start=Health.UNKNOWN)] == [Health.UNKNOWN, Health.UNKNOWN, D]


def test_weekly_and_one_off_windows():
    monday_2330 = datetime(2026, 11, 23, 23, 30, tzinfo=timezone.utc)
    weekly = dict(weekday=0, start_minute=23 * 60, duration_minutes=120)   # Monday 23:00 for two hours
    assert in_window(monday_2330, **weekly)
    assert in_window(monday_2330 + timedelta(minutes=80), **weekly)          # Tuesday 00:50
    assert not in_window(monday_2330 + timedelta(minutes=95), **weekly)      # Tuesday 01:05
    assert not in_window(monday_2330 - timedelta(days=1), **weekly)
    sunday_late = dict(weekday=6, start_minute=23 * 60, duration_minutes=120)  # Sunday 23:00 into Monday
    assert in_window(datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc), **sunday_late)
    assert in_window(T0, starts_at=T0 - timedelta(hours=1), ends_at=T0 + timedelta(hours=1))
    assert not in_window(T0, starts_at=T0 + timedelta(hours=1), ends_at=T0 + timedelta(hours=2))
