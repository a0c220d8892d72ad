"""/scim/v2 driven by a standard SCIM client (scim2-client) and by requests written from RFC 7644.

The joiner, mover and leaver tests run against a real slapd (the directory domain's `hr` fixture);
the protocol tests need no directory: the directory steps then wait for `run-due`.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_models import EnterpriseUser, Group, PatchOp, PatchOperation, SearchRequest, User
from sqlalchemy import func, select

from itops.core.audit import AuditEntry
from itops.directory import scim_services, services
from itops.directory.choices import PersonState
from itops.directory.models import Person
from itops.extensions import db
from tests.integration.directory_support import (  # noqa: F401 (fixtures)
    TODAY, entry, group_members, hr, own_slapd,
)

BASE = "/scim/v2"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ITOPS = "urn:ietf:params:scim:schemas:extension:itops:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def secret(app):
    issued = scim_services.issue_token("workday", by="test")
    db.session.commit()
    return issued.secret


@pytest.fixture
def scim(app, secret):
    """A plain test client sending the SCIM token, for requests written from the RFC."""
    client = app.test_client(use_cookies=False)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    return client


@pytest.fixture
def scim_client(app, secret):
    """scim2-client over WSGI, configured from the server's own discovery documents."""
    client = WSGISCIMClient(app, base_url=f"http://localhost{BASE}", headers={"Authorization": f"Bearer {secret}"})
    client.discover()
    return client


def send(client, method: str, path: str, body=None, query_string=None, **headers):
    data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return client.open(BASE + path, method=method, data=data, headers=headers, query_string=query_string,
                       content_type="application/scim+json")


def user_body(number="E1", user_name="jdoe@example.org", given="John", family="Doe", **extra) -> dict:
    body = {"schemas": [CORE, ENTERPRISE], "userName": user_name, "externalId": f"wd-{number}",
            "name": {"givenName": given, "familyName": family},
            "emails": [{"value": f"{number.lower()}@example.org", "type": "work", "primary": True}],
            "title": "Account manager", "active": True,
            ENTERPRISE: {"employeeNumber": number, "department": "Sales"}}
    body.update(extra)
    return body


def create(scim, **values) -> dict:
    response = send(scim, "POST", "/Users", user_body(**values))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def assert_scim_error(response, status: int, scim_type: str | None = None):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/scim+json"
    body = response.get_json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    assert body.get("scimType") == scim_type
    return body


def people_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Person))


# --- authentication ------------------------------------------------------------------------------

def test_requests_without_a_valid_scim_token_are_refused(app, secret, api_as, client_as):
    anonymous = app.test_client(use_cookies=False)
    response = send(anonymous, "GET", "/Users")
    assert_scim_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")

    wrong = app.test_client(use_cookies=False)
    wrong.environ_base["HTTP_AUTHORIZATION"] = "Bearer itops_scim_not-a-real-token"
    assert_scim_error(send(wrong, "GET", "/Users"), 401)

    personal, _ = api_as("admin")  # a person's API token, even an administrator's, is not a SCIM token
    assert_scim_error(send(personal, "GET", "/Users"), 401)
    assert_scim_error(send(client_as("admin"), "POST", "/Users", user_body()), 401)  # nor a session

    scim_services.revoke_token("workday", by="test")
    db.session.commit()
    revoked = app.test_client(use_cookies=False)
    revoked.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    assert_scim_error(send(revoked, "GET", "/Users"), 401)
    assert people_count() == 0


def test_token_cli_prints_the_secret_once_and_revokes(app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["itops", "directory", "scim-token", "create", "successfactors"])
    assert created.exit_code == 0, created.output
    secret = created.output.strip().splitlines()[-1]
    assert secret.startswith("itops_scim_")
    assert scim_services.token_for(secret).name == "successfactors"
    assert runner.invoke(args=["itops", "directory", "scim-token", "create", "successfactors"]).exit_code == 1
    listed = runner.invoke(args=["itops", "directory", "scim-token", "list"])
    assert "successfactors" in listed.output and secret not in listed.output and "active" in listed.output
    assert runner.invoke(args=["itops", "directory", "scim-token", "revoke", "successfactors"]).exit_code == 0
    db.session.expire_all()
    assert scim_services.token_for(secret) is None


# --- discovery -----------------------------------------------------------------------------------

