"""/api/v1/assets: list, create, read, update, retire, checkout, checkin, history; roles and ownership."""
import pytest
from openapi_spec_validator import validate

from itops.assets.models import Asset
from itops.core.policy import Role
from itops.extensions import db


def test_create_read_update_and_history(api_as):
    it, _ = api_as(Role.IT_STAFF)
    created = it.post("/api/v1/assets", json={"kind": "mobile_phone", "name": "Pixel 8", "imei": "490154203237518",
                                              "phone_number": "+49 151 1234 5678", "cost": "799.00"})
    assert created.status_code == 201, created.json
    asset = created.json
    assert asset["tag"].startswith("IT-") and asset["imei"] == "490154203237518" and asset["cost"] == "799.00"
    assert asset["allowed_next_statuses"] == ["deployed", "in_repair", "retired"]
    patched = it.patch(f"/api/v1/assets/{asset['id']}", json={"location": "Berlin HQ", "carrier": "O2"})
    assert patched.status_code == 200 and patched.json["location"] == "Berlin HQ"
    assert it.get(f"/api/v1/assets/{asset['id']}").json["carrier"] == "O2"
    history = it.get(f"/api/v1/assets/{asset['id']}/history").json
    assert [e["kind"] for e in history] == ["edited", "created"]
    assert history[0]["details"] == {"carrier": [None, "O2"], "location": [None, "Berlin HQ"]}


def test_checkout_checkin_retire(api_as, make_user):
    it, _ = api_as(Role.IT_STAFF)
    employee = make_user(Role.EMPLOYEE)
    asset_id = it.post("/api/v1/assets", json={"kind": "laptop", "name": "lap"}).json["id"]
    out = it.post(f"/api/v1/assets/{asset_id}/checkout", json={"holder": employee.username})
    assert out.status_code == 200 and out.json["holder"]["username"] == employee.username
    assert out.json["status"] == "deployed"
    refused = it.post(f"/api/v1/assets/{asset_id}/retire", json={})
    assert refused.status_code == 409 and "check it in first" in refused.json["detail"]
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert it.post(f"/api/v1/assets/{asset_id}/checkin", json={}).json["status"] == "in_stock"
    retired = it.post(f"/api/v1/assets/{asset_id}/retire", json={"note": "broken hinge"})
    assert retired.status_code == 200 and retired.json["status"] == "retired"
    kinds = [e["kind"] for e in it.get(f"/api/v1/assets/{asset_id}/history").json]
    assert kinds == ["status", "checkin", "checkout", "created"]


def test_list_filters_and_cursor(api_as, make_asset):
    it, _ = api_as(Role.IT_STAFF)
    for i in range(5):
        make_asset("laptop", name=f"lap{i}", location="Berlin" if i % 2 else "Paris")
    make_asset("printer", name="printer")
    first = it.get("/api/v1/assets?kind=laptop&sort=name&limit=2").json
    assert [a["name"] for a in first["items"]] == ["lap0", "lap1"] and first["next_cursor"]
    second = it.get(f"/api/v1/assets?kind=laptop&sort=name&limit=2&cursor={first['next_cursor']}").json
    assert [a["name"] for a in second["items"]] == ["lap2", "lap3"]
    berlin = it.get("/api/v1/assets?location=Berlin").json["items"]
    assert sorted(a["name"] for a in berlin) == ["lap1", "lap3"]
    assert it.get("/api/v1/assets?kind=spaceship").status_code == 422
    assert it.get("/api/v1/assets?cursor=garbage").status_code == 422


