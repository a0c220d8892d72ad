"""SCIM resources as JSON (RFC 7643): the schemas itops serves, people to and from User resources,
groups, discovery documents, PATCH applied to a resource, attribute selection, ETags, messages.

Everything here is pure: it turns dicts into dicts (and a Person into a dict) and raises ScimError
on bad input. PUT and PATCH both end as "the resource as the client wants it", which
`person_values` reads into HR's fields; scim_services decides which directory flow that starts.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from itops.directory.scim_filter import (
    CORE_GROUP, CORE_USER, MAX_ROW_ID, And, AttrPath, Compare, PatchPath, ScimError, get_attribute, matches,
    parse_attr_path, parse_patch_path,
)

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ITOPS_USER = "urn:ietf:params:scim:schemas:extension:itops:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
SERVICE_PROVIDER_CONFIG = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
CONTENT_TYPE = "application/scim+json"
USER_EXTENSIONS = (ENTERPRISE_USER, ITOPS_USER)
MAX_PATCH_OPERATIONS = 100
MAX_RESULTS = 200
COMMON_ATTRIBUTES = frozenset({"schemas", "id", "externalid", "meta"})
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


# --- the schemas ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Attribute:
    """One attribute definition, as RFC 7643 §7 describes it; drives validation, PATCH and /Schemas."""
    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    mutability: str = "readWrite"
    case_exact: bool = False
    uniqueness: str = "none"
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    returned: str = "default"

    def sub(self, name: str) -> Attribute | None:
        return next((a for a in self.sub_attributes if a.name.lower() == name.lower()), None)

    def as_schema(self) -> dict:
        document = {"name": self.name, "type": self.type, "multiValued": self.multi_valued,
                    "description": self.description, "required": self.required, "caseExact": self.case_exact,
                    "mutability": self.mutability, "returned": self.returned, "uniqueness": self.uniqueness}
        if self.type == "reference":
            document["referenceTypes"] = ["User", "Group"]
        if self.sub_attributes:
            document["subAttributes"] = [a.as_schema() for a in self.sub_attributes]
        return document


def _member_attributes(kind: str) -> tuple[Attribute, ...]:
    return (Attribute("value", mutability="readOnly", description=f"The {kind}'s id."),
            Attribute("$ref", "reference", mutability="readOnly", description=f"The {kind}'s URI."),
            Attribute("display", mutability="readOnly", description=f"The {kind}'s name."))


@dataclass(frozen=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...]

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name.lower() == name.lower()), None)

    def as_document(self, base_url: str) -> dict:
        return {"schemas": [SCHEMA], "id": self.id, "name": self.name, "description": self.description,
                "attributes": [a.as_schema() for a in self.attributes],
                "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"}}


USER_SCHEMA = Schema(CORE_USER, "User", "A member of staff as HR knows them.", (
    Attribute("userName", required=True, uniqueness="server",
              description="The HR system's unique name for the person; itops derives its own login name."),
    Attribute("name", "complex", description="The person's name.", sub_attributes=(
        Attribute("formatted", mutability="readOnly", description="Given and family name."),
        Attribute("givenName", required=True, description="Given name."),
        Attribute("familyName", required=True, description="Family name."))),
    Attribute("displayName", mutability="readOnly", description="Preferred (or given) name and family name."),
    Attribute("nickName", description="The name the person prefers to be called (itops: preferred name)."),
    Attribute("title", description="Job title; a change is a mover."),
    Attribute("active", "boolean", description="false starts the leaver flow; true cancels it or restores "
                                               "a disabled account within the grace period."),
    Attribute("emails", "complex", multi_valued=True, description="The work email address.", sub_attributes=(
        Attribute("value", description="The address."),
        Attribute("type", description="work."),
        Attribute("primary", "boolean", description="true for the work address."))),
    Attribute("groups", "complex", multi_valued=True, mutability="readOnly",
              description="The directory groups the person's department and title map to.",
              sub_attributes=_member_attributes("group")),
))
ENTERPRISE_SCHEMA = Schema(ENTERPRISE_USER, "EnterpriseUser", "Enterprise user (RFC 7643 §4.3).", (
    Attribute("employeeNumber", required=True, uniqueness="server", case_exact=True,
              description="HR's employee number; required by itops."),
    Attribute("department", description="Department; a change is a mover."),
    Attribute("manager", "complex", description="The person's manager; a change is a mover.", sub_attributes=(
        Attribute("value", description="The manager's id."),
        Attribute("$ref", "reference", mutability="readOnly", description="The manager's URI."),
        Attribute("displayName", mutability="readOnly", description="The manager's name."))),
))
ITOPS_SCHEMA = Schema(ITOPS_USER, "ItopsUser", "What itops' HR records hold beyond the standard schemas.", (
    Attribute("startDate", description="First working day, YYYY-MM-DD (default: today); the account is "
                                       "created on that day."),
    Attribute("endDate", description="Last day, YYYY-MM-DD: sets a leaving date."),
    Attribute("location", description="Office or site."),
    Attribute("state", mutability="readOnly", description="pending, active, leaving, disabled or deleted."),
    Attribute("loginName", mutability="readOnly", description="The directory account's username."),
))
GROUP_SCHEMA = Schema(CORE_GROUP, "Group", "A directory group that itops keeps in step (read-only).", (
    Attribute("displayName", required=True, mutability="readOnly", description="The group's name (cn)."),
    Attribute("members", "complex", multi_valued=True, mutability="readOnly",
              description="The current staff whose department and title map to the group.",
              sub_attributes=_member_attributes("user")),
))
SCHEMAS = {s.id.lower(): s for s in (USER_SCHEMA, ENTERPRISE_SCHEMA, ITOPS_SCHEMA, GROUP_SCHEMA)}


def _schema_for(urn: str | None, base: Schema) -> Schema | None:
    if urn is None:
        return base
    if base is USER_SCHEMA and urn.lower() in (ENTERPRISE_USER.lower(), ITOPS_USER.lower()):
        return SCHEMAS[urn.lower()]
    return None


def _definition(path: AttrPath, base: Schema = USER_SCHEMA) -> tuple[Schema, Attribute, Attribute | None]:
    """The schema, attribute and sub-attribute a path names; invalidPath if there is none."""
    schema = _schema_for(path.urn, base)
    attribute = schema.attribute(path.attr) if schema else None
    sub = attribute.sub(path.sub) if attribute and path.sub else None
    if attribute is None or (path.sub and sub is None):
        raise ScimError(400, f"{path} is not an attribute of {base.name}.", "invalidPath")
    return schema, attribute, sub


# --- discovery -----------------------------------------------------------------------------------

def service_provider_config(base_url: str) -> dict:
    return {
        "schemas": [SERVICE_PROVIDER_CONFIG],
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "Bearer token", "primary": True,
            "description": "A SCIM token from `flask itops directory scim-token create NAME`, sent as "
                           "'Authorization: Bearer <token>'."}],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}/ServiceProviderConfig"},
    }


def resource_types(base_url: str) -> list[dict]:
    def describe(name: str, endpoint: str, schema: str, description: str, extensions=()):
        document = {"schemas": [RESOURCE_TYPE], "id": name, "name": name, "endpoint": endpoint,
                    "description": description, "schema": schema,
                    "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{name}"}}
        if extensions:
            document["schemaExtensions"] = [{"schema": urn, "required": False} for urn in extensions]
        return document

    return [describe("User", "/Users", CORE_USER, "Staff: creating one starts the joiner flow.", USER_EXTENSIONS),
            describe("Group", "/Groups", CORE_GROUP, "Directory groups from the group mappings (read-only).")]


def schema_documents(base_url: str) -> list[dict]:
    return [schema.as_document(base_url) for schema in SCHEMAS.values()]


def list_response(resources: list[dict], *, total: int, start_index: int) -> dict:
    return {"schemas": [LIST_RESPONSE], "totalResults": total, "itemsPerPage": len(resources),
            "startIndex": start_index, "Resources": resources}


def error_document(status: int, detail: str, scim_type: str | None = None) -> dict:
    document = {"schemas": [ERROR], "status": str(status), "detail": detail}
    if scim_type:
        document["scimType"] = scim_type
    return document


def etag(resource: dict) -> str:
    """A weak ETag over the whole representation: any visible change gives a new version."""
    visible = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(visible, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return f'W/"{digest}"'


def with_version(resource: dict) -> dict:
    resource["meta"]["version"] = etag(resource)
    return resource


# --- people as User resources --------------------------------------------------------------------

def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _compact(values: dict) -> dict:
    """SCIM treats null and unassigned alike: leave unassigned attributes out."""
    return {k: v for k, v in values.items() if v not in (None, "", [], {})}


@dataclass
class UserView:
    """What a User resource shows beyond the Person row (looked up by scim_services)."""
    user_name: str
    active: bool
    groups: list[str] = field(default_factory=list)


def user_resource(person, view: UserView, base_url: str) -> dict:
    manager = person.manager
    resource = _compact({
        "schemas": [CORE_USER, *USER_EXTENSIONS],
        "id": str(person.id),
        "externalId": person.external_id,
        "userName": view.user_name,
        "name": _compact({"formatted": f"{person.given_name} {person.family_name}",
                          "givenName": person.given_name, "familyName": person.family_name}),
        "displayName": person.display_name,
        "nickName": person.preferred_name,
        "title": person.title,
        "active": view.active,
        "emails": [{"value": person.email, "type": "work", "primary": True}] if person.email else None,
        "groups": [{"value": name, "display": name, "$ref": f"{base_url}/Groups/{name}"} for name in view.groups],
        ENTERPRISE_USER: _compact({
            "employeeNumber": person.employee_number,
            "department": person.department,
            "manager": {"value": str(manager.id), "$ref": f"{base_url}/Users/{manager.id}",
                        "displayName": manager.display_name} if manager else None}),
        ITOPS_USER: _compact({
            "startDate": person.start_date.isoformat() if person.start_date else None,
            "endDate": person.end_date.isoformat() if person.end_date else None,
            "location": person.location, "state": person.state, "loginName": person.username}),
    })
    resource["meta"] = {"resourceType": "User", "created": _iso(person.created_at),
                        "lastModified": _iso(person.updated_at or person.created_at),
                        "location": f"{base_url}/Users/{person.id}"}
    return with_version(resource)


def group_resource(name: str, members: list, base_url: str) -> dict:
    resource = {"schemas": [CORE_GROUP], "id": name, "displayName": name,
                "members": [{"value": str(p.id), "display": p.display_name, "$ref": f"{base_url}/Users/{p.id}"}
                            for p in members],
                "meta": {"resourceType": "Group", "location": f"{base_url}/Groups/{name}"}}
    return with_version(resource)


# --- request bodies ------------------------------------------------------------------------------

def check_user_body(body) -> dict:
    """A POST or PUT body: an object naming the User schema, with known schemas and attributes only."""
    if not isinstance(body, dict):
        raise invalid_syntax("The request body must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise invalid_syntax("'schemas' must list the resource's schema URNs.")
    known = {CORE_USER.lower(), *(u.lower() for u in USER_EXTENSIONS)}
    unknown = [s for s in schemas if s.lower() not in known]
    if unknown:
        raise invalid_syntax(f"Unknown schema {unknown[0]}: Users take {CORE_USER} and the extensions "
                             f"{', '.join(USER_EXTENSIONS)}.")
    if CORE_USER.lower() not in {s.lower() for s in schemas}:
        raise invalid_syntax(f"'schemas' must include {CORE_USER}.")
    for key, value in body.items():
        if key.lower() in COMMON_ATTRIBUTES:
            continue
        if key.lower() in known:
            if not isinstance(value, dict):
                raise invalid_syntax(f"{key} must be an object.")
            for name, item in value.items():
                _check_value(parse_attr_path(f"{key}:{name}", default_urn=None), item)
            continue
        if ":" in key:
            raise invalid_syntax(f"Unknown schema in {key}.")
        _check_value(AttrPath(None, key), value)
    return body


def _check_value(path: AttrPath, value) -> None:
    try:
        _, attribute, _ = _definition(path)
    except ScimError:
        raise invalid_syntax(f"Unknown attribute {path}.") from None
    if value is None:
        return
    items = value if attribute.multi_valued and isinstance(value, list) else [value]
    if attribute.multi_valued and not isinstance(value, list):
        raise invalid_syntax(f"{path} is multi-valued: send a list.")
    for item in items:
        if attribute.type == "complex":
            if not isinstance(item, dict):
                raise invalid_syntax(f"{path} must be an object.")
            for name in item:
                if attribute.sub(name) is None:
                    raise invalid_syntax(f"Unknown attribute {path}.{name}.")


def merged_for_put(current: dict, body: dict) -> dict:
    """The resource a PUT asks for. Read-only attributes keep their values (RFC 7644 §3.5.1), and an
    extension the client does not send is left as it is: a client that knows only the core schema
    must not clear the employee number and department it never saw."""
    wanted = {k: v for k, v in body.items() if k.lower() not in {"id", "meta"}}
    sent = {s.lower() for s in body.get("schemas", [])} | {k.lower() for k in body}
    for urn in USER_EXTENSIONS:
        if urn.lower() not in sent and urn in current:
            wanted[urn] = current[urn]
    return wanted


# --- reading HR's fields from a resource -----------------------------------------------------------

def _text(value, label: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_value(f"{label} must be a string.")
    if CONTROL_CHARACTERS.search(value):
        # Refused before any query: PostgreSQL rejects NUL outright, and no directory string may hold them.
        raise invalid_value(f"{label} contains a control character (such as NUL).")
    return value


def _boolean(value, label: str) -> bool:
    # Azure AD sends "True"/"False" as strings.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise invalid_value(f"{label} must be true or false.")
    return value


def _date(value, label: str) -> date | None:
    text = _text(value, label)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise invalid_value(f"{label} {text!r} is not a date (YYYY-MM-DD).") from None


def _work_email(emails) -> str | None:
    if not emails:
        return None
    if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
        raise invalid_value("emails must be a list of objects.")
    chosen = (next((e for e in emails if get_attribute(e, "primary") in (True, "true", "True")), None)
              or next((e for e in emails if str(get_attribute(e, "type") or "").lower() == "work"), None) or emails[0])
    return _text(get_attribute(chosen, "value"), "emails.value")


def _manager_id(manager) -> int | None:
    value = get_attribute(manager, "value") if isinstance(manager, dict) else manager
    if value in (None, ""):
        return None
    text = str(value)
    if not text.isdigit() or len(text) > 10 or int(text) > MAX_ROW_ID:
        raise invalid_value(f"The manager {value!r} is not a User id.")
    return int(text)


def person_values(resource: dict) -> dict:
    """HR's fields from a User resource (as a client wants it); missing required values are invalidValue."""
    name = get_attribute(resource, "name") or {}
    enterprise = get_attribute(resource, ENTERPRISE_USER) or {}
    extra = get_attribute(resource, ITOPS_USER) or {}
    if not isinstance(name, dict) or not isinstance(enterprise, dict) or not isinstance(extra, dict):
        raise invalid_value("name and the extensions must be objects.")
    active = get_attribute(resource, "active")
    values = {
        "user_name": _text(get_attribute(resource, "userName"), "userName"),
        "external_id": _text(get_attribute(resource, "externalId"), "externalId"),
        "given_name": _text(get_attribute(name, "givenName"), "name.givenName"),
        "family_name": _text(get_attribute(name, "familyName"), "name.familyName"),
        "preferred_name": _text(get_attribute(resource, "nickName"), "nickName"),
        "title": _text(get_attribute(resource, "title"), "title"),
        "email": _work_email(get_attribute(resource, "emails")),
        "employee_number": _text(get_attribute(enterprise, "employeeNumber"), "employeeNumber"),
        "department": _text(get_attribute(enterprise, "department"), "department"),
        "manager_id": _manager_id(get_attribute(enterprise, "manager")),
        "start_date": _date(get_attribute(extra, "startDate"), "startDate"),
        "end_date": _date(get_attribute(extra, "endDate"), "endDate"),
        "location": _text(get_attribute(extra, "location"), "location"),
        "active": True if active is None else _boolean(active, "active"),
    }
    for key, label in (("user_name", "userName"), ("employee_number", f"{ENTERPRISE_USER}:employeeNumber"),
                       ("given_name", "name.givenName"), ("family_name", "name.familyName")):
        if values[key] is None:
            raise invalid_value(f"{label} is required.")
    return values