def test_discovery_documents(scim, scim_client):
    config = scim_client.provider.config
    assert config.patch.supported and config.etag.supported and config.filter.supported
    assert not config.bulk.supported
    assert {t.id for t in scim_client.provider.resource_types} == {"User", "Group"}

    schemas = send(scim, "GET", "/Schemas").get_json()
    assert {s["id"] for s in schemas["Resources"]} == {CORE, ENTERPRISE, ITOPS,
                                                        "urn:ietf:params:scim:schemas:core:2.0:Group"}
    one = send(scim, "GET", f"/Schemas/{ENTERPRISE}").get_json()
    assert [a["name"] for a in one["attributes"]] == ["employeeNumber", "department", "manager"]
    assert send(scim, "GET", "/ResourceTypes/User").get_json()["schemaExtensions"][0]["schema"] == ENTERPRISE
    assert_scim_error(send(scim, "GET", "/Schemas/urn:nope"), 404)
    assert_scim_error(send(scim, "GET", "/ResourceTypes/Printer"), 404)


def test_unknown_routes_and_methods_answer_scim_errors(scim):
    assert_scim_error(send(scim, "GET", "/Printers"), 404)
    assert_scim_error(send(scim, "POST", "/ServiceProviderConfig", {}), 405)


# --- creating ------------------------------------------------------------------------------------

def test_a_standard_client_creates_a_user_as_a_joiner(scim_client):
    request = User[EnterpriseUser](user_name="bjensen@example.com", external_id="wd-1001", active=True,
                                   name={"given_name": "Barbara", "family_name": "Jensen"},
                                   emails=[{"value": "bjensen@example.com", "type": "work", "primary": True}])
    request[EnterpriseUser] = EnterpriseUser(employee_number="1001", department="Sales")
    created = scim_client.create(request)

    assert created.id and created.user_name == "bjensen@example.com" and created.active
    assert created[EnterpriseUser].employee_number == "1001"
    assert created.meta.version.startswith('W/"') and created.meta.location.endswith(f"/Users/{created.id}")
    person = db.session.get(Person, int(created.id))
    assert person.state == PersonState.PENDING  # no directory configured: the account waits for run-due
    assert person.username == "bjensen" and person.external_id == "wd-1001"
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "scim.user_create")).one()
    assert audit.actor_label == "scim:workday"

    fetched = scim_client.query(User[EnterpriseUser], created.id)
    assert fetched.name.family_name == "Jensen" and fetched.emails[0].value == "bjensen@example.com"


