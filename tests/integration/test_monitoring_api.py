"""/api/v1/monitoring: IT staff read health and manage checks; employees and HR are refused; bad input is
a 422 with the field; the SNMP community goes in and never comes out."""
from __future__ import annotations

import pytest

from itops.extensions import db
from itops.monitoring import poll, services


@pytest.fixture
def switch(make_asset):
    return make_asset("switch", name="api-sw", management_address="127.0.0.1")


def test_it_staff_add_list_pause_and_remove_checks(api_as, switch):
    client, _ = api_as("it_staff")
    made = client.post(f"/api/v1/monitoring/assets/{switch.id}/checks", json={
        "kind": "snmp", "params": {"community": "top-secret-c", "port": 1161}, "interval_seconds": 30,
        "timeout_seconds": 2})
    assert made.status_code == 201, made.get_json()
    check = made.get_json()
    assert check["params"] == {"port": 1161} and "top-secret-c" not in made.get_data(as_text=True)
    listed = client.get(f"/api/v1/monitoring/assets/{switch.id}/checks")
    assert [c["id"] for c in listed.get_json()] == [check["id"]] and "top-secret" not in listed.get_data(as_text=True)
    assert client.post(f"/api/v1/monitoring/checks/{check['id']}/pause").get_json()["enabled"] is False
    assert client.post(f"/api/v1/monitoring/checks/{check['id']}/resume").get_json()["enabled"] is True
    assert client.delete(f"/api/v1/monitoring/checks/{check['id']}").status_code == 204
    assert client.get(f"/api/v1/monitoring/assets/{switch.id}/checks").get_json() == []


def test_health_and_series(api_as, switch):
    client, tech = api_as("it_staff")
    check = services.add_check(switch.id, "tcp", params={"port": 9}, timeout_seconds=1, by=tech)
    db.session.commit()
    poll.run_cycle()
    db.session.commit()
    health = client.get("/api/v1/monitoring/health").get_json()
    assert health["items"][0]["asset_id"] == switch.id and health["counts"]["unknown"] == 1
    assert client.get("/api/v1/monitoring/health?state=down").get_json()["items"] == []
    series = client.get(f"/api/v1/monitoring/checks/{check.id}/series?period=1h").get_json()
    assert series["resolution"] == "raw" and len(series["points"]) == 1


@pytest.mark.parametrize("body, field", [
    ({"kind": "tcp"}, "port"),
    ({"kind": "tcp", "params": {"port": 0}}, "params"),
    ({"kind": "tcp", "params": {"port": 22, "password": "x"}}, "params"),
    ({"kind": "telepathy"}, "kind"),
    ({"kind": "tcp", "params": {"port": 22}, "interval_seconds": 2}, "interval_seconds"),
    ({"kind": "snmp", "params": {"community": "c", "oids": {"uptime": "sysUpTime"}}}, "oids"),
])
def test_bad_checks_are_refused_with_the_field(api_as, switch, body, field):
    client, _ = api_as("it_staff")
    answer = client.post(f"/api/v1/monitoring/assets/{switch.id}/checks", json=body)
    assert answer.status_code == 422
    assert field in str(answer.get_json())
    assert client.get(f"/api/v1/monitoring/assets/{switch.id}/checks").get_json() == []


@pytest.mark.parametrize("role", ["employee", "hr"])
def test_other_roles_are_refused(api_as, switch, role):
    client, _ = api_as(role)
    assert client.get("/api/v1/monitoring/health").status_code == 403
    assert client.post(f"/api/v1/monitoring/assets/{switch.id}/checks", json={"kind": "tcp",
                                                                              "params": {"port": 22}}).status_code == 403


def test_unknown_assets_and_checks_are_404(api_as):
    client, _ = api_as("admin")
    assert client.get("/api/v1/monitoring/assets/999999/checks").status_code == 404
    assert client.post("/api/v1/monitoring/checks/999999/pause").status_code == 404
