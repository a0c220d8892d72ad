"""Managing checks (one asset, many assets, pause, remove), configuration backups of a simulated switch
with the diff view, and a real switch outage through the poll cycle: down after N failures, one ticket,
resolved when it is back; its login never in a page, a log or an incident."""
from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from itops.assets import services as assets_services
from itops.core.database import utcnow
from itops.extensions import db
from itops.monitoring import poll, services
from itops.monitoring.choices import Health
from itops.monitoring.models import AssetHealth, Check, ConfigBackup
from itops.monitoring.probes.ssh_pool import shared_pool
from itops.tickets.models import Ticket
from tests.conftest import csrf_token, sign_in


def checks() -> list[Check]:
    db.session.expire_all()
    return list(db.session.scalars(select(Check).order_by(Check.id)))


@pytest.fixture
def tech(client, make_user):
    user = make_user("it_staff")
    sign_in(client, user)
    return user


def test_it_staff_add_a_check_in_the_browser(client, tech, make_asset):
    switch = make_asset("switch", name="sw-9", management_address="127.0.0.1")
    token = csrf_token(client, f"/monitoring/assets/{switch.id}")
    answer = client.post(f"/monitoring/assets/{switch.id}/checks", data={
        "csrf_token": token, "kind": "tcp", "port": "22", "interval_seconds": "30", "timeout_seconds": "2"})
    assert answer.status_code == 302
    [check] = checks()
    assert (check.kind, check.params, check.interval_seconds, check.timeout_seconds) == ("tcp", {"port": 22}, 30, 2.0)


@pytest.mark.parametrize("form, message", [
    ({"kind": "tcp"}, "A TCP check needs a port."),
    ({"kind": "tcp", "port": "70000"}, "Number must be between 1 and 65535."),
    ({"kind": "tcp", "port": "22", "host": "not a host!"}, "Not an IP address or host name."),
    ({"kind": "tcp", "port": "22", "interval_seconds": "1"}, "Number must be between 5 and 86400."),
    ({"kind": "ssh"}, "An SSH check needs the asset&#39;s device type and a stored login."),
    ({"kind": "snmp"}, "An SNMP v2c check needs a community."),
    ({"kind": "telepathy"}, "Not a valid choice."),
])
def test_bad_checks_are_form_errors_and_write_nothing(client, tech, make_asset, form, message):
    switch = make_asset("switch", name="sw-bad", management_address="127.0.0.1")
    token = csrf_token(client, f"/monitoring/assets/{switch.id}")
    answer = client.post(f"/monitoring/assets/{switch.id}/checks", data={
        "csrf_token": token, "interval_seconds": "60", "timeout_seconds": "5", **form})
    assert answer.status_code == 422
    assert message in answer.get_data(as_text=True)
    assert checks() == []


def test_without_a_csrf_token_nothing_changes(client, tech, make_asset):
    switch = make_asset("switch", name="sw-csrf", management_address="127.0.0.1")
    assert client.post(f"/monitoring/assets/{switch.id}/checks", data={"kind": "tcp", "port": "22"}).status_code == 400
    assert checks() == []


def test_employees_cannot_add_or_change_checks(client, make_user, make_asset):
    switch = make_asset("switch", name="sw-e", management_address="127.0.0.1")
    check = services.add_check(switch.id, "tcp", params={"port": 22}, by="test")
    db.session.commit()
    sign_in(client, make_user("employee"))
    token = csrf_token(client)
    assert client.post(f"/monitoring/assets/{switch.id}/checks",
                       data={"csrf_token": token, "kind": "tcp", "port": "22"}).status_code == 403
    assert client.post(f"/monitoring/checks/{check.id}/pause", data={"csrf_token": token}).status_code == 403
    assert client.get("/monitoring/checks/bulk").status_code == 403


def test_the_snmp_community_is_stored_encrypted_and_never_shown(client, tech, make_asset):
    switch = make_asset("switch", name="sw-snmp", management_address="127.0.0.1")
    services.add_check(switch.id, "snmp", params={"community": "s3cret-community", "port": 1161}, by=tech)
    db.session.commit()
    [check] = checks()
    assert "community" not in check.params and "s3cret-community" not in str(check.params)
    assert services.probe_target(switch, "snmp", check.params).credentials.snmp_community == "s3cret-community"
    assert "s3cret-community" not in client.get(f"/monitoring/assets/{switch.id}").get_data(as_text=True)


def test_a_paused_check_is_not_polled_and_a_removed_one_is_gone(client, tech, make_asset):
    switch = make_asset("switch", name="sw-p", management_address="127.0.0.1")
    check = services.add_check(switch.id, "tcp", params={"port": 9}, by=tech)
    db.session.commit()
    token = csrf_token(client, f"/monitoring/assets/{switch.id}")
    assert client.post(f"/monitoring/checks/{check.id}/pause", data={"csrf_token": token}).status_code == 302
    assert poll.run_cycle()["checks"] == 0
    assert client.post(f"/monitoring/checks/{check.id}/resume", data={"csrf_token": token}).status_code == 302
    assert poll.run_cycle()["checks"] == 1
    db.session.commit()
    assert client.post(f"/monitoring/checks/{check.id}/delete", data={"csrf_token": token}).status_code == 302
    assert checks() == []