# --- PATCH ---------------------------------------------------------------------------------------

def apply_patch(resource: dict, body) -> dict:
    """The resource after a PatchOp request (RFC 7644 §3.5.2), on a copy; the caller saves the result."""
    if not isinstance(body, dict):
        raise invalid_syntax("The request body must be a JSON object.")
    if PATCH_OP.lower() not in {str(s).lower() for s in body.get("schemas") or []}:
        raise invalid_syntax(f"A PATCH request's schemas must be [{PATCH_OP!r}].")
    operations = get_attribute(body, "Operations")
    if not isinstance(operations, list) or not operations:
        raise invalid_syntax("Operations must be a non-empty list.")
    if len(operations) > MAX_PATCH_OPERATIONS:
        raise invalid_syntax(f"At most {MAX_PATCH_OPERATIONS} operations per request.")
    patched = copy.deepcopy(resource)
    for operation in operations:
        if not isinstance(operation, dict):
            raise invalid_syntax("Each operation must be an object.")
        op = str(get_attribute(operation, "op") or "").lower()
        if op not in ("add", "replace", "remove"):
            raise invalid_syntax(f"Unknown op {get_attribute(operation, 'op')!r}: use add, replace or remove.")
        path, value = get_attribute(operation, "path"), get_attribute(operation, "value")
        if path is None:
            _apply_without_path(patched, op, value)
        elif not isinstance(path, str):
            raise ScimError(400, "path must be a string.", "invalidPath")
        else:
            _apply_at(patched, op, parse_patch_path(path), value)
    return patched