def test_create_with_a_directory_makes_the_account_at_once(app, scim, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    db.session.commit()
    body = create(scim)
    person = db.session.get(Person, int(body["id"]))
    assert person.state == PersonState.ACTIVE and person.username == "jdoe"
    assert entry(hr, "jdoe")["employeeNumber"] == ["E1"]
    assert f"uid=jdoe,{hr.people_dn}".lower() in group_members(hr, "sales")
    assert body["groups"] == [{"value": "sales", "display": "sales", "$ref": f"http://localhost{BASE}/Groups/sales"}]
    assert body[ITOPS]["loginName"] == "jdoe" and body[ITOPS]["state"] == "active"


def test_a_future_start_date_waits(scim, hr):
    start = (TODAY + timedelta(days=10)).isoformat()
    body = create(scim, **{ITOPS: {"startDate": start, "location": "Berlin"}},
                  schemas=[CORE, ENTERPRISE, ITOPS])
    assert body[ITOPS]["startDate"] == start and body[ITOPS]["state"] == "pending" and body["active"] is True
    assert entry(hr, "jdoe") is None


@pytest.mark.parametrize("body, scim_type", [
    ("{not json", "invalidSyntax"),
    ("[]", "invalidSyntax"),
    (user_body(schemas=[CORE, "urn:example:custom"]), "invalidSyntax"),
    (user_body(schemas=[ENTERPRISE]), "invalidSyntax"),
    (user_body(favouriteColour="blue"), "invalidSyntax"),
    (user_body(name={"givenName": "A", "familyName": "B", "middle": "C"}), "invalidSyntax"),
    (user_body(emails={"value": "x@example.org"}), "invalidSyntax"),
    (user_body(**{ENTERPRISE: {"department": "Sales"}}), "invalidValue"),      # no employee number
    (user_body(name={"givenName": "A"}), "invalidValue"),
    (user_body(active="perhaps"), "invalidValue"),
    (user_body(emails=[{"value": "not-an-address", "type": "work"}]), "invalidValue"),
    (user_body(name={"givenName": "王", "familyName": "伟"}), "invalidValue"),  # no ASCII username
    (user_body(**{ENTERPRISE: {"employeeNumber": "E9", "manager": {"value": "999999"}}}), "invalidValue"),
    (user_body(**{ENTERPRISE: {"employeeNumber": "E9", "manager": {"value": "9999999999"}}}), "invalidValue"),
    (user_body(**{ENTERPRISE: {"employeeNumber": "E9\x00"}}), "invalidValue"),
    (user_body(user_name="nul\x00@example.org"), "invalidValue"),
    (user_body(**{ITOPS: {"startDate": "2026-02-30"}}, schemas=[CORE, ENTERPRISE, ITOPS]), "invalidValue"),
    (user_body(**{ITOPS: {"startDate": "2026-03-01", "endDate": "2026-02-01"}}, schemas=[CORE, ENTERPRISE, ITOPS]),
     "invalidValue"),
])
def test_bad_payloads_are_400_and_write_nothing(scim, body, scim_type):
    assert_scim_error(send(scim, "POST", "/Users", body), 400, scim_type)
    assert people_count() == 0


@pytest.mark.parametrize("clash", [
    {"user_name": "JDOE@example.org", "number": "E2"},                       # userName ignores case
    {"number": "E1", "user_name": "other@example.org"},                      # employeeNumber
    {"number": "E2", "user_name": "other@example.org", "externalId": "wd-E1"},
])
def test_duplicates_are_409_uniqueness(scim, clash):
    create(scim)
    number, user_name = clash.pop("number"), clash.pop("user_name")
    assert_scim_error(send(scim, "POST", "/Users", user_body(number, user_name, **clash)), 409, "uniqueness")
    assert people_count() == 1


# --- reading -------------------------------------------------------------------------------------

def test_unknown_ids_are_404(scim):
    for user_id in ("424242", "abc", "9" * 40, "9999999999"):
        assert_scim_error(send(scim, "GET", f"/Users/{user_id}"), 404)
        assert_scim_error(send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": []}), 404)
        assert_scim_error(send(scim, "DELETE", f"/Users/{user_id}"), 404)


@pytest.fixture
def five(scim):
    people = [("E1", "alice@example.org", "Alice", "Archer"), ("E2", "bob@example.org", "Bob", "Baker"),
              ("E3", "carol@example.org", "Carol", "Cooper"), ("E4", "dave@sub.example.org", "Dave", "Dyer"),
              ("E5", "erin@example.org", "Erin", "Evans")]
    return [create(scim, number=n, user_name=u, given=g, family=f) for n, u, g, f in people]


@pytest.mark.parametrize("expression, expected", [
    ('userName eq "ALICE@example.org"', ["E1"]),
    ('userName ne "alice@example.org"', ["E2", "E3", "E4", "E5"]),
    ('userName co "sub."', ["E4"]),
    ('userName sw "c"', ["E3"]),
    ('userName ew "ample.org" and name.givenName sw "B"', ["E2"]),
    ('emails.value eq "e5@example.org" or emails eq "e1@example.org"', ["E1", "E5"]),
    ('emails[type eq "work" and value co "e3"]', ["E3"]),
    ('externalId eq "wd-E2"', ["E2"]),
    ('name.familyName eq "dyer" or (name.givenName eq "Erin" and not (title pr))', ["E4"]),
    ('not (name.familyName sw "A" or name.familyName sw "B") and active eq true', ["E3", "E4", "E5"]),
    ('title pr and externalId pr', ["E1", "E2", "E3", "E4", "E5"]),
    (f'{ENTERPRISE}:employeeNumber eq "E3"', ["E3"]),
    ('meta.lastModified gt "2000-01-01T00:00:00Z" and meta.created le "2999-01-01T00:00:00Z"',
     ["E1", "E2", "E3", "E4", "E5"]),
    ('active eq false', []),
    ('id eq "99999999999999" or id gt "99999999999999"', []),
    ('meta.lastModified lt "2000-01-01T00:00:00"', []),
])
def test_filters(scim, five, expression, expected):
    found = send(scim, "GET", "/Users", query_string={"filter": expression})
    listing = found.get_json()
    assert found.status_code == 200 and listing["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert sorted(r[ENTERPRISE]["employeeNumber"] for r in listing["Resources"]) == expected
    assert listing["totalResults"] == len(expected)


@pytest.mark.parametrize("expression", [
    'userName eq', 'userName equals "x"', '(userName eq "x"', 'password eq "x"', 'active eq "yes"',
    'userName eq "x" and', 'emails[type eq "work"', 'userName eq "\\u0000"',
])
def test_bad_filters_are_400_invalid_filter(scim, expression):
    assert_scim_error(send(scim, "GET", "/Users", query_string={"filter": expression}), 400, "invalidFilter")


def test_paging_sorting_and_attributes(scim, scim_client, five):
    page = send(scim, "GET", "/Users", query_string={"startIndex": "2", "count": "2", "sortBy": "name.familyName",
                                                      "sortOrder": "descending"}).get_json()
    assert page["totalResults"] == 5 and page["itemsPerPage"] == 2 and page["startIndex"] == 2
    assert [r["name"]["familyName"] for r in page["Resources"]] == ["Dyer", "Cooper"]

    counted = send(scim, "GET", "/Users", query_string={"count": "0"}).get_json()
    assert counted["totalResults"] == 5 and counted["Resources"] == []
    start = send(scim, "GET", "/Users", query_string={"startIndex": "-3", "count": "1"}).get_json()
    assert start["startIndex"] == 1 and start["Resources"][0]["userName"] == "alice@example.org"
    assert_scim_error(send(scim, "GET", "/Users", query_string={"count": "many"}), 400, "invalidValue")
    assert_scim_error(send(scim, "GET", "/Users", query_string={"sortBy": "active"}), 400, "invalidValue")

    slim = send(scim, "GET", "/Users", query_string={"attributes": "userName", "count": "1"}).get_json()
    assert set(slim["Resources"][0]) == {"schemas", "id", "userName"}
    trimmed = send(scim, "GET", f"/Users/{five[0]['id']}", query_string={"excludedAttributes": "emails,groups"})
    assert "emails" not in trimmed.get_json() and "userName" in trimmed.get_json()

    response = scim_client.query(User[EnterpriseUser], query_parameters=SearchRequest(
        filter='userName sw "b"', start_index=1, count=10))
    assert response.total_results == 1 and response.resources[0].user_name == "bob@example.org"


# --- ETags ---------------------------------------------------------------------------------------

def test_etags(scim, five):
    user_id = five[0]["id"]
    fetched = send(scim, "GET", f"/Users/{user_id}")
    version = fetched.headers["ETag"]
    assert version.startswith('W/"') and version == fetched.get_json()["meta"]["version"]
    assert send(scim, "GET", f"/Users/{user_id}", **{"If-None-Match": version}).status_code == 304

    stale = 'W/"0000"'
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "nickName", "value": "Ali"}]}
    assert_scim_error(send(scim, "PATCH", f"/Users/{user_id}", patch, **{"If-Match": stale}), 412)
    assert_scim_error(send(scim, "PUT", f"/Users/{user_id}", user_body("E1", "alice@example.org"),
                           **{"If-Match": stale}), 412)
    assert_scim_error(send(scim, "DELETE", f"/Users/{user_id}", **{"If-Match": stale}), 412)

    changed = send(scim, "PATCH", f"/Users/{user_id}", patch, **{"If-Match": version})
    assert changed.status_code == 200 and changed.get_json()["nickName"] == "Ali"
    assert changed.headers["ETag"] != version
    assert send(scim, "GET", f"/Users/{user_id}", **{"If-None-Match": version}).status_code == 200


