"""Assets through the browser routes: kinds, lifecycle, checkout history, who may see what, labels."""
import re

import pytest
from sqlalchemy import event, select
from wtforms.fields.core import UnboundField

from itops.assets import services
from itops.assets.forms import CheckinForm, CheckoutForm, StatusForm
from itops.assets.choices import TRANSITIONS, AssetKind, Status
from itops.assets.models import Asset, AssetEvent, DeviceCredential
from itops.core.audit import AuditEntry
from itops.core.policy import Role
from itops.extensions import db
from tests.conftest import csrf_token

VALID_IMEI = "490154203237518"


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/assets/new")})


@pytest.fixture
def it(client_as):
    return client_as(Role.IT_STAFF, display_name="Tess Tech")


KIND_FIELDS = {
    "desktop": {}, "laptop": {"mac": "00-1A-2B-3C-4D-5E"}, "server": {},
    "mobile_phone": {"imei": "49-015420-323751-8", "phone_number": "+49 151 1234 5678", "iccid": "8949 0200 0012 3456 7890",
                     "carrier": "Telekom"},
    "desk_phone": {"mac": "001a.2b3c.4d5f", "extension": "4711"},
    "switch": {"management_address": "127.0.0.1", "device_type": "cisco_ios"},
    "router": {"management_address": "127.0.0.2", "device_type": "juniper_junos"},
    "access_point": {"management_address": "127.0.0.3"}, "printer": {}, "other": {},
}


@pytest.mark.parametrize("kind", [k.value for k in AssetKind])
def test_it_staff_create_each_kind_with_its_fields(it, kind):
    response = post(it, "/assets/new", {"kind": kind, "name": f"my {kind}", "serial": f"SN-{kind}", **KIND_FIELDS[kind]})
    assert response.status_code == 302, response.get_data(as_text=True)
    asset = db.session.scalar(select(Asset).where(Asset.serial == f"SN-{kind}"))
    assert asset.kind == kind and asset.tag == f"IT-{asset.id:06d}" and asset.status == "in_stock"
    if kind == "mobile_phone":
        assert (asset.imei, asset.phone_number, asset.iccid) == (VALID_IMEI, "+4915112345678", "89490200001234567890")
    if kind == "desk_phone":
        assert asset.mac == "00:1a:2b:3c:4d:5f"
    page = it.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert asset.tag in page and f"my {kind}" in page