def _apply_without_path(resource: dict, op: str, value) -> None:
    if op == "remove":
        raise ScimError(400, "A remove operation needs a path.", "noTarget")
    if not isinstance(value, dict):
        raise invalid_syntax(f"An {op} without a path takes an object of attributes as its value.")
    for key, item in value.items():
        if key.lower() in (u.lower() for u in USER_EXTENSIONS) and isinstance(item, dict):
            for name, sub_value in item.items():
                _apply_at(resource, op, PatchPath(parse_attr_path(f"{key}:{name}", default_urn=None)), sub_value)
        elif key.lower() == "schemas":
            continue
        else:
            # Azure AD sends dotted keys such as "name.givenName" here.
            _apply_at(resource, op, parse_patch_path(key), item)


def _container(resource: dict, path: AttrPath, *, create: bool) -> dict | None:
    if path.urn is None:
        return resource
    for key, value in resource.items():
        if key.lower() == path.urn.lower():
            return value
    if not create:
        return None
    resource[SCHEMAS[path.urn.lower()].id] = {}
    return resource[SCHEMAS[path.urn.lower()].id]


def _pop(mapping: dict, name: str):
    for key in [k for k in mapping if k.lower() == name.lower()]:
        return mapping.pop(key)
    return None


def _coerce(attribute: Attribute, value, label: str):
    if attribute.type == "boolean" and value is not None:
        return _boolean(value, label)
    if attribute.name == "manager" and not isinstance(value, dict) and value is not None:
        return {"value": str(value)}  # Azure AD sends the manager's id alone
    return value