# --- PUT and PATCH -------------------------------------------------------------------------------

def test_put_replaces_core_attributes_and_keeps_unsent_extensions(scim, five):
    user_id = five[1]["id"]
    body = {"schemas": [CORE], "userName": "robert@example.org", "externalId": "wd-E2",
            "name": {"givenName": "Robert", "familyName": "Baker"}, "active": True}
    replaced = send(scim, "PUT", f"/Users/{user_id}", body)
    assert replaced.status_code == 200, replaced.get_json()
    result = replaced.get_json()
    assert result["userName"] == "robert@example.org" and result["name"]["givenName"] == "Robert"
    assert "emails" not in result  # core attributes not sent are cleared
    assert result["title"] == "Account manager"  # ... a title is a mover: without a directory it waits for run-due
    move = services.actions_of(db.session.get(Person, int(user_id)))[0]
    assert (move.kind, move.state, move.planned) == ("move", "pending", {"title": None})
    assert result[ENTERPRISE]["employeeNumber"] == "E2"      # the extension it did not send stays
    assert_scim_error(send(scim, "PUT", f"/Users/{user_id}", {**body, "userName": "carol@example.org"}), 409,
                      "uniqueness")
    assert_scim_error(send(scim, "PUT", f"/Users/{user_id}", {**body, "shoeSize": 9}), 400, "invalidSyntax")


