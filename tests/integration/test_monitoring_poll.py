"""Poll cycles against real TCP listeners on loopback: samples, health with damping, parents,
maintenance, the agent heartbeat, and incident tickets (one per outage, resolved on recovery, reopened
when a device falls over again at once, the team mailed)."""
from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itops.core.database import utcnow
from itops.core.outbox import OutboxMessage
from itops.extensions import db
from itops.monitoring import poll, services
from itops.monitoring.choices import Health
from itops.monitoring.models import AssetHealth, Check, PollCycle, Sample
from itops.tickets.models import Ticket, TicketComment


class Listener:
    """A TCP port on 127.0.0.1 that can be opened and closed again on the same port number."""

    def __init__(self):
        self.sock = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.open()

    def open(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(16)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@pytest.fixture
def listener():
    port = Listener()
    yield port
    port.close()


class Clock:
    """Poll cycles one interval apart, as the scheduler would run them."""

    def __init__(self):
        self.now = None

    def cycle(self, times: int = 1) -> dict:
        self.now = self.now or utcnow()   # the first cycle runs now: whatever the test set up is due
        result = {}
        for _ in range(times):
            result = poll.run_cycle(now=self.now)
            db.session.commit()
            self.now += timedelta(seconds=61)
        return result


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def device(make_asset, make_user):
    admin = make_user("admin")

    def make(listener_port: int, *, name: str = "core-sw1", kind: str = "switch"):
        # Network gear is reached at its management address; a desk phone at the host given to its check.
        address = {"management_address": "127.0.0.1"} if kind == "switch" else {}
        asset = make_asset(kind, name=name, **address)
        services.add_check(asset.id, "tcp", params={"port": listener_port, "host": "127.0.0.1"}, interval_seconds=60,
                           timeout_seconds=1, by=admin)
        db.session.commit()
        return asset

    return make


def health(asset) -> AssetHealth:
    db.session.expire_all()
    return db.session.get(AssetHealth, asset.id)


def incidents(asset) -> list[Ticket]:
    return list(db.session.scalars(select(Ticket).where(Ticket.asset_id == asset.id, Ticket.source == "monitoring")))


def test_an_answering_device_is_up_and_every_poll_is_a_sample(device, listener, clock):
    asset = device(listener.port)
    assert health(asset).state == Health.UNKNOWN
    result = clock.cycle()
    assert result["checks"] == 1 and result["down"] == 0
    assert health(asset).state == Health.UP
    clock.cycle(2)
    samples = list(db.session.scalars(select(Sample).order_by(Sample.at)))
    assert [s.status for s in samples] == [0, 0, 0] and all(s.latency_ms is not None for s in samples)
    check = db.session.scalar(select(Check))
    assert check.last_status == "up" and check.next_due_at > utcnow()
    assert db.session.scalar(select(func.count()).select_from(PollCycle)) == 3


def test_nothing_is_polled_before_it_is_due(device, listener, clock):
    device(listener.port)
    clock.cycle()
    assert poll.run_cycle(now=clock.now - timedelta(seconds=30))["checks"] == 0


def test_down_after_three_failures_opens_one_incident_and_recovery_resolves_it(device, listener, clock):
    asset = device(listener.port)
    clock.cycle()
    listener.close()
    clock.cycle(2)
    assert health(asset).state == Health.UP and incidents(asset) == []       # damped: two failures are not enough
    clock.cycle()
    assert health(asset).state == Health.DOWN
    [ticket] = incidents(asset)
    assert ticket.is_open and ticket.priority == "critical" and ticket.dedup_key.startswith("monitoring:asset:")
    assert "is down" in ticket.title and "Monitoring marked" in ticket.body
    clock.cycle(3)
    assert len(incidents(asset)) == 1                                          # further failures add nothing

    listener.open()
    clock.cycle()
    assert health(asset).state == Health.DOWN                                  # one answer is not enough
    clock.cycle()
    assert health(asset).state == Health.UP
    db.session.refresh(ticket)
    assert ticket.status == "resolved"
    notes = db.session.scalars(select(TicketComment.body).where(TicketComment.ticket_id == ticket.id))
    assert any("Recovered at" in body for body in notes)


def test_falling_over_again_soon_after_reopens_the_same_incident(device, listener, clock):
    asset = device(listener.port)
    clock.cycle()
    for _ in range(3):
        listener.close()
        clock.cycle(3)
        listener.open()
        clock.cycle(2)
    listener.close()
    clock.cycle(3)
    [ticket] = incidents(asset)                     # one ticket for the whole flapping episode
    assert ticket.is_open
    assert health(asset).flapping


def test_behind_a_down_parent_a_device_is_unreachable_with_no_ticket_of_its_own(device, make_user, clock):
    switch_port, phone_port = Listener(), Listener()
    try:
        switch = device(switch_port.port, name="access-sw")
        phone = device(phone_port.port, name="desk-phone", kind="desk_phone")
        services.set_parent(phone.id, switch.id, by=make_user("admin"))
        db.session.commit()
        clock.cycle()
        switch_port.close()
        phone_port.close()
        clock.cycle(3)
        assert health(switch).state == Health.DOWN and health(phone).state == Health.UNREACHABLE
        assert len(incidents(switch)) == 1 and incidents(phone) == []
    finally:
        switch_port.close()
        phone_port.close()


def test_a_parent_loop_is_refused(device, listener, make_user):
    admin = make_user("admin")
    first, second = device(listener.port, name="a"), device(listener.port, name="b")
    services.set_parent(first.id, second.id, by=admin)
    from itops.core.errors import ValidationFailed
    with pytest.raises(ValidationFailed, match="loop"):
        services.set_parent(second.id, first.id, by=admin)


def test_a_maintenance_window_suppresses_state_changes_and_tickets(device, listener, clock, make_user):
    asset = device(listener.port)
    clock.cycle()
    services.add_maintenance(asset.id, "firmware upgrade", starts_at=clock.now - timedelta(seconds=1),
                             ends_at=clock.now + timedelta(hours=1),
                             by=make_user("admin"))
    db.session.commit()
    listener.close()
    clock.cycle(5)
    assert health(asset).state == Health.MAINTENANCE and incidents(asset) == []


def test_a_stale_agent_is_down(make_asset, make_user, clock):
    admin = make_user("admin")
    laptop = make_asset("laptop", name="pc-1")
    laptop.last_seen_at = utcnow() - timedelta(hours=5)
    services.add_check(laptop.id, "agent", params={"stale_seconds": 3600}, interval_seconds=60, timeout_seconds=1,
                       by=admin)
    db.session.commit()
    clock.cycle(3)
    assert health(laptop).state == Health.DOWN
    check = db.session.scalar(select(Check))
    assert "last report" in check.last_error


def test_the_incident_team_is_mailed(device, listener, clock, make_user, app):
    from itops.tickets import services as tickets_services

    admin = make_user("admin")
    team = tickets_services.save_team("Network", email="network@example.org", member_ids=[], by=admin)
    tickets_services.save_category("Infrastructure", default_team_id=team.id, default_assignee_id=None, by=admin)
    db.session.commit()
    asset = device(listener.port)
    clock.cycle()
    listener.close()
    clock.cycle(3)
    [ticket] = incidents(asset)
    assert ticket.team_id == team.id
    assert "network@example.org" in {m.to_address for m in db.session.scalars(select(OutboxMessage))}


@pytest.mark.parametrize("values, message", [
    (dict(kind="telepathy"), "Unknown check kind"),
    (dict(kind="tcp", interval_seconds=1), "interval"),
    (dict(kind="tcp", timeout_seconds=90, interval_seconds=60), "timeout"),
])
def test_bad_checks_are_refused(make_asset, make_user, values, message):
    from itops.core.errors import ValidationFailed

    asset = make_asset("switch")
    with pytest.raises(ValidationFailed, match=message):
        services.add_check(asset.id, values.pop("kind"), by=make_user("admin"), **values)