def _check_mutable(attribute: Attribute, sub: Attribute | None, path) -> None:
    if attribute.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
        raise ScimError(400, f"{path} is read-only.", "mutability")


def _apply_at(resource: dict, op: str, target: PatchPath, value) -> None:
    path = target.attr
    if path.urn is None and path.attr.lower() in ("id", "meta", "schemas"):
        raise ScimError(400, f"{path.attr} cannot be changed.", "mutability")
    if path.urn is None and path.attr.lower() == "externalid":
        attribute, sub = Attribute("externalId", case_exact=True), None
    else:
        _, attribute, sub = _definition(path)
    if target.sub is not None:
        sub = attribute.sub(target.sub)
        if sub is None:
            raise ScimError(400, f"{path}.{target.sub} is not an attribute.", "invalidPath")
    _check_mutable(attribute, sub, path)
    container = _container(resource, path, create=op != "remove")
    if container is None:
        return
    if target.value_filter is not None:
        if not attribute.multi_valued:
            raise ScimError(400, f"{path} is not multi-valued: it takes no value filter.", "invalidPath")
        _apply_filtered(container, op, attribute, target, value)
        return
    if op == "remove":
        _remove(container, attribute, path, value)
        return
    if path.sub is not None:
        holder = get_attribute(container, attribute.name)
        if not isinstance(holder, dict):
            _pop(container, attribute.name)
            holder = container[attribute.name] = {}
        _pop(holder, sub.name)
        holder[sub.name] = _coerce(sub, value, str(path))
        return
    value = _coerce(attribute, value, str(path))
    existing = _pop(container, attribute.name)
    if attribute.multi_valued:
        items = value if isinstance(value, list) else [value]
        if op == "add" and isinstance(existing, list):
            items = existing + [i for i in items if i not in existing]
        container[attribute.name] = items
    elif attribute.type == "complex" and isinstance(value, dict) and isinstance(existing, dict):
        container[attribute.name] = {**existing, **value}  # sub-attributes not sent stay (§3.5.2.3)
    else:
        container[attribute.name] = value