def test_patch_in_azure_and_okta_shapes(scim, five):
    user_id = five[2]["id"]
    operations = [
        {"op": "Replace", "path": "name.givenName", "value": "Caroline"},
        {"op": "replace", "value": {"nickName": "Caz", "externalId": "wd-new"}},
        {"op": "Add", "path": 'emails[type eq "work"].value', "value": "caroline@example.org"},
        {"op": "Add", "path": f"{ITOPS}:location", "value": "Leeds"},
    ]
    patched = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": operations})
    assert patched.status_code == 200, patched.get_json()
    result = patched.get_json()
    assert result["name"]["givenName"] == "Caroline" and result["nickName"] == "Caz"
    assert result["externalId"] == "wd-new" and result["emails"][0]["value"] == "caroline@example.org"
    person = db.session.get(Person, int(user_id))
    assert (person.given_name, person.preferred_name, person.location) == ("Caroline", "Caz", "Leeds")


@pytest.mark.parametrize("operations, scim_type", [
    ([{"op": "remove"}], "noTarget"),
    ([{"op": "replace", "path": 'emails[type eq "home"].value', "value": "x@example.org"}], "noTarget"),
    ([{"op": "replace", "path": "shoeSize", "value": 9}], "invalidPath"),
    ([{"op": "replace", "path": "emails[type eq", "value": 9}], "invalidPath"),
    ([{"op": "replace", "path": "id", "value": "1"}], "mutability"),
    ([{"op": "replace", "path": "groups", "value": []}], "mutability"),
    ([{"op": "move", "path": "title", "value": "x"}], "invalidSyntax"),
    ([], "invalidSyntax"),
    ([{"op": "remove", "path": "userName"}], "invalidValue"),
    ([{"op": "replace", "path": "active", "value": "sometimes"}], "invalidValue"),
    ([{"op": "replace", "path": "title", "value": "Lead"},            # valid first, then a bad one:
      {"op": "replace", "path": "name.givenName", "value": "\x00"}], "invalidValue"),  # nothing kept
])
def test_bad_patches_are_400_and_change_nothing(scim, five, operations, scim_type):
    user_id = five[3]["id"]
    before = send(scim, "GET", f"/Users/{user_id}").get_json()
    response = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": operations})
    assert_scim_error(response, 400, scim_type)
    assert send(scim, "GET", f"/Users/{user_id}").get_json() == before


def test_patch_without_the_patchop_schema_is_invalid_syntax(scim, five):
    response = send(scim, "PATCH", f"/Users/{five[0]['id']}", {"Operations": [{"op": "remove", "path": "title"}]})
    assert_scim_error(response, 400, "invalidSyntax")


# --- joiner, mover, leaver against slapd ---------------------------------------------------------

def test_mover_leaver_restore_and_delete_through_scim(app, scim, scim_client, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales"], by="admin")
    services.save_group_mapping(department="Legal", title=None, groups=["legal"], by="admin")
    db.session.commit()
    manager = create(scim, number="M1", user_name="boss@example.org", given="Big", family="Boss")
    body = create(scim)
    user_id, dn = body["id"], f"uid=jdoe,{hr.people_dn}".lower()

    # Mover: a department and a manager, as scim2-client sends a PatchOp.
    moved = scim_client.modify(User[EnterpriseUser], user_id, PatchOp[User[EnterpriseUser]](operations=[
        PatchOperation(op="replace", path=f"{ENTERPRISE}:department", value="Legal"),
        PatchOperation(op="add", path=f"{ENTERPRISE}:manager", value={"value": manager["id"]})]))
    assert moved[EnterpriseUser].department == "Legal" and moved[EnterpriseUser].manager.value == manager["id"]
    assert dn in group_members(hr, "legal") and dn not in group_members(hr, "sales")
    assert entry(hr, "jdoe")["departmentNumber"] == ["Legal"]

    # Leaver: Azure AD's shape.
    left = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"}]})
    assert left.status_code == 200 and left.get_json()["active"] is False
    person = db.session.get(Person, int(user_id))
    assert person.state == PersonState.DISABLED and person.end_date == TODAY
    assert entry(hr, "jdoe")["dn"].lower().endswith(hr.disabled_dn.lower())
    assert dn not in group_members(hr, "legal")
    assert send(scim, "GET", "/Users", query_string={"filter": "active eq false"}).get_json()["totalResults"] == 1

    # Restore within the grace period: active true again.
    back = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "value": {"active": True}}]})
    assert back.status_code == 200 and back.get_json()["active"] is True
    assert db.session.get(Person, int(user_id)).state == PersonState.ACTIVE
    assert entry(hr, "jdoe")["dn"].lower() == dn

    # DELETE: the leaver flow from today, and the resource is gone for SCIM.
    assert send(scim, "DELETE", f"/Users/{user_id}").status_code == 204
    assert_scim_error(send(scim, "GET", f"/Users/{user_id}"), 404)
    assert db.session.get(Person, int(user_id)).state == PersonState.DISABLED
    assert send(scim, "GET", "/Users").get_json()["totalResults"] == 1
    actors = set(db.session.scalars(select(AuditEntry.actor_label).where(AuditEntry.object_id == user_id,
                                                                     AuditEntry.object_type == "person")))
    assert actors == {"scim:workday"}


