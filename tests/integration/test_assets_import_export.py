"""Assets CSV import (preview, confirm, the job) and export, through HTTP and the CLI."""
import csv
import html
import io
import re
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from itops.assets import csv_io, services
from itops.assets.models import Asset, AssetEvent
from itops.core.jobs import Job, JobState
from itops.core.policy import Role
from itops.extensions import db
from tests.conftest import csrf_token

HEADER = ",".join(csv_io.COLUMNS)
CONFIRM_URL = re.compile(r'action="/assets/import/([A-Za-z0-9_-]+)/confirm"')


# --- helpers -----------------------------------------------------------------------------------

def make_asset(kind="laptop", *, holder=None, status=None, **values):
    values.setdefault("name", f"{kind} {values.get('tag', '')}".strip())
    asset = services.create_asset(kind, values, by="test", **({"status": status} if status else {}))
    if holder is not None:
        services.checkout(asset, holder, by="test")
    db.session.commit()
    return asset


def csv_text(*rows: dict, columns=csv_io.COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def upload(client, content, filename="assets.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/assets/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_token(client, "/assets/import"), "file": (io.BytesIO(data), filename)})


def import_id_of(page) -> str:
    match = CONFIRM_URL.search(page.get_data(as_text=True))
    assert match, "no confirm form on the preview page"
    return match.group(1)


def confirm(client, import_id, mode):
    return client.post(f"/assets/import/{import_id}/confirm",
                       data={"mode": mode, "csrf_token": csrf_token(client, "/assets/import")})


def preview_rows(page) -> dict[int, str]:
    """The preview table as {row number: its text}."""
    rows = re.findall(r'<tr[^>]*data-row="(\d+)"[^>]*>(.*?)</tr>', page.get_data(as_text=True), re.S)
    return {int(n): html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()) for n, body in rows}


def preview_counts(page) -> dict[str, int]:
    found = re.findall(r'data-count="(\w+)">(\d+)<', page.get_data(as_text=True))
    return {name: int(value) for name, value in found}


def wait_for_job(response) -> Job:
    assert response.status_code == 302 and response.headers["Location"].startswith("/jobs/"), response.status_code
    job_id = int(response.headers["Location"].rsplit("/", 1)[1])
    deadline = time.monotonic() + 20
    while True:  # the job runs on the web process's job thread, as the progress page waits for it
        db.session.expire_all()
        job = db.session.get(Job, job_id)
        if job.is_finished or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def export_rows(response) -> list[dict]:
    text = response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def asset_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Asset))


def events(asset_id: int, kind: str | None = None) -> list[AssetEvent]:
    query = select(AssetEvent).where(AssetEvent.asset_id == asset_id)
    if kind:
        query = query.where(AssetEvent.kind == kind)
    return list(db.session.scalars(query.order_by(AssetEvent.id)))


def uploads_dir(app) -> Path:
    return Path(app.config["ITOPS_INSTANCE_DIR"]) / "imports"


def stored_uploads(app) -> list[Path]:
    return sorted(uploads_dir(app).glob("*.csv")) if uploads_dir(app).exists() else []


@pytest.fixture(autouse=True)
def no_stored_uploads(app):
    """Uploads live in the session's instance dir; each test starts and ends without any."""
    for path in stored_uploads(app):
        path.unlink()
    yield
    for path in stored_uploads(app):
        path.unlink()


def run(app, *args, stdin=None):
    return app.test_cli_runner().invoke(args=["itops", "assets", *args], input=stdin)


# --- preview -----------------------------------------------------------------------------------

