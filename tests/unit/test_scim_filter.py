"""SCIM filters and PATCH paths: the grammar, evaluation on JSON, the SQL they become, and PATCH on a resource."""
from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from itops.directory.models import Person
from itops.directory.scim_filter import (
    And, AttrPath, Compare, Not, Or, Present, ScimError, ValuePath, matches, parse_filter, parse_patch_path, to_sql,
)
from itops.directory.scim_schemas import ENTERPRISE_USER, apply_patch, select_attributes
from itops.directory.scim_services import user_columns

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER],
    "id": "7", "userName": "bjensen@example.com", "active": True,
    "name": {"givenName": "Barbara", "familyName": "Jensen"},
    "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True},
               {"value": "babs@home.example", "type": "home"}],
    ENTERPRISE_USER: {"employeeNumber": "E7", "department": "Sales", "manager": {"value": "3"}},
    "meta": {"resourceType": "User", "version": 'W/"1"'},
}


def path(name, sub=None, urn=None):
    return AttrPath(urn, name, sub)


def test_and_binds_tighter_than_or_and_keywords_ignore_case():
    node = parse_filter('userName eq "a" OR title sw "x" and emails PR')
    assert node == Or(Compare(path("userName"), "eq", "a"),
                      And(Compare(path("title"), "sw", "x"), Present(path("emails"))))


def test_not_parentheses_value_paths_and_literals():
    node = parse_filter('not (active eq false) and (emails[type eq "work" and value co "@example.com"])')
    assert node == And(Not(Compare(path("active"), "eq", False)),
                       ValuePath(path("emails"), And(Compare(path("type"), "eq", "work"),
                                                     Compare(path("value"), "co", "@example.com"))))
    assert parse_filter("meta.lastModified gt \"2026-01-01T00:00:00Z\"").path == path("meta", "lastModified")
    assert parse_filter('x eq "say \\"hi\\""').value == 'say "hi"'
    assert parse_filter("x eq 12").value == 12 and parse_filter("x eq null").value is None


def test_urn_qualified_paths_drop_the_core_schema_urn():
    enterprise = parse_filter(f'{ENTERPRISE_USER}:department eq "Sales"')
    assert enterprise.path == AttrPath(ENTERPRISE_USER, "department")
    core = parse_filter('urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "J"')
    assert core.path == path("name", "familyName")


@pytest.mark.parametrize("text", [
    "", "userName", 'userName eq', 'userName xx "a"', 'userName eq "a', 'userName eq a', '(userName eq "a"',
    'userName eq "a")', 'userName eq "a" and', 'not userName eq "a"', 'emails[type eq "work"', 'a eq "b" c',
    'userName eq "a" & title eq "b"', "(" * 40 + 'a eq "b"' + ")" * 40,
])
def test_bad_filters_are_invalid_filter_errors(text):
    with pytest.raises(ScimError) as caught:
        parse_filter(text)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidFilter"


def test_evaluation_on_json():
    assert matches(parse_filter('userName eq "BJENSEN@example.com"'), USER)  # caseExact false
    assert matches(parse_filter('emails[type eq "home" and value ew ".example"]'), USER)
    assert not matches(parse_filter('emails[type eq "other"]'), USER)
    assert matches(parse_filter(f'{ENTERPRISE_USER}:manager.value eq "3"'), USER)
    assert matches(parse_filter('name.givenName sw "Bar" and not (title pr)'), USER)
    assert matches(parse_filter("active eq true or id eq \"x\""), USER)
    assert not matches(parse_filter('userName ne "bjensen@example.com"'), USER)