def test_list_items_are_what_the_asset_schema_dumps(api_as, make_user, make_asset):
    """The list dumps light rows with its own dumper; it must give what AssetSchema gives for the asset."""
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from itops.assets.schemas import AssetSchema
    it, _ = api_as(Role.IT_STAFF)
    assets = [make_asset(kind, **values) for kind, values in [
        ("mobile_phone", {"imei": "490154203237518", "phone_number": "+491511234567", "cost": Decimal("799.5"),
                          "purchase_date": date(2024, 2, 29), "warranty_end": date(2026, 2, 28)}),
        ("switch", {"management_address": "10.0.0.1", "device_type": "cisco_ios", "notes": "<core>"}),
        ("laptop", {"serial": "SN-1", "mac": "00:1a:2b:3c:4d:5e"}),
    ]]
    assets[2].last_seen_at, assets[2].last_user = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "eve"
    db.session.commit()
    make_asset("printer", holder=make_user(Role.EMPLOYEE, display_name="Pat Printer"))
    items = it.get("/api/v1/assets?limit=200").json["items"]
    expected = AssetSchema().dump(db.session.scalars(db.select(Asset).order_by(Asset.tag)), many=True)
    assert items == expected and items[-1]["holder"]["display_name"] == "Pat Printer"


@pytest.mark.parametrize("body, field", [
    ({"kind": "mobile_phone", "name": "x", "imei": "490154203237519"}, "imei"),
    ({"kind": "laptop", "name": "x", "purchase_date": "yesterday"}, "purchase_date"),
    ({"kind": "spaceship", "name": "x"}, "kind"),
    ({"kind": "laptop"}, "name"),
    ({"kind": "laptop", "name": "x", "status": "deployed"}, "status"),
    ({"kind": "desk_phone", "name": "x", "mac": "zz:zz"}, "mac"),
    ({"kind": "laptop", "name": "x", "unknown": 1}, "unknown"),
])
def test_invalid_input_is_422_naming_the_field(api_as, body, field):
    it, _ = api_as(Role.IT_STAFF)
    response = it.post("/api/v1/assets", json=body)
    assert response.status_code == 422
    assert field in str(response.json["errors"])
    assert db.session.query(Asset).count() == 0


def test_kind_specific_field_on_the_wrong_kind_is_422(api_as):
    it, _ = api_as(Role.IT_STAFF)
    response = it.post("/api/v1/assets", json={"kind": "printer", "name": "p", "imei": "490154203237518"})
    assert response.status_code == 422 and "imei" in response.json["errors"]


def test_employee_reads_only_their_own_and_cannot_write(api_as, make_user, make_asset):
    employee_client, employee = api_as(Role.EMPLOYEE)
    mine = make_asset("laptop", name="mine", holder=employee)
    theirs = make_asset("laptop", name="theirs", holder=make_user())
    listed = employee_client.get("/api/v1/assets").json["items"]
    assert [a["name"] for a in listed] == ["mine"]
    assert employee_client.get(f"/api/v1/assets/{mine.id}").status_code == 200
    assert employee_client.get(f"/api/v1/assets/{theirs.id}").status_code == 404
    assert employee_client.get(f"/api/v1/assets/{theirs.id}/history").status_code == 404
    assert employee_client.patch(f"/api/v1/assets/{mine.id}", json={"name": "stolen"}).status_code == 403
    assert employee_client.post("/api/v1/assets", json={"kind": "laptop", "name": "x"}).status_code == 403
    assert employee_client.post(f"/api/v1/assets/{mine.id}/checkin", json={}).status_code == 403
    db.session.refresh(mine)
    assert mine.name == "mine" and mine.holder_id == employee.id


def test_hr_cannot_use_the_assets_api(api_as):
    hr, _ = api_as(Role.HR)
    assert hr.get("/api/v1/assets").status_code == 403


def test_unknown_asset_is_404_problem(api_as):
    it, _ = api_as(Role.IT_STAFF)
    response = it.get("/api/v1/assets/424242")
    assert response.status_code == 404 and response.json["detail"] == "No such asset."


def test_openapi_document_describes_the_assets_and_agent_api(client):
    document = client.get("/api/v1/openapi.json").json
    validate(document)
    for path in ("/api/v1/assets", "/api/v1/assets/{asset_id}", "/api/v1/assets/{asset_id}/checkout",
                 "/api/v1/assets/{asset_id}/history", "/api/v1/agent/enroll", "/api/v1/agent/inventory"):
        assert path in document["paths"], path
