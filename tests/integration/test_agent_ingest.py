"""The agent endpoints: enrollment and matching, token checks, body limits, schema checks, change history."""
import copy
import gzip
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from itops.assets import inventory, services
from itops.assets.models import Asset, AssetEvent, InstalledSoftware
from itops.core.database import utcnow
from itops.core.policy import Role
from itops.extensions import db

BASE_REPORT = {
    "schema": 1, "agent_version": "1.0.0", "collected_at": "2026-11-25T13:00:00+00:00",
    "hostname": "build-07", "fqdn": "build-07.corp.example",
    "os": {"system": "Linux", "name": "Debian GNU/Linux", "version": "12", "kernel": "6.1.0-28-amd64", "arch": "x86_64"},
    "boot_time": "2026-11-20T08:12:00+00:00",
    "hardware": {"manufacturer": "LENOVO", "model": "20XW", "serial": "PF2ABCDE"},
    "cpu": {"model": "Intel(R) Core(TM) i7-1165G7", "cores_physical": 4, "cores_logical": 8, "frequency_mhz": 2800.0},
    "memory": {"total_bytes": 16 * 1024 ** 3},
    "disks": [{"device": "/dev/nvme0n1p2", "mountpoint": "/", "fstype": "ext4", "total_bytes": 500 * 1024 ** 3,
               "used_bytes": 120 * 1024 ** 3}],
    "network": [{"name": "eth0", "mac": "AA:BB:CC:DD:EE:FF", "addresses": ["192.0.2.10", "fe80::1"]}],
    "users": [{"name": "eve", "terminal": "tty2", "host": None, "started": "2026-11-25T08:00:00+00:00"}],
    "last_user": "eve",
    "battery": {"percent": 81.0, "plugged": True, "seconds_left": None},
    "software": {"status": "ok", "manager": "dpkg", "detail": None, "packages": [
        {"name": "bash", "version": "5.2.15-2+b7", "arch": "amd64"},
        {"name": "openssl", "version": "3.0.15-1", "arch": "amd64"},
        {"name": "tzdata", "version": "2024b", "arch": "all"}]},
}


def report(**changes):
    body = copy.deepcopy(BASE_REPORT)
    body.update(changes)
    return body


@pytest.fixture
def enrollment_secret(make_user):
    issued = services.issue_enrollment_token("rollout", by=make_user(Role.IT_STAFF))
    db.session.commit()
    return issued.secret