def test_preview_shows_what_each_row_would_do_and_every_error_without_writing(app, client_as, make_user):
    staff = client_as(Role.IT_STAFF)
    make_user(Role.EMPLOYEE, username="leaver").active = False
    db.session.commit()
    existing = make_asset(tag="LAP-1", serial="SN-1", name="Old name")
    make_asset(tag="LAP-2", serial="SN-2")
    make_asset(tag="LAP-3")
    before = (asset_count(), db.session.scalar(select(func.count()).select_from(AssetEvent)))
    content = csv_text(
        {"kind": "laptop", "name": "Brand new"},                                        # 2 create
        {"tag": "lap-1", "kind": "laptop", "name": "Renamed"},                          # 3 update by tag
        {"kind": "laptop", "name": "Bad date", "purchase_date": "2024-13-01"},          # 4
        {"kind": "spaceship", "name": "Enterprise"},                                    # 5
        {"tag": "DUP-1", "kind": "laptop", "name": "One"},                              # 6
        {"tag": "DUP-1", "kind": "desktop", "name": "Two"},                             # 7
        {"tag": "LAP-3", "kind": "laptop", "name": "Clash", "serial": "SN-2"},          # 8
        {"kind": "mobile_phone", "name": "Phone", "imei": "490154203237519"},           # 9
        {"kind": "laptop", "name": "Held", "holder": "nobody"},                         # 10
        {"kind": "laptop", "name": "Held by a leaver", "holder": "leaver"},             # 11
        {"kind": "laptop", "name": "Phone fields", "imei": "490154203237518"},          # 12
        {"kind": "laptop", "name": "", "status": "lost"},                               # 13
    )
    page = upload(staff, content)
    assert page.status_code == 200
    rows = preview_rows(page)
    assert rows[2].startswith("2 create") and rows[2].endswith("none")
    assert rows[3].startswith("3 update LAP-1 · Renamed") and rows[3].endswith("none")
    assert "'2024-13-01' is not a date; use YYYY-MM-DD." in rows[4]
    assert "unknown kind 'spaceship'" in rows[5]
    assert "tag: DUP-1 is on rows 6, 7 of the file" in rows[6] and "rows 6, 7" in rows[7]
    assert rows[8].startswith("8 update LAP-3") and "serial: SN-2 belongs to another asset (LAP-2)." in rows[8]
    assert "fails its check digit (Luhn)" in rows[9]
    assert "holder: no active person with username 'nobody'." in rows[10]
    assert "no active person with username 'leaver'" in rows[11]
    assert "imei does not apply to a laptop" in rows[12]
    assert "unknown status 'lost'" in rows[13] and "name: required." in rows[13]
    assert preview_counts(page) == {"rows": 12, "create": 1, "update": 1, "errors": 10}
    text = page.get_data(as_text=True)
    assert 'name="mode" value="valid_only"' in text and 'name="mode" value="all"' not in text
    assert '<th scope="row">4</th>' in text and "<caption>" in text
    # Nothing written: no assets, no history, no jobs; the file waits server-side, readable by its owner only.
    db.session.expire_all()
    assert (asset_count(), db.session.scalar(select(func.count()).select_from(AssetEvent))) == before
    assert db.session.get(Asset, existing.id).name == "Old name"
    assert db.session.scalars(select(Job)).all() == []
    [stored] = stored_uploads(app)
    assert stored.stat().st_mode & 0o777 == 0o600 and stored.read_bytes() == content.encode()


@pytest.mark.parametrize("content, message", [
    (HEADER + ",colour,owner\nlaptop,,,,,,,,,,,,,,,,,,,,,,red,x\n", "Unknown columns: colour, owner."),
    ("tag,kind,name\nLAP-9,laptop,B\u00fcro\n".encode("latin-1"), "The file is not UTF-8 (byte 29 cannot be read)"),
    ("laptop,ThinkPad X1\ndesktop,Optiplex\n", "The first line must be a header naming the columns"),
    ("tag,name\nLAP-9,Box\n", "Required column missing: kind."),
    ("", "The file is empty"),
    ("kind,name\n", "The file has a header but no rows."),
    ("kind,name,name\nlaptop,a,b\n", "Column named twice: name."),
])
def test_an_unusable_file_is_refused_with_422_and_nothing_kept(app, client_as, content, message):
    staff = client_as(Role.IT_STAFF)
    response = upload(staff, content)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert 'aria-invalid="true"' in response.get_data(as_text=True)  # the message is tied to the file field
    assert stored_uploads(app) == [] and asset_count() == 0


def test_a_utf8_byte_order_mark_is_accepted(client_as):
    staff = client_as(Role.IT_STAFF)
    page = upload(staff, "\ufeffkind,name\nlaptop,Caf\u00e9 laptop\n".encode())
    assert page.status_code == 200 and preview_counts(page)["create"] == 1
    assert "Café laptop" in preview_rows(page)[2]