@pytest.mark.parametrize("field, value, message", [
    ("imei", "490154203237519", "check digit"),
    ("imei", "12345", "15 digits"),
    ("phone_number", "0151 1234", "E.164"),
    ("mac", "00:1a:2b:3c:4d", "12 hex digits"),
    ("cost", "lots", "not an amount"),
    ("purchase_date", "31.12.2025", "Not a valid date"),
])
def test_bad_field_values_are_form_errors_and_nothing_is_written(it, field, value, message):
    kind = "desk_phone" if field == "mac" else "mobile_phone"
    response = post(it, "/assets/new", {"kind": kind, "name": "phone", field: value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(Asset.id)) is None


def test_fields_of_another_kind_are_refused(it):
    response = post(it, "/assets/new", {"kind": "laptop", "name": "lap", "imei": VALID_IMEI})
    assert response.status_code == 422
    assert "imei does not apply to a laptop" in response.get_data(as_text=True)
    assert db.session.scalar(select(Asset.id)) is None


def test_duplicate_tag_and_serial_are_conflicts(it, make_asset):
    existing = make_asset("laptop", serial="ABC123", tag="LAP-1")
    for data in ({"tag": "lap-1"}, {"serial": "ABC123"}):
        response = post(it, "/assets/new", {"kind": "laptop", "name": "again", **data})
        assert response.status_code == 409
        assert existing.tag in response.get_data(as_text=True)
    assert db.session.scalar(select(db.func.count(Asset.id))) == 1


def _transitions():
    return [(source, target) for source in Status for target in Status if source != target]


@pytest.mark.parametrize("source, target", _transitions())
def test_each_status_transition_is_allowed_or_refused_with_the_allowed_moves(source, target, make_user):
    it_user = make_user(Role.IT_STAFF)
    asset = services.create_asset("laptop", {"name": "lap"}, by=it_user)
    asset.status = source.value  # put it in the source state directly, the way a long history would
    if source in (Status.DEPLOYED, Status.IN_REPAIR, Status.PENDING_RETURN):
        asset.holder = make_user(Role.EMPLOYEE)
    db.session.flush()
    held = asset.holder is not None
    allowed = target in TRANSITIONS[source]
    blocked_by_holder = (target == Status.DEPLOYED and not held) or (held and target not in (
        Status.DEPLOYED, Status.IN_REPAIR, Status.PENDING_RETURN))
    if allowed and not blocked_by_holder:
        services.change_status(asset, target, by=it_user)
        assert asset.status == target.value
        assert services.history(asset)[0].summary.startswith(f"{source.label} → {target.label}")
    else:
        with pytest.raises(services.InvalidTransition) as refused:
            services.change_status(asset, target, by=it_user)
        if not allowed:
            assert "Allowed next:" in refused.value.detail
        assert asset.status == source.value


def test_forbidden_transition_in_the_browser_says_which_moves_are_allowed(it, make_asset):
    asset = make_asset("laptop", status="ordered")
    response = it.post(f"/assets/{asset.id}/status", data={"status": "disposed", "csrf_token": csrf_token(it, "/assets/new")})
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "cannot go from ordered to disposed" in text and "in stock, retired" in text


def test_checkout_and_checkin_make_a_full_history(it, make_user, make_asset):
    employee = make_user(Role.EMPLOYEE, display_name="Eve Employee")
    asset = make_asset("laptop")
    token = csrf_token(it, "/assets/new")
    out = it.post(f"/assets/{asset.id}/checkout", data={"holder": employee.username, "expected_return": "2099-01-31",
                                                        "condition": "new, sealed", "csrf_token": token})
    assert out.status_code == 302
    again = it.post(f"/assets/{asset.id}/checkout", data={"holder": employee.username, "csrf_token": token})
    assert again.status_code == 409 and "already checked out" in again.get_data(as_text=True)
    back = it.post(f"/assets/{asset.id}/checkin", data={"status": "in_repair", "condition": "cracked screen",
                                                        "csrf_token": token})
    assert back.status_code == 302
    db.session.refresh(asset)
    assert asset.holder_id is None and asset.status == "in_repair"
    events = services.history(asset)
    assert [e.kind for e in events] == ["checkin", "checkout", "created"]
    assert events[1].holder_id == employee.id and events[1].details["condition"] == "new, sealed"
    assert events[1].details["expected_return"] == "2099-01-31"
    assert events[0].actor_label == it.user.username and events[0].details["condition"] == "cracked screen"
    page = it.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "checked out to Eve Employee" in page and "cracked screen" in page
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("asset.%")).order_by(AuditEntry.id))
    assert list(actions) == ["asset.checkout", "asset.checkin"]


def test_checkout_to_unknown_or_disabled_person_is_refused(it, make_user, make_asset):
    asset = make_asset("laptop")
    gone = make_user(Role.EMPLOYEE)
    gone.active = False
    db.session.commit()
    token = csrf_token(it, "/assets/new")
    response = it.post(f"/assets/{asset.id}/checkout", data={"holder": "nobody-here", "csrf_token": token})
    assert response.status_code == 422 and "No active person" in response.get_data(as_text=True)
    db.session.refresh(asset)
    assert asset.holder_id is None and asset.status == "in_stock"
    disabled = it.post(f"/assets/{asset.id}/checkout", data={"holder": gone.username, "csrf_token": token})
    assert disabled.status_code == 422


def test_retired_asset_cannot_be_checked_out(it, make_user, make_asset):
    asset = make_asset("laptop", status="retired")
    response = it.post(f"/assets/{asset.id}/checkout",
                       data={"holder": make_user().username, "csrf_token": csrf_token(it, "/assets/new")})
    assert response.status_code == 409
    assert "Allowed next: in stock, disposed" in response.get_data(as_text=True)


def test_employee_sees_only_what_they_hold(client_as, make_user, make_asset):
    employee = client_as(Role.EMPLOYEE)
    other = make_user(Role.EMPLOYEE)
    mine = make_asset("laptop", name="my laptop", holder=employee.user)
    theirs = make_asset("laptop", name="their laptop", holder=other)
    listing = employee.get("/assets/").get_data(as_text=True)
    assert "my laptop" in listing and "their laptop" not in listing and "My assets" in listing
    # Filters cannot widen the view: asking for another holder still shows only mine.
    assert "their laptop" not in employee.get(f"/assets/?holder={other.username}").get_data(as_text=True)
    assert employee.get(f"/assets/{mine.id}").status_code == 200
    assert employee.get(f"/assets/{theirs.id}").status_code == 404
    assert employee.get(f"/assets/{theirs.id}/label").status_code == 404
    assert employee.get(f"/assets/{theirs.id}/software").status_code == 404