def push(client, path, secret, body, *, compress=True, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    if compress and raw is None:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    return client.post(f"/api/v1/agent/{path}", data=data, headers=headers)


@pytest.fixture
def enrolled(client, enrollment_secret):
    response = push(client, "enroll", enrollment_secret, report())
    assert response.status_code == 201, response.json
    return response.json


def test_enroll_creates_a_computer_and_returns_its_own_token(client, enrolled):
    asset = db.session.get(Asset, enrolled["asset_id"])
    assert enrolled["agent_token"].startswith("itops_agt_") and enrolled["asset_tag"] == asset.tag
    assert asset.kind == "laptop"  # it has a battery
    assert (asset.name, asset.serial, asset.manufacturer, asset.mac) == ("build-07", "PF2ABCDE", "LENOVO",
                                                                         "aa:bb:cc:dd:ee:ff")
    assert asset.agent_token_hash and enrolled["agent_token"] not in asset.agent_token_hash
    assert asset.facts["memory"]["total_bytes"] == 16 * 1024 ** 3 and asset.last_seen_at is not None
    assert {p.name for p in services.software_of(asset)} == {"bash", "openssl", "tzdata"}
    assert [e.kind for e in services.history(asset)] == ["inventory", "enrolled", "enrolled"]
    assert services.enrollment_tokens()[0].uses == 1


@pytest.mark.parametrize("existing, how", [
    ({"serial": "PF2ABCDE", "name": "old name"}, "serial"),
    ({"mac": "aa:bb:cc:dd:ee:ff", "name": "old name"}, "MAC"),
    ({"name": "BUILD-07"}, "hostname"),
])
def test_enroll_matches_an_existing_asset(client, enrollment_secret, make_asset, existing, how):
    asset = make_asset("desktop", **existing)
    response = push(client, "enroll", enrollment_secret, report())
    assert response.status_code == 201
    assert response.json["asset_id"] == asset.id, how
    assert db.session.query(Asset).count() == 1


def test_serial_match_wins_over_hostname(client, enrollment_secret, make_asset):
    make_asset("desktop", name="build-07")
    by_serial = make_asset("desktop", name="other", serial="PF2ABCDE")
    assert push(client, "enroll", enrollment_secret, report()).json["asset_id"] == by_serial.id


def test_reenrolling_replaces_the_old_agent_token(client, enrollment_secret, enrolled):
    again = push(client, "enroll", enrollment_secret, report())
    assert again.json["asset_id"] == enrolled["asset_id"]
    assert push(client, "inventory", enrolled["agent_token"], report()).status_code == 401
    assert push(client, "inventory", again.json["agent_token"], report()).status_code == 200


@pytest.mark.parametrize("state", ["unknown", "revoked", "expired"])
def test_unusable_enrollment_token_is_401(client, enrollment_secret, state, make_user):
    secret = enrollment_secret
    token = services.enrollment_tokens()[0]
    if state == "unknown":
        secret = "itops_enr_not-a-real-token"
    elif state == "revoked":
        services.revoke_enrollment_token(token.id, by=make_user(Role.IT_STAFF))
    else:
        token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = push(client, "enroll", secret, report())
    assert response.status_code == 401 and "enrollment token" in response.json["detail"]
    assert db.session.query(Asset).count() == 0


def test_agent_tokens_and_personal_tokens_do_not_mix(client, enrolled, enrollment_secret, make_user):
    from itops.core.auth import services as auth_services
    personal = auth_services.issue_token(make_user(Role.IT_STAFF), "me").secret
    db.session.commit()
    assert push(client, "inventory", personal, report()).status_code == 401
    assert push(client, "inventory", enrollment_secret, report()).status_code == 401
    # An agent token opens nothing else in the API.
    response = client.get("/api/v1/assets", headers={"Authorization": f"Bearer {enrolled['agent_token']}"})
    assert response.status_code == 401
    assert client.post("/api/v1/agent/inventory", data=b"{}").status_code == 401


def test_an_agent_token_writes_only_its_own_asset(client, enrollment_secret, enrolled):
    other = push(client, "enroll", enrollment_secret, report(
        hostname="other-host", hardware={"manufacturer": "Dell", "model": "XPS", "serial": "OTHER1"},
        network=[{"name": "eth0", "mac": "11:22:33:44:55:66", "addresses": []}]))
    # The first machine's token, pretending to be the second: the report lands on the first machine.
    response = push(client, "inventory", enrolled["agent_token"], report(hostname="other-host"))
    assert response.json["asset_id"] == enrolled["asset_id"] != other.json["asset_id"]
    assert db.session.get(Asset, other.json["asset_id"]).facts["hostname"] == "other-host"
    assert db.session.get(Asset, other.json["asset_id"]).serial == "OTHER1"


def test_unchanged_report_records_no_event_but_updates_last_seen(client, enrolled):
    asset = db.session.get(Asset, enrolled["asset_id"])
    seen, events = asset.last_seen_at, len(services.history(asset))
    response = push(client, "inventory", enrolled["agent_token"], report(boot_time="2026-11-25T07:00:00+00:00"))
    assert response.status_code == 200 and response.json["changes"] == 0
    db.session.refresh(asset)
    assert len(services.history(asset)) == events and asset.last_seen_at >= seen


def test_changes_become_one_history_event(client, enrolled):
    changed = report(memory={"total_bytes": 32 * 1024 ** 3})
    changed["disks"].append({"device": "/dev/sda1", "mountpoint": "/data", "fstype": "xfs",
                             "total_bytes": 2000 * 1024 ** 3, "used_bytes": 0})
    packages = changed["software"]["packages"]
    packages[0]["version"] = "5.2.37-1"                              # upgraded
    del packages[2]                                                  # removed
    packages.append({"name": "htop", "version": "3.2.2-2", "arch": "amd64"})  # installed
    response = push(client, "inventory", enrolled["agent_token"], changed)
    assert response.status_code == 200 and response.json["changes"] == 5
    asset = db.session.get(Asset, enrolled["asset_id"])
    event = services.history(asset)[0]
    assert event.kind == "inventory" and event.actor_label == "agent"
    assert event.details["changes"] == ["disk added: /data (/dev/sda1, 2000.0 GiB)", "memory 16.0 GiB → 32.0 GiB",
                                        "software installed: 1", "software removed: 1", "software upgraded: 1"]
    assert event.details["upgraded"] == ["bash 5.2.15-2+b7 → 5.2.37-1"]
    assert event.details["installed"] == ["htop 3.2.2-2"] and event.details["removed"] == ["tzdata 2024b"]
    rows = {(p.name, p.version) for p in db.session.scalars(select(InstalledSoftware))}
    assert rows == {("bash", "5.2.37-1"), ("openssl", "3.0.15-1"), ("htop", "3.2.2-2")}
    assert db.session.query(AssetEvent).filter_by(asset_id=asset.id, kind="inventory").count() == 2


def test_last_user_is_matched_and_suggested_as_holder(client, enrolled, make_user, client_as):
    eve = make_user(Role.EMPLOYEE, username="eve", display_name="Eve Employee")
    asset = db.session.get(Asset, enrolled["asset_id"])
    assert services.suggested_holder(asset).id == eve.id
    page = client_as(Role.IT_STAFF).get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "Eve Employee (eve) uses this machine but it has no holder" in page
    assert 'value="eve"' in page  # the checkout form is filled in with her
    services.checkout(asset, eve, by="test")
    assert services.suggested_holder(asset) is None


def test_plain_json_is_accepted_too(client, enrolled):
    assert push(client, "inventory", enrolled["agent_token"], report(), compress=False).status_code == 200


@pytest.mark.parametrize("raw, encoding, status", [
    (b"not json", None, 400),
    (b"[1, 2]", None, 400),
    (b"\x1f\x8b broken gzip", "gzip", 400),
    (gzip.compress(b" " * (9 * 1024 * 1024)), "gzip", 413),   # a small gzip that inflates past the limit
    (b"{}", "br", 400),
])
def test_malformed_or_oversized_bodies(client, enrolled, raw, encoding, status):
    headers = {"Authorization": f"Bearer {enrolled['agent_token']}"}
    if encoding:
        headers["Content-Encoding"] = encoding
    response = client.post("/api/v1/agent/inventory", data=raw, headers=headers)
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == "application/problem+json"


def test_oversized_plain_body_is_413(client, enrolled):
    body = b'{"pad": "' + b"x" * (inventory.MAX_REPORT_BYTES + 10) + b'"}'
    response = push(client, "inventory", enrolled["agent_token"], None, compress=False, raw=body)
    assert response.status_code == 413


@pytest.mark.parametrize("mutate, path", [
    (lambda r: r.pop("hostname"), "hostname"),
    (lambda r: r.update(schema=2), "schema"),
    (lambda r: r.update(extra="x"), "extra"),
    (lambda r: r["memory"].update(total_bytes="16G"), "memory.total_bytes"),
    (lambda r: r["memory"].update(total_bytes=True), "memory.total_bytes"),
    (lambda r: r.update(hostname="h" * 300), "hostname"),
    (lambda r: r.update(collected_at="yesterday"), "collected_at"),
    (lambda r: r["network"][0].update(mac="not-a-mac"), "network[0].mac"),
    (lambda r: r["software"].update(packages=[{"name": "x", "version": "1", "arch": None}] * 20001),
     "software.packages"),
    (lambda r: r["software"]["packages"].append({"name": "x"}), "software.packages[3].version"),
    (lambda r: r.update(disks="all of them"), "disks"),
])
def test_schema_errors_are_422_and_write_nothing(client, enrolled, mutate, path):
    body = report(memory={"total_bytes": 64 * 1024 ** 3})
    mutate(body)
    response = push(client, "inventory", enrolled["agent_token"], body)
    assert response.status_code == 422
    assert path in response.json["errors"], response.json["errors"]
    asset = db.session.get(Asset, enrolled["asset_id"])
    assert asset.facts["memory"]["total_bytes"] == 16 * 1024 ** 3


def test_script_and_sql_in_a_report_are_stored_inertly(client, enrolled, client_as):
    nasty = "<script>alert('x')</script>' OR 1=1; --"
    body = report(hostname=nasty)
    body["software"]["packages"].append({"name": nasty, "version": "1", "arch": "all"})
    assert push(client, "inventory", enrolled["agent_token"], body).status_code == 200
    it = client_as(Role.IT_STAFF)
    page = it.get(f"/assets/{enrolled['asset_id']}").get_data(as_text=True)
    software = it.get(f"/assets/{enrolled['asset_id']}/software").get_data(as_text=True)
    for html in (page, software):
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html
    assert db.session.scalar(select(InstalledSoftware.name).where(InstalledSoftware.name == nasty)) == nasty


def test_serial_reported_by_another_machine_is_not_taken(client, enrolled, make_asset):
    make_asset("desktop", name="elsewhere", serial="DUPLICATE-1")
    body = report(hardware={"manufacturer": "LENOVO", "model": "20XW", "serial": "DUPLICATE-1"})
    assert push(client, "inventory", enrolled["agent_token"], body).status_code == 200
    asset = db.session.get(Asset, enrolled["asset_id"])
    assert asset.serial == "PF2ABCDE"
    assert "reported serial DUPLICATE-1 belongs to" in services.history(asset)[0].summary


def test_reports_that_change_only_volatile_facts_are_written_at_most_once_a_minute(client, enrolled):
    asset = db.session.get(Asset, enrolled["asset_id"])
    busier = report()
    busier["disks"][0]["used_bytes"] = 130 * 1024 ** 3
    assert push(client, "inventory", enrolled["agent_token"], busier).json["changes"] == 0
    db.session.refresh(asset)
    assert asset.facts["disks"][0]["used_bytes"] == 120 * 1024 ** 3  # within the minute: not rewritten
    asset.last_seen_at -= timedelta(minutes=2)
    db.session.commit()
    assert push(client, "inventory", enrolled["agent_token"], busier).status_code == 200
    db.session.refresh(asset)
    assert asset.facts["disks"][0]["used_bytes"] == 130 * 1024 ** 3
    assert utcnow() - asset.last_seen_at < timedelta(seconds=5)