def test_one_check_added_to_every_matching_asset_after_a_preview(client, tech, make_asset):
    berlin = [make_asset("switch", name=f"ber-{i}", management_address="127.0.0.1", location="Berlin") for i in range(3)]
    make_asset("switch", name="ham-1", management_address="127.0.0.1", location="Hamburg")
    make_asset("router", name="ber-router", management_address="127.0.0.1", location="Berlin")
    services.add_check(berlin[0].id, "tcp", params={"port": 22}, by=tech)
    db.session.commit()
    token = csrf_token(client, "/monitoring/checks/bulk")
    form = {"csrf_token": token, "asset_kind": "switch", "location": "Berlin", "kind": "tcp", "port": "22",
            "interval_seconds": "60", "timeout_seconds": "3"}
    preview = client.post("/monitoring/checks/bulk", data={**form, "action": "preview"}).get_data(as_text=True)
    assert "Would add the check to 2 assets; 1 already have one" in preview
    assert len(checks()) == 1                                     # a preview writes nothing
    assert client.post("/monitoring/checks/bulk", data={**form, "action": "apply"}).status_code == 302
    assert sorted(c.asset_id for c in checks()) == sorted(a.id for a in berlin)


# --- against simulated Cisco switches -----------------------------------------------------------------

@pytest.fixture
def lab_switch(switch_farm, make_asset):
    farm = switch_farm(1)
    switch = farm.switches[0]
    credential = assets_services.create_credential(f"lab-{switch.port}", switch.username, switch.password,
                                                   enable_secret=switch.enable_secret, by="test")
    asset = make_asset("switch", name=switch.hostname, management_address="127.0.0.1", device_type="cisco_ios",
                       credential_id=credential.id)
    services.add_check(asset.id, "ssh", params={"port": switch.port}, interval_seconds=60, timeout_seconds=10,
                       by="test")
    db.session.commit()
    yield farm, switch, asset
    shared_pool().close_all()


def test_a_killed_switch_goes_down_opens_one_ticket_and_is_resolved_when_back(lab_switch, client, tech, caplog):
    farm, switch, asset = lab_switch
    caplog.set_level(logging.DEBUG)
    now = utcnow()

    def cycle(step: int):
        poll.run_cycle(now=now + timedelta(seconds=61 * step))
        db.session.commit()

    cycle(0)
    assert db.session.get(AssetHealth, asset.id).state == Health.UP
    farm.stop()
    for step in range(1, 4):
        cycle(step)
    db.session.expire_all()
    assert db.session.get(AssetHealth, asset.id).state == Health.DOWN
    [ticket] = db.session.scalars(select(Ticket).where(Ticket.asset_id == asset.id)).all()
    cycle(4)
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    farm.start()
    cycle(5)
    cycle(6)
    db.session.expire_all()
    assert db.session.get(AssetHealth, asset.id).state == Health.UP
    assert db.session.get(Ticket, ticket.id).status == "resolved"

    pages = [client.get(path).get_data(as_text=True) for path in (
        "/monitoring/", f"/monitoring/assets/{asset.id}", f"/tickets/{ticket.id}")]
    texts = pages + [caplog.text, ticket.body] + [c.last_output or "" for c in checks()]
    for secret in (switch.password, switch.enable_secret):
        assert not any(secret in text for text in texts)


def test_configuration_is_saved_when_it_changes_with_a_diff_view(lab_switch, client, tech):
    farm, switch, asset = lab_switch
    assert services.backup_configs() == {"devices": 1, "changed": 1, "unchanged": 0, "failed": 0}
    assert services.backup_configs()["unchanged"] == 1
    db.session.commit()
    target = services.probe_target(asset, "ssh", {"port": switch.port})
    shared_pool().run(target, "cisco_ios", lambda session, deadline: session.connection.send_config_set(
        ["interface FastEthernet0/3", "description uplink to core", "exit", "exit"], exit_config_mode=False), 10)
    assert services.backup_configs(now=utcnow() + timedelta(minutes=1))["changed"] == 1
    db.session.commit()
    versions = services.config_versions(asset.id)
    assert len(versions) == 2 and db.session.scalar(select(func.count()).select_from(ConfigBackup)) == 2
    page = client.get(f"/monitoring/assets/{asset.id}/config/{versions[0].id}").get_data(as_text=True)
    assert '<span class="diff-add">+ description uplink to core</span>' in page
    assert switch.password not in page and switch.enable_secret not in page
    device = client.get(f"/monitoring/assets/{asset.id}").get_data(as_text=True)
    assert "Configuration versions" in device and "2 versions" in device
    assert client.get(f"/monitoring/assets/{asset.id}/config/999999").status_code == 404


def test_an_unreachable_device_is_counted_not_fatal(lab_switch):
    farm, _, _ = lab_switch
    farm.stop()
    assert services.backup_configs()["failed"] == 1