@pytest.mark.parametrize("method, path", [
    ("get", "/assets/new"), ("get", "/assets/{id}/edit"), ("post", "/assets/{id}/checkout"),
    ("post", "/assets/{id}/checkin"), ("post", "/assets/{id}/status"), ("get", "/assets/credentials"),
    ("get", "/assets/enrollment"), ("get", "/assets/labels?id={id}"),
])
def test_employees_and_hr_cannot_manage_assets(client_as, make_asset, method, path):
    asset = make_asset("laptop")
    for role in (Role.EMPLOYEE, Role.HR):
        client = client_as(role)
        token = csrf_token(client)
        response = getattr(client, method)(path.format(id=asset.id), data={"csrf_token": token} if method == "post" else None)
        assert response.status_code == 403, (role, path)
    assert services.history(asset)[0].kind == "created" and len(services.history(asset)) == 1


def test_hr_has_no_assets_area(client_as):
    assert client_as(Role.HR).get("/assets/").status_code == 403


def test_list_filters_search_and_sort(it, make_user, make_asset):
    holder = make_user(Role.EMPLOYEE, username="wanda")
    phone = make_asset("mobile_phone", name="Pixel", imei=VALID_IMEI, location="Berlin")
    make_asset("laptop", name="ThinkPad", serial="PF-777", location="Berlin", holder=holder)
    make_asset("switch", name="core-sw", location="Hamburg")

    def names(query):
        return [a.name for a in services_list(it, query)]

    assert names("q=pf-7") == ["ThinkPad"]
    assert names("q=0154203") == ["Pixel"]
    assert names("q=wanda") == ["ThinkPad"]
    assert names("holder=wanda") == ["ThinkPad"]
    assert names("kind=switch") == ["core-sw"]
    assert names("location=Berlin&sort=name") == ["Pixel", "ThinkPad"]
    assert names("status=deployed") == ["ThinkPad"]
    assert names("q=100%25") == []  # LIKE wildcards are literal
    assert phone.tag in it.get("/assets/?kind=mobile_phone").get_data(as_text=True)
    assert it.get("/assets/?kind=spaceship").status_code == 422
    assert it.get("/assets/?warranty_days=-3").status_code == 422


def services_list(client, query):
    from itops.assets.queries import AssetFilters, asset_page
    response = client.get(f"/assets/?{query}")
    assert response.status_code == 200
    args = dict(pair.split("=") for pair in query.replace("%25", "%").split("&"))
    args["warranty_days"] = int(args["warranty_days"]) if "warranty_days" in args else None
    return asset_page(AssetFilters(**args)).items


def test_warranty_filter(it, make_asset):
    from datetime import date, timedelta
    make_asset("laptop", name="soon", warranty_end=date.today() + timedelta(days=10))
    make_asset("laptop", name="later", warranty_end=date.today() + timedelta(days=400))
    make_asset("laptop", name="expired", warranty_end=date.today() - timedelta(days=1))
    page = it.get("/assets/?warranty_days=30").get_data(as_text=True)
    assert "soon" in page and "later" not in page and "expired" not in page


def test_list_pages_with_a_cursor_and_costs_at_most_three_queries(it, make_asset, make_user):
    for i in range(7):
        make_asset("laptop", name=f"lap{i}", holder=make_user() if i % 2 else None)
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        response = it.get("/assets/?sort=name")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert response.status_code == 200
    assert len(statements) <= 3, statements
    first = [a.name for a in services_list(it, "sort=name")]
    assert first == [f"lap{i}" for i in range(7)]


def test_list_rows_show_each_column_and_escape_what_people_typed(it, make_user, make_asset):
    from datetime import date
    holder = make_user(Role.EMPLOYEE, display_name="<i>Ivy</i> & co")
    held = make_asset("laptop", name="<b>lap</b>", serial="S<1>", location="Room \"A\" & B",
                      warranty_end=date(2030, 1, 31), holder=holder)
    bare = make_asset("printer", name="printer")
    page = it.get("/assets/").get_data(as_text=True)
    assert "<b>lap</b>" not in page and "&lt;b&gt;lap&lt;/b&gt;" in page
    assert "&lt;i&gt;Ivy&lt;/i&gt; &amp; co" in page and "S&lt;1&gt;" in page
    assert "Room &#34;A&#34; &amp; B" in page and "2030-01-31" in page
    assert f'<a href="/assets/{held.id}">{held.tag}</a>' in page
    assert f'value="{bare.id}" aria-label="Select {bare.tag}"' in page
    assert '<span class="badge status-deployed">Deployed</span>' in page and "<td>Printer</td>" in page
    assert it.get("/assets/?q=nothing-like-this").get_data(as_text=True).count("No assets match.") == 1