def test_size_and_row_limits_are_clear_errors(client_as, monkeypatch):
    staff = client_as(Role.IT_STAFF)
    too_big = b"kind,name\n" + b"laptop,x\n" * (csv_io.MAX_BYTES // 9 + 1)
    response = upload(staff, too_big)
    assert response.status_code == 422 and "larger than 5 MiB" in response.get_data(as_text=True)
    monkeypatch.setattr(csv_io, "MAX_ROWS", 2)
    response = upload(staff, "kind,name\nlaptop,a\nlaptop,b\nlaptop,c\n")
    assert response.status_code == 422 and "more than 2 rows" in response.get_data(as_text=True)


# --- confirm and the job -----------------------------------------------------------------------

def test_confirm_all_is_refused_when_any_row_has_errors_and_valid_only_imports_the_rest(client_as, make_user):
    staff = client_as(Role.IT_STAFF)
    alice = make_user(Role.EMPLOYEE, username="alice")
    existing = make_asset(tag="LAP-1", serial="SN-1", location="Store")
    content = csv_text(
        {"tag": "LAP-1", "kind": "laptop", "name": "laptop LAP-1", "serial": "SN-1", "location": "Berlin 2.14"},
        {"tag": "NEW-1", "kind": "laptop", "name": "For Alice", "holder": "alice", "cost": "1,299.5",
         "purchase_date": "2025-01-15"},
        {"kind": "laptop", "name": "Broken", "warranty_end": "soon"},
    )
    import_id = import_id_of(upload(staff, content))

    refused = confirm(staff, import_id, "all")
    assert refused.status_code == 422
    assert "1 of 3 rows have errors, so nothing was imported" in refused.get_data(as_text=True)
    db.session.expire_all()
    assert asset_count() == 1 and db.session.get(Asset, existing.id).location == "Store"
    assert db.session.scalars(select(Job)).all() == []

    job = wait_for_job(confirm(staff, import_id, "valid_only"))
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result == {"created": 1, "updated": 1, "skipped": 0, "errors": 1}
    assert (job.done, job.total, job.kind, job.created_by_id) == (2, 2, "assets.import", staff.user.id)

    updated = db.session.get(Asset, existing.id)
    assert updated.location == "Berlin 2.14"
    [imported] = events(updated.id, "imported")
    assert imported.details == {"location": ["Store", "Berlin 2.14"]} and imported.actor_id == staff.user.id
    new = services.find_by_tag("NEW-1")
    assert (new.status, new.holder_id, new.cost, new.purchase_date) == ("deployed", alice.id, Decimal("1299.50"),
                                                                       date(2025, 1, 15))
    assert [e.kind for e in events(new.id)] == ["imported", "checkout"]
    assert services.find_by_serial("Broken") is None and asset_count() == 2
    # The stored file is gone: confirming twice does not import twice.
    assert confirm(staff, import_id, "valid_only").status_code == 404


def test_a_clean_file_imports_every_row(client_as):
    staff = client_as(Role.IT_STAFF)
    content = csv_text(
        {"kind": "mobile_phone", "name": "Sales phone", "imei": "3569-3803-5643-809",
         "phone_number": "0049 151 1234567", "iccid": "8949 0200 0000 1234 5678", "carrier": "Telekom"},
        {"tag": "SW-CORE-1", "kind": "switch", "name": "core-sw-1", "management_address": "10.0.0.2",
         "device_type": "cisco_ios", "status": "ordered"},
        {"kind": "desk_phone", "name": "Reception", "mac": "00-1A-2B-3C-4D-5E", "extension": "100",
         "status": "in_repair"},
        columns=("tag", "kind", "name", "status", "imei", "phone_number", "iccid", "carrier", "mac", "extension",
                 "management_address", "device_type"),
    )
    page = upload(staff, content)
    assert preview_counts(page) == {"rows": 3, "create": 3, "update": 0, "errors": 0}
    job = wait_for_job(confirm(staff, import_id_of(page), "all"))
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result == {"created": 3, "updated": 0, "skipped": 0, "errors": 0}
    phone = db.session.scalars(select(Asset).where(Asset.kind == "mobile_phone")).one()
    assert (phone.imei, phone.phone_number, phone.iccid) == ("356938035643809", "+491511234567",
                                                             "89490200000012345678")
    assert phone.tag.startswith("IT-") and phone.status == "in_stock"
    switch = services.find_by_tag("SW-CORE-1")
    assert (switch.status, switch.device_type) == ("ordered", "cisco_ios")
    desk = db.session.scalars(select(Asset).where(Asset.kind == "desk_phone")).one()
    assert (desk.mac, desk.status) == ("00:1a:2b:3c:4d:5e", "in_repair")
    assert [e.kind for e in events(desk.id)] == ["imported", "status"]
    assert staff.get(f"/jobs/{job.id}").status_code == 200


def test_only_the_uploader_can_confirm(client_as):
    uploader, other = client_as(Role.IT_STAFF), client_as(Role.IT_STAFF)
    import_id = import_id_of(upload(uploader, "kind,name\nlaptop,Mine\n"))
    assert confirm(other, import_id, "all").status_code == 404
    assert confirm(other, "../../etc/passwd", "all").status_code == 404
    assert asset_count() == 0 and db.session.scalars(select(Job)).all() == []
    job = wait_for_job(confirm(uploader, import_id, "all"))
    assert job.state == JobState.SUCCEEDED and asset_count() == 1


def test_confirm_needs_a_csrf_token(client_as):
    staff = client_as(Role.IT_STAFF)
    import_id = import_id_of(upload(staff, "kind,name\nlaptop,Mine\n"))
    response = staff.post(f"/assets/import/{import_id}/confirm", data={"mode": "all"})
    assert response.status_code in (400, 422) and asset_count() == 0


def test_employee_cannot_import_and_exports_only_what_they_hold(client_as, make_user):
    employee = client_as(Role.EMPLOYEE)
    colleague = make_user(Role.EMPLOYEE)
    mine = make_asset(tag="LAP-MINE", holder=employee.user)
    make_asset(tag="LAP-THEIRS", holder=colleague)
    make_asset(tag="LAP-STOCK")
    assert employee.get("/assets/import").status_code == 403
    token = csrf_token(employee, "/")
    posted = employee.post("/assets/import", content_type="multipart/form-data",
                           data={"csrf_token": token, "file": (io.BytesIO(b"kind,name\nlaptop,x\n"), "a.csv")})
    assert posted.status_code == 403
    assert employee.post("/assets/import/abcdefghijklmnopqrstuvwxyz/confirm",
                         data={"csrf_token": token, "mode": "all"}).status_code == 403
    assert asset_count() == 3

    exported = employee.get("/assets/export.csv?status=")
    assert exported.status_code == 200
    assert [row["tag"] for row in export_rows(exported)] == [mine.tag]
    # Asking for someone else's assets by holder still gives only one's own.
    assert [r["tag"] for r in export_rows(employee.get(f"/assets/export.csv?holder={colleague.username}"))] \
        == [mine.tag]
    assert client_as(Role.HR).get("/assets/export.csv").status_code == 403


# --- export and round trip ---------------------------------------------------------------------

def test_export_with_a_filter_has_exactly_those_rows_and_imports_back_unchanged(client_as, make_user):
    staff = client_as(Role.IT_STAFF)
    alice = make_user(Role.EMPLOYEE, username="alice")
    make_asset(tag="LAP-S1", name="Sales laptop", serial="SN-S1", manufacturer="Lenovo", model="T14",
               location="Berlin", purchase_date=date(2024, 3, 1), cost=Decimal("1234.50"), supplier="ACME",
               warranty_end=date(2027, 3, 1), notes="line one\nline two, with comma", holder=alice)
    make_asset("mobile_phone", tag="PH-S1", name="Sales phone", imei="490154203237518",
               phone_number="+4915112345678", iccid="89490200000012345678", carrier="Telekom")
    make_asset(tag="LAP-X", name="Support laptop", serial="SN-X")
    events_before = db.session.scalar(select(func.count()).select_from(AssetEvent))

    response = staff.get("/assets/export.csv?q=sales")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="itops-assets-{date.today().isoformat()}.csv"'
    body = response.get_data()
    assert body.startswith("\ufeff".encode() + HEADER.encode() + b"\r\n")
    rows = export_rows(response)
    assert [r["tag"] for r in rows] == ["LAP-S1", "PH-S1"]
    laptop, phone = rows
    assert (laptop["holder"], laptop["cost"], laptop["purchase_date"], laptop["status"]) == \
        ("alice", "1234.50", "2024-03-01", "deployed")
    assert laptop["notes"] == "line one\nline two, with comma"
    assert phone["phone_number"] == "'+4915112345678"  # escaped: + starts a formula in a spreadsheet
    assert [r["tag"] for r in export_rows(staff.get("/assets/export.csv?kind=mobile_phone"))] == ["PH-S1"]

    page = upload(staff, body, "itops-assets.csv")
    assert page.status_code == 200
    assert preview_counts(page) == {"rows": 2, "create": 0, "update": 2, "errors": 0}
    job = wait_for_job(confirm(staff, import_id_of(page), "all"))
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.result == {"created": 0, "updated": 0, "skipped": 2, "errors": 0}
    assert db.session.scalar(select(func.count()).select_from(AssetEvent)) == events_before
    assert services.find_by_tag("PH-S1").phone_number == "+4915112345678"


def test_export_rejects_bad_filters(client_as):
    response = client_as(Role.IT_STAFF).get("/assets/export.csv?kind=spaceship")
    assert response.status_code == 422


def test_csv_injection_cells_are_escaped_on_export_and_restored_on_import(client_as):
    staff = client_as(Role.IT_STAFF)
    asset = make_asset(tag="LAP-1", name='=HYPERLINK("http://evil.example","click")', location="-1+1",
                       supplier="@SUM(A1)", manufacturer="'=already quoted", model="'tis fine", notes="\tindented")
    [row] = export_rows(staff.get("/assets/export.csv"))
    assert row["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert (row["location"], row["supplier"], row["notes"]) == ("'-1+1", "'@SUM(A1)", "'\tindented")
    assert row["manufacturer"] == "''=already quoted" and row["model"] == "'tis fine"
    assert all(not cell.startswith(csv_io.FORMULA_STARTS) for cell in row.values())

    page = upload(staff, staff.get("/assets/export.csv").get_data())
    assert preview_counts(page)["errors"] == 0
    job = wait_for_job(confirm(staff, import_id_of(page), "all"))
    assert job.result == {"created": 0, "updated": 0, "skipped": 1, "errors": 0}
    db.session.expire_all()
    stored = db.session.get(Asset, asset.id)
    assert (stored.name, stored.manufacturer, stored.model, stored.notes) == \
        ('=HYPERLINK("http://evil.example","click")', "'=already quoted", "'tis fine", "\tindented")


# --- holders through import --------------------------------------------------------------------

def test_a_new_holder_is_a_checkin_then_a_checkout_and_an_empty_holder_a_checkin(app, make_user):
    alice, bob = make_user(Role.EMPLOYEE, username="alice"), make_user(Role.EMPLOYEE, username="bob")
    moving = make_asset(tag="LAP-1", holder=alice)
    returning = make_asset(tag="LAP-2", holder=alice)
    repaired = make_asset(tag="LAP-3", holder=alice)
    path = Path(app.config["ITOPS_INSTANCE_DIR"]) / "holders.csv"
    path.write_text(csv_text({"tag": "LAP-1", "kind": "laptop", "name": "laptop LAP-1", "holder": "bob"},
                             {"tag": "LAP-2", "kind": "laptop", "name": "laptop LAP-2", "holder": ""},
                             columns=("tag", "kind", "name", "holder")))
    result = run(app, "import", str(path))
    assert result.exit_code == 0, result.output
    assert "created: 0, updated: 2, skipped: 0, errors: 0" in result.output
    # Without a holder column the holder stays; the status changes as a plain status change.
    result = run(app, "import", "-", stdin="tag,kind,name,status\nLAP-3,laptop,laptop LAP-3,in_repair\n")
    assert result.exit_code == 0 and "updated: 1" in result.output, result.output
    db.session.expire_all()
    moving, returning, repaired = (db.session.get(Asset, a.id) for a in (moving, returning, repaired))
    assert (moving.holder_id, moving.status) == (bob.id, "deployed")
    assert [e.kind for e in events(moving.id)][-2:] == ["checkin", "checkout"]
    assert (returning.holder_id, returning.status) == (None, "in_stock")
    assert [e.kind for e in events(returning.id)][-1] == "checkin"
    assert (repaired.holder_id, repaired.status) == (alice.id, "in_repair")  # no holder column: holder kept
    assert events(repaired.id)[-1].actor_label == "cli"


def test_lifecycle_rules_are_checked_in_the_preview(client_as, make_user):
    staff = client_as(Role.IT_STAFF)
    make_user(Role.EMPLOYEE, username="alice")
    make_asset(tag="RET-1", status="retired")
    make_asset(tag="OK-1")
    page = upload(staff, csv_text(
        {"tag": "RET-1", "kind": "laptop", "name": "laptop RET-1", "holder": "alice"},
        {"tag": "OK-1", "kind": "desktop", "name": "laptop OK-1"},
        {"kind": "laptop", "name": "Deployed to nobody", "status": "deployed"},
        {"kind": "laptop", "name": "Held but in stock", "holder": "alice", "status": "in_stock"},
        columns=("tag", "kind", "name", "status", "holder")))
    rows = preview_rows(page)
    assert "an asset that is retired cannot be checked out" in rows[2]
    assert "OK-1 is a laptop; import does not change an asset's kind." in rows[3]
    assert "deployed needs a holder." in rows[4]
    assert "an asset with a holder cannot be in stock" in rows[5]


# --- command line ------------------------------------------------------------------------------

def test_cli_dry_run_prints_row_errors_exits_1_and_writes_nothing(app):
    content = csv_text({"kind": "laptop", "name": "Fine"}, {"kind": "laptop", "name": "Bad", "cost": "cheap"},
                       columns=("kind", "name", "cost"))
    result = run(app, "import", "-", "--dry-run", stdin=content)
    assert result.exit_code == 1
    assert "row 3 (Bad): cost: 'cheap' is not an amount" in result.output
    assert "2 rows: 1 to create, 0 to update, 1 with errors" in result.output
    assert asset_count() == 0 and db.session.scalars(select(Job)).all() == []
    clean = run(app, "import", "-", "--dry-run", stdin="kind,name\nlaptop,Fine\n")
    assert clean.exit_code == 0 and asset_count() == 0


def test_cli_import_refuses_errors_unless_valid_only_and_shows_progress(app):
    content = csv_text({"kind": "laptop", "name": "Fine"}, {"kind": "laptop", "name": "Bad", "cost": "cheap"},
                       columns=("kind", "name", "cost"))
    refused = run(app, "import", "-", stdin=content)
    assert refused.exit_code == 1 and "nothing was imported" in refused.output and "--valid-only" in refused.output
    assert asset_count() == 0
    imported = run(app, "import", "-", "--valid-only", stdin=content)
    assert imported.exit_code == 0, imported.output
    assert "importing assets" in imported.output  # the progress bar's label
    assert "created: 1, updated: 0, skipped: 0, errors: 1" in imported.output
    [asset] = db.session.scalars(select(Asset)).all()
    assert asset.name == "Fine" and [e.kind for e in events(asset.id)] == ["imported"]
    job = db.session.scalars(select(Job)).one()
    assert (job.kind, job.state, job.result["created"]) == ("assets.import", "succeeded", 1)


def test_cli_import_of_an_unusable_file_or_only_bad_rows_exits_1(app, tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("kind,name\nlaptop,B\u00fcro\n".encode("latin-1"))
    result = run(app, "import", str(latin))
    assert result.exit_code == 1 and "not UTF-8" in result.output
    only_bad = run(app, "import", "-", "--valid-only", stdin="kind,name\nboat,x\n")
    assert only_bad.exit_code == 1 and "No row of the file is valid" in only_bad.output
    assert asset_count() == 0


def test_cli_export_to_stdout_and_to_a_file(app, tmp_path):
    make_asset(tag="LAP-1", name="=cmd|' /C calc'!A0")
    make_asset("desktop", tag="DESK-1")
    make_asset(tag="LAP-2", status="retired")
    everything = run(app, "export")
    assert everything.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(everything.output)))
    assert [r["tag"] for r in rows] == ["DESK-1", "LAP-1", "LAP-2"]
    assert rows[1]["name"] == "'=cmd|' /C calc'!A0"
    target = tmp_path / "out.csv"
    filtered = run(app, "export", "--kind", "laptop", "--status", "in_stock", "-o", str(target))
    assert filtered.exit_code == 0 and filtered.output == ""
    assert [r["tag"] for r in csv.DictReader(io.StringIO(target.read_text()))] == ["LAP-1"]
    assert run(app, "export", "--kind", "boat").exit_code == 2
    # What the CLI exports, the CLI imports back without a change.
    again = run(app, "import", str(target))
    assert again.exit_code == 0 and "created: 0, updated: 0, skipped: 1, errors: 0" in again.output
