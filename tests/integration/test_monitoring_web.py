"""Monitoring pages: who may see them, the dashboard and its refreshed body, a device page with its
checks and chart data, the poll cycles, and bad input."""
from __future__ import annotations

import pytest

from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring import poll, services
from tests.conftest import sign_in


@pytest.fixture
def polled(make_asset, make_user):
    """A switch with a TCP check to a closed loopback port, polled until it is down."""
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    switch = make_asset("switch", name="core-sw1", management_address="127.0.0.1", location="HQ")
    check = services.add_check(switch.id, "tcp", params={"port": closed_port}, interval_seconds=60,
                               timeout_seconds=1, by=make_user("admin"))
    db.session.commit()
    from datetime import timedelta
    now = utcnow()
    for step in range(3):
        poll.run_cycle(now=now + timedelta(seconds=61 * step))
        db.session.commit()
    return switch, check


@pytest.mark.parametrize("role", ["employee", "hr"])
@pytest.mark.parametrize("path", ["/monitoring/", "/monitoring/board", "/monitoring/cycles",
                                  "/monitoring/assets/1", "/monitoring/checks/1/series"])
def test_only_it_staff_and_admins_see_monitoring(client, make_user, role, path):
    sign_in(client, make_user(role))
    assert client.get(path).status_code == 403


def test_the_dashboard_lists_down_devices_with_their_incident(client, make_user, polled):
    switch, _ = polled
    sign_in(client, make_user("it_staff"))
    page = client.get("/monitoring/").get_data(as_text=True)
    assert f"{switch.tag} · core-sw1" in page and "health-row-down" in page
    assert 'hx-get="/monitoring/board"' in page and "htmx.min.js" in page
    assert "Down <span class=\"badge text-bg-light\">1</span>" in page
    board = client.get("/monitoring/board")
    assert board.status_code == 200 and "<html" not in board.get_data(as_text=True)
    only_up = client.get("/monitoring/?state=up").get_data(as_text=True)
    assert "core-sw1" not in only_up and "No device in this state." in only_up


def test_the_device_page_shows_checks_errors_and_chart_data(client, make_user, polled):
    switch, check = polled
    sign_in(client, make_user("it_staff"))
    page = client.get(f"/monitoring/assets/{switch.id}").get_data(as_text=True)
    assert "TCP connect" in page and "refused" in page.lower()
    assert f'data-series-url="/monitoring/checks/{check.id}/series"' in page
    data = client.get(f"/monitoring/checks/{check.id}/series?period=1h").get_json()
    assert data["resolution"] == "raw" and len(data["points"]) >= 1
    assert all(point[2] == 0.0 for point in data["points"])


def test_the_poll_cycles_page(client, make_user, polled):
    sign_in(client, make_user("admin"))
    page = client.get("/monitoring/cycles").get_data(as_text=True)
    assert page.count("1 / 1") == 3


@pytest.mark.parametrize("path, status", [
    ("/monitoring/?state=sideways", 422), ("/monitoring/checks/1/series?period=1y", 422),
    ("/monitoring/assets/99999", 404), ("/monitoring/checks/99999/series", 404),
    ("/monitoring/assets/99999999999", 404), ("/monitoring/?cursor=garbage", 422),
])
def test_bad_input_is_a_clear_error(client, make_user, polled, path, status):
    sign_in(client, make_user("it_staff"))
    if "checks/1/" in path:
        path = path.replace("checks/1/", f"checks/{polled[1].id}/")
    assert client.get(path).status_code == status


def test_the_ticket_page_shows_the_linked_devices_health_to_it_staff_only(client, make_user, make_asset):
    from itops.tickets import services as tickets_services

    employee, tech = make_user("employee"), make_user("it_staff")
    phone = make_asset("desk_phone", name="reception-phone", holder=employee)
    services.add_check(phone.id, "tcp", params={"port": 5060, "host": "127.0.0.1"}, by=tech)
    ticket = tickets_services.create_ticket(employee, title="Phone dead", body="No dial tone.", category_id=None,
                                            impact="low", urgency="low", asset_id=phone.id, by=employee)
    db.session.commit()
    sign_in(client, tech)
    staff_page = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "Health" in staff_page and "health-badge health-unknown" in staff_page
    assert f'href="/monitoring/assets/{phone.id}"' in staff_page
    sign_in(client, employee)
    own_page = client.get(f"/tickets/{ticket.id}").get_data(as_text=True)
    assert "reception-phone" in own_page and "health-badge" not in own_page


def test_the_ticket_api_gives_it_staff_the_linked_devices_health(api_as, make_asset):
    from itops.tickets import services as tickets_services

    employee_api, employee = api_as("employee")
    staff_api, tech = api_as("it_staff")
    phone = make_asset("desk_phone", name="desk-7", holder=employee)
    services.add_check(phone.id, "sip", params={"host": "127.0.0.1"}, by=tech)
    ticket = tickets_services.create_ticket(employee, title="Phone reboots", body="Every hour.", category_id=None,
                                            impact="low", urgency="low", asset_id=phone.id, by=employee)
    db.session.commit()
    health = staff_api.get(f"/api/v1/tickets/{ticket.id}").get_json()["asset_health"]
    assert health["state"] == "unknown" and health["flapping"] is False and health["since"]
    own = employee_api.get(f"/api/v1/tickets/{ticket.id}").get_json()
    assert own["asset"]["tag"] == phone.tag and own["asset_health"] is None