def _remove(container: dict, attribute: Attribute, path: AttrPath, value) -> None:
    if path.sub is not None:
        holder = get_attribute(container, attribute.name)
        if isinstance(holder, dict):
            _pop(holder, path.sub)
        elif isinstance(holder, list):
            for item in holder:
                _pop(item, path.sub)
        return
    existing = _pop(container, attribute.name)
    if attribute.multi_valued and isinstance(value, list) and isinstance(existing, list):
        # {"op": "remove", "path": "emails", "value": [{"value": "x"}]}: just those values
        unwanted = {str(get_attribute(v, "value")).lower() for v in value if isinstance(v, dict)}
        kept = [e for e in existing if str(get_attribute(e, "value")).lower() not in unwanted]
        if kept:
            container[attribute.name] = kept


def _seed_from_filter(node) -> dict | None:
    """`type eq "work"` -> {"type": "work"}: what an add through an unmatched value filter creates."""
    if isinstance(node, Compare) and node.op == "eq" and node.path.sub is None:
        return {node.path.attr: node.value}
    if isinstance(node, And):
        left, right = _seed_from_filter(node.left), _seed_from_filter(node.right)
        return {**left, **right} if left is not None and right is not None else None
    return None


def _apply_filtered(container: dict, op: str, attribute: Attribute, target: PatchPath, value) -> None:
    elements = get_attribute(container, attribute.name)
    elements = [e for e in elements if isinstance(e, dict)] if isinstance(elements, list) else []
    chosen = [e for e in elements if matches(target.value_filter, e)]
    sub = attribute.sub(target.sub) if target.sub else None
    if op == "remove":
        if sub is None:
            elements = [e for e in elements if e not in chosen]
        else:
            for element in chosen:
                _pop(element, sub.name)
    elif not chosen:
        seed = _seed_from_filter(target.value_filter)
        if op == "replace" or seed is None:
            raise ScimError(400, f"No value of {target.attr} matches the filter.", "noTarget")
        element = dict(seed)
        if sub is not None:
            element[sub.name] = _coerce(sub, value, target.sub)
        elif isinstance(value, dict):
            element.update(value)
        elements.append(element)
    else:
        for element in chosen:
            if sub is not None:
                _pop(element, sub.name)
                element[sub.name] = _coerce(sub, value, target.sub)
            elif isinstance(value, dict):
                if op == "replace":
                    element.clear()
                element.update(value)
            else:
                raise invalid_value(f"{target.attr}[...] takes an object as its value.")
    _pop(container, attribute.name)
    if elements:
        container[attribute.name] = elements