def test_asset_page_offers_the_forms_that_apply(it, app, make_user, make_asset):
    app.extensions.pop("assets.people_options", None)  # built at most once a minute per app
    quinn = make_user(Role.EMPLOYEE, username="quinn", display_name="<q>Quinn</q>")
    gone = make_user(Role.EMPLOYEE, username="gone")
    gone.active = False
    db.session.commit()
    free = it.get(f"/assets/{make_asset('laptop').id}").get_data(as_text=True)
    assert '<option value="quinn">&lt;q&gt;Quinn&lt;/q&gt;</option>' in free and 'value="gone"' not in free
    assert 'list="people"' in free and "Check in from" not in free and "Change status" in free
    held = it.get(f"/assets/{make_asset('laptop', holder=quinn).id}").get_data(as_text=True)
    assert "Check in from &lt;q&gt;Quinn&lt;/q&gt;" in held and "<datalist" not in held and "Change status" in held
    disposed = it.get(f"/assets/{make_asset('laptop', status='disposed').id}").get_data(as_text=True)
    assert "cannot be checked out" in disposed and "Disposed is final." in disposed
    # The page writes these forms out by hand; the routes check them with the form classes.
    for page, action, form_class in [(free, "checkout", CheckoutForm), (held, "checkin", CheckinForm),
                                     (held, "status", StatusForm)]:
        form = re.search(rf'<form method="post" action="/assets/\d+/{action}".*?</form>', page, re.S).group(0)
        fields = {name for name in dir(form_class) if isinstance(getattr(form_class, name), UnboundField)}
        assert set(re.findall(r'name="([^"]+)"', form)) == fields - {"submit"} | {"csrf_token"}, action
    ids = re.findall(r' id="([^"]+)"', held)
    assert len(ids) == len(set(ids))


def test_edit_records_what_changed(it, make_asset):
    asset = make_asset("laptop", name="old name", location="Room 1")
    token = csrf_token(it, "/assets/new")
    response = it.post(f"/assets/{asset.id}/edit", data={"kind": "laptop", "tag": asset.tag, "name": "new name",
                                                         "location": "Room 1", "csrf_token": token})
    assert response.status_code == 302
    event_ = services.history(asset)[0]
    assert event_.kind == "edited" and event_.details == {"name": ["old name", "new name"]}


def test_script_and_sql_text_is_stored_inertly_and_escaped(it):
    name = "<script>alert(1)</script>'; DROP TABLE assets; --"
    response = post(it, "/assets/new", {"kind": "other", "name": name})
    asset = db.session.scalar(select(Asset))
    assert response.status_code == 302 and asset.name == name
    page = it.get(f"/assets/{asset.id}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_label_page_has_tag_and_qr_code_linking_to_the_asset(it, make_asset, app):
    asset = make_asset("laptop", serial="S-42")
    page = it.get(f"/assets/{asset.id}/label").get_data(as_text=True)
    assert asset.tag in page and "<svg" in page and "S-42" in page
    assert f"{app.config['ITOPS_BASE_URL']}/assets/{asset.id}" in page
    other = make_asset("desk_phone")
    sheet = it.get(f"/assets/labels?id={asset.id}&id={other.id}").get_data(as_text=True)
    assert sheet.count("<svg") == 2 and other.tag in sheet
    assert it.get("/assets/labels").status_code == 422
    assert it.get("/assets/labels?id=999999").status_code == 404


def test_credentials_are_encrypted_and_never_shown(it, caplog):
    token = csrf_token(it, "/assets/credentials")
    response = it.post("/assets/credentials", data={"name": "core", "username": "netops", "password": "s3cret-Pa55",
                                                    "enable_secret": "en4ble", "csrf_token": token})
    assert response.status_code == 302
    stored = db.session.scalar(select(DeviceCredential))
    assert "s3cret-Pa55" not in stored.password_encrypted and "en4ble" not in stored.enable_secret_encrypted
    page = it.get("/assets/credentials").get_data(as_text=True)
    assert "core" in page and "s3cret-Pa55" not in page
    assert "s3cret-Pa55" not in caplog.text
    switch = services.create_asset("switch", {"name": "sw1", "credential_id": stored.id}, by=it.user)
    assert services.device_login(switch).password == "s3cret-Pa55"
    audit_text = " ".join(f"{e.summary} {e.before} {e.after}" for e in db.session.scalars(select(AuditEntry)))
    assert "s3cret-Pa55" not in audit_text


def test_events_are_kept_per_asset(make_asset):
    a, b = make_asset("laptop"), make_asset("laptop")
    assert {e.asset_id for e in db.session.scalars(select(AssetEvent))} == {a.id, b.id}


def test_netmiko_knows_every_offered_device_type():
    from netmiko.ssh_dispatcher import CLASS_MAPPER
    from itops.assets.choices import DEVICE_TYPE_NAMES
    assert DEVICE_TYPE_NAMES <= set(CLASS_MAPPER)