def compiled(text, dialect=sqlite.dialect()):
    clause = to_sql(parse_filter(text), user_columns(date(2026, 1, 1)))
    return str(select(Person.id).where(clause).compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_translation_to_sql():
    sql = compiled('userName eq "BJensen" and emails.value co "50%_off" or externalId eq "X1"')
    assert "lower(coalesce(" in sql and "'bjensen'" in sql
    assert "LIKE '%50\\%\\_off%' ESCAPE '\\'" in sql
    assert "people.external_id = 'X1'" in sql  # externalId is case-exact
    assert "people.end_date > '2026-01-01'" in compiled("active eq true")
    assert "NOT" in compiled("active eq false")
    assert "people.updated_at >=" in compiled('meta.lastModified ge "2026-01-01T00:00:00Z"', postgresql.dialect())
    assert "people.email IS NOT NULL" in compiled('emails[type eq "work"]')
    assert "people.manager_id = 3" in compiled(f'{ENTERPRISE_USER}:manager.value eq "3"')
    assert compiled('id eq "abc"').endswith("WHERE 0 = 1") or "false" in compiled('id eq "abc"').lower()


@pytest.mark.parametrize("text", [
    'password eq "x"', 'active eq "yes"', 'active gt true', 'meta.lastModified co "2026"',
    'meta.lastModified gt "yesterday"', 'userName eq 5', 'userName gt null', 'id gt "abc"',
    'emails[type eq "work" and x[y eq 1]]',
])
def test_unsupported_attributes_and_types_are_invalid_filter(text):
    with pytest.raises(ScimError) as caught:
        compiled(text)
    assert caught.value.scim_type == "invalidFilter"


def test_patch_paths():
    assert parse_patch_path('emails[type eq "work"].value').sub == "value"
    target = parse_patch_path(f"{ENTERPRISE_USER}:manager")
    assert target.attr == AttrPath(ENTERPRISE_USER, "manager") and target.value_filter is None
    for bad in ('emails[type eq "work"', "emails..value", 'emails[type eq "work"] x', "", "name.givenName[x eq 1]"):
        with pytest.raises(ScimError) as caught:
            parse_patch_path(bad)
        assert caught.value.scim_type == "invalidPath"


def patched(*operations):
    return apply_patch(USER, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                              "Operations": list(operations)})


def test_patch_with_and_without_paths_in_azure_and_okta_shapes():
    result = patched({"op": "Replace", "path": "active", "value": "False"},
                     {"op": "replace", "value": {"name.familyName": "Smith", "title": "Boss",
                                                 ENTERPRISE_USER: {"department": "Legal"}}},
                     {"op": "Add", "path": f"{ENTERPRISE_USER}:manager", "value": "12"},
                     {"op": "replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"},
                     {"op": "remove", "path": 'emails[type eq "home"]'})
    assert result["active"] is False and result["title"] == "Boss"
    assert result["name"] == {"givenName": "Barbara", "familyName": "Smith"}
    assert result[ENTERPRISE_USER]["department"] == "Legal" and result[ENTERPRISE_USER]["manager"] == {"value": "12"}
    assert result["emails"] == [{"value": "b@example.com", "type": "work", "primary": True}]
    assert USER["name"]["familyName"] == "Jensen"  # the original is untouched

    added = patched({"op": "add", "path": 'emails[type eq "other"].value', "value": "o@example.com"},
                    {"op": "remove", "path": "name.givenName"}, {"op": "remove", "path": "title"})
    assert {"type": "other", "value": "o@example.com"} in added["emails"]
    assert added["name"] == {"familyName": "Jensen"}


@pytest.mark.parametrize("operation, scim_type", [
    ({"op": "remove"}, "noTarget"),
    ({"op": "replace", "path": 'emails[type eq "other"].value', "value": "x"}, "noTarget"),
    ({"op": "replace", "path": "nosuch", "value": "x"}, "invalidPath"),
    ({"op": "replace", "path": "name.middle", "value": "x"}, "invalidPath"),
    ({"op": "replace", "path": "id", "value": "8"}, "mutability"),
    ({"op": "add", "path": "groups", "value": [{"value": "g"}]}, "mutability"),
    ({"op": "copy", "path": "title", "value": "x"}, "invalidSyntax"),
    ({"op": "replace", "path": "active", "value": "maybe"}, "invalidValue"),
    ({"op": "add", "value": "not an object"}, "invalidSyntax"),
])
def test_bad_patch_operations(operation, scim_type):
    with pytest.raises(ScimError) as caught:
        patched(operation)
    assert caught.value.status == 400 and caught.value.scim_type == scim_type


def test_attribute_selection_keeps_id_and_schemas():
    chosen = select_attributes(USER, "userName,name.familyName,emails.value", None)
    assert chosen == {"schemas": USER["schemas"], "id": "7", "userName": "bjensen@example.com",
                      "name": {"familyName": "Jensen"},
                      "emails": [{"value": "bjensen@example.com"}, {"value": "babs@home.example"}]}
    trimmed = select_attributes(USER, None, f"emails,meta,{ENTERPRISE_USER}")
    assert "emails" not in trimmed and "meta" not in trimmed and ENTERPRISE_USER not in trimmed and trimmed["id"]