# --- attribute selection -------------------------------------------------------------------------

ALWAYS_RETURNED = ("schemas", "id")


def _split_paths(text: str | None) -> list[AttrPath]:
    if not text:
        return []
    paths = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part.lower() in (u.lower() for u in (*USER_EXTENSIONS,)):
            paths.append(AttrPath(part, "*"))
            continue
        try:
            paths.append(parse_attr_path(part))
        except ScimError:
            raise invalid_value(f"{part!r} is not an attribute path.") from None
    return paths


def select_attributes(resource: dict, attributes: str | None, excluded: str | None) -> dict:
    """`attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5); id and schemas are always returned."""
    wanted, unwanted = _split_paths(attributes), _split_paths(excluded)
    if wanted:
        chosen = {k: resource[k] for k in ALWAYS_RETURNED if k in resource}
        for path in wanted:
            _copy_path(resource, chosen, path)
        return chosen
    if unwanted:
        chosen = copy.deepcopy(resource)
        for path in unwanted:
            _drop_path(chosen, path)
        return chosen
    return resource


def _copy_path(source: dict, target: dict, path: AttrPath) -> None:
    holder = source
    if path.urn:
        holder = next((v for k, v in source.items() if k.lower() == path.urn.lower()), None)
        if not isinstance(holder, dict):
            return
        if path.attr == "*":
            target[next(k for k in source if k.lower() == path.urn.lower())] = holder
            return
        target = target.setdefault(next(k for k in source if k.lower() == path.urn.lower()), {})
    key = next((k for k in holder if k.lower() == path.attr.lower()), None)
    if key is None or key in ALWAYS_RETURNED:
        return
    value = holder[key]
    if path.sub is None:
        target[key] = value
    elif isinstance(value, dict):
        sub_key = next((k for k in value if k.lower() == path.sub.lower()), None)
        if sub_key is not None:
            target.setdefault(key, {})[sub_key] = value[sub_key]
    elif isinstance(value, list):
        target[key] = [{k: v for k, v in item.items() if k.lower() == path.sub.lower()} for item in value]


def _drop_path(resource: dict, path: AttrPath) -> None:
    holder = resource
    if path.urn:
        urn_key = next((k for k in resource if k.lower() == path.urn.lower()), None)
        if urn_key is None:
            return
        if path.attr == "*":
            del resource[urn_key]
            return
        holder = resource[urn_key]
    key = next((k for k in holder if k.lower() == path.attr.lower()), None)
    if key is None or key in ALWAYS_RETURNED:
        return
    if path.sub is None:
        del holder[key]
    elif isinstance(holder[key], dict):
        _pop(holder[key], path.sub)
    elif isinstance(holder[key], list):
        for item in holder[key]:
            _pop(item, path.sub)