def test_active_true_cancels_a_leaver_before_the_account_is_disabled(scim):
    user_id = create(scim)["id"]  # no directory: the person stays pending, so nothing is disabled yet
    assert send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": False}]}).get_json()["active"] is False
    person = db.session.get(Person, int(user_id))
    assert person.end_date == TODAY
    back = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": True}]})
    assert back.get_json()["active"] is True
    db.session.refresh(person)
    assert person.end_date is None


def test_a_leaving_date_through_the_itops_extension(scim):
    user_id = create(scim)["id"]
    end = (TODAY + timedelta(days=20)).isoformat()
    result = send(scim, "PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": f"{ITOPS}:endDate", "value": end}]}).get_json()
    assert result[ITOPS]["endDate"] == end and result["active"] is True
    put = send(scim, "PUT", f"/Users/{user_id}", user_body())  # a client that knows only core + enterprise
    assert put.get_json()[ITOPS]["endDate"] == end            # ... does not cancel HR's leaving date


# --- Groups --------------------------------------------------------------------------------------

def test_groups_are_listed_from_the_mappings_read_only(app, scim, scim_client, hr):
    services.save_group_mapping(department="Sales", title=None, groups=["sales", "staff"], by="admin")
    services.save_group_mapping(department="Legal", title=None, groups=["legal", "staff"], by="admin")
    db.session.commit()
    alice = create(scim, number="E1", user_name="alice@example.org", given="Alice", family="Archer")
    create(scim, number="E2", user_name="bob@example.org", given="Bob", family="Baker",
           **{ENTERPRISE: {"employeeNumber": "E2", "department": "Legal"}})

    listing = send(scim, "GET", "/Groups").get_json()
    assert [g["displayName"] for g in listing["Resources"]] == ["legal", "sales", "staff"]
    staff = send(scim, "GET", "/Groups/staff").get_json()
    assert len(staff["members"]) == 2
    sales = scim_client.query(Group, "sales")
    assert [m.value for m in sales.members] == [alice["id"]]
    found = send(scim, "GET", "/Groups", query_string={"filter": 'displayName sw "s"', "count": "1"}).get_json()
    assert found["totalResults"] == 2 and [g["id"] for g in found["Resources"]] == ["sales"]
    assert_scim_error(send(scim, "GET", "/Groups", query_string={"filter": "displayName eq"}), 400, "invalidFilter")
    assert_scim_error(send(scim, "GET", "/Groups/nope"), 404)
    assert_scim_error(send(scim, "POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                                                    "displayName": "x"}), 501)
    assert_scim_error(send(scim, "DELETE", "/Groups/sales"), 501)


# --- limits --------------------------------------------------------------------------------------

def test_rate_limit_answers_429_in_scim_form(app, scim):
    app.config["ITOPS_SCIM_RATE_LIMIT"] = "3 per minute"
    try:
        for _ in range(3):
            assert send(scim, "GET", "/ServiceProviderConfig").status_code == 200
        assert_scim_error(send(scim, "GET", "/ServiceProviderConfig"), 429)
    finally:
        del app.config["ITOPS_SCIM_RATE_LIMIT"]


def test_a_person_api_token_still_works_on_the_api(api_as):
    client, user = api_as("hr")
    assert client.get("/api/v1/me").json["username"] == user.username  # /api/ is untouched by the SCIM prefix
