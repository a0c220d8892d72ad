"""SCIM 2.0 blueprint under /scim/v2 (RFC 7643, RFC 7644) for HR systems.

Authenticated by SCIM bearer tokens only (scim_services.token_for): the prefix is self-authenticated
in core/auth/request_auth.py, so no session cookie or CSRF token applies, and people's API tokens
are refused. Errors are SCIM error documents, including those the core renders (404 routes, 405,
413, 429, 500), which are rewritten on the way out.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import TooManyRequests

from itops.core.errors import DomainError, ValidationFailed
from itops.core.policy import public
from itops.directory import scim_schemas as schemas
from itops.directory import scim_services as services
from itops.directory.scim_filter import ScimError
from itops.extensions import limiter

bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
DEFAULT_RATE_LIMIT = "600 per minute"


def _rate_limit() -> str:
    return current_app.config.get("ITOPS_SCIM_RATE_LIMIT", DEFAULT_RATE_LIMIT)


bp.record_once(lambda state: limiter.limit(_rate_limit)(bp))


# --- plumbing ------------------------------------------------------------------------------------

def _base_url() -> str:
    return request.url_root.rstrip("/") + bp.url_prefix


def _scim(document, status: int = 200, *, headers: dict | None = None) -> Response:
    response = Response(json.dumps(document), status=status, mimetype=schemas.CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _resource(document: dict, status: int = 200) -> Response:
    meta = document.get("meta", {})
    headers = {"ETag": meta["version"]} if "version" in meta else {}
    if status == 201:
        headers["Location"] = meta["location"]
    return _scim(document, status, headers=headers)


def _selected(document: dict) -> dict:
    return schemas.select_attributes(document, request.args.get("attributes"),
                                     request.args.get("excludedAttributes"))


def _body():
    try:
        return json.loads(request.get_data(cache=False) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ScimError(400, "The request body is not valid JSON.", "invalidSyntax") from None


def _versions(header: str | None) -> set[str]:
    return {v.strip().removeprefix("W/") for v in (header or "").split(",") if v.strip()}


def _require_version(document: dict) -> None:
    """If-Match on PUT, PATCH and DELETE: 412 unless the resource is still at that version."""
    wanted = _versions(request.headers.get("If-Match"))
    if wanted and "*" not in wanted and document["meta"]["version"].removeprefix("W/") not in wanted:
        raise ScimError(412, "The resource has changed since that version (If-Match).")


def _fetched(document: dict) -> Response:
    """A GET's answer: 304 when If-None-Match names the current version."""
    if document["meta"]["version"].removeprefix("W/") in _versions(request.headers.get("If-None-Match")):
        return Response(status=304, headers={"ETag": document["meta"]["version"]})
    return _resource(_selected(document))


def _user_to_change(user_id: str):
    person = services.get_user(user_id)
    _require_version(services.represent(person, _base_url()))
    return person


@bp.before_request
def _authenticate():
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    token = services.token_for(secret.strip()) if scheme.lower() == "bearer" and secret.strip() else None
    if token is None:
        raise ScimError(401, "Send a SCIM token as 'Authorization: Bearer <token>' (people's API tokens are "
                             "not accepted here).")
    g.scim_token = token


@bp.errorhandler(ScimError)
def _scim_error(exc: ScimError):
    headers = {"WWW-Authenticate": 'Bearer realm="itops-scim"'} if exc.status == 401 else {}
    return _scim(schemas.error_document(exc.status, exc.detail, exc.scim_type), exc.status, headers=headers)


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):
    """The directory services' errors in SCIM's terms: SCIM has 400 invalidValue where they say 422."""
    if isinstance(exc, ValidationFailed):
        return _scim_error(ScimError(400, exc.detail, "invalidValue"))
    return _scim_error(ScimError(exc.status, exc.detail))


@bp.after_app_request
def _scim_errors_from_core(response: Response) -> Response:
    """Errors the core renders as problem+json (no such route, 405, 413, 429, 500, 503) in SCIM's shape."""
    if request.path.startswith("/scim/") and response.mimetype == "application/problem+json":
        problem = response.get_json(silent=True) or {}
        detail = problem.get("detail") or "The request failed."
        if response.status_code == 429:
            detail = TooManyRequests.description
        response.set_data(json.dumps(schemas.error_document(response.status_code, detail)))
        response.mimetype = schemas.CONTENT_TYPE
    return response


# --- discovery -----------------------------------------------------------------------------------

@bp.get("/ServiceProviderConfig")
@public  # the SCIM token is checked in _authenticate
def service_provider_config():
    return _scim(schemas.service_provider_config(_base_url()))


def _listed(documents: list[dict]) -> Response:
    return _scim(schemas.list_response(documents, total=len(documents), start_index=1))


def _one_of(documents: list[dict], wanted: str, what: str) -> Response:
    found = next((d for d in documents if d["id"].lower() == wanted.lower()), None)
    if found is None:
        raise ScimError(404, f"No {what} {wanted}.")
    return _scim(found)


@bp.get("/ResourceTypes")
@public
def resource_types():
    return _listed(schemas.resource_types(_base_url()))


@bp.get("/ResourceTypes/<name>")
@public
def resource_type(name):
    return _one_of(schemas.resource_types(_base_url()), name, "resource type")


@bp.get("/Schemas")
@public
def schema_list():
    return _listed(schemas.schema_documents(_base_url()))


@bp.get("/Schemas/<schema_id>")
@public
def schema(schema_id):
    return _one_of(schemas.schema_documents(_base_url()), schema_id, "schema")


# --- Users ---------------------------------------------------------------------------------------

@bp.get("/Users")
@public
def list_users():
    args = request.args
    page = services.user_page(_base_url(), filter_text=args.get("filter"), start_index=args.get("startIndex"),
                              count=args.get("count"), sort_by=args.get("sortBy"), sort_order=args.get("sortOrder"))
    return _scim(schemas.list_response([_selected(r) for r in page.resources], total=page.total,
                                       start_index=page.start_index))


@bp.post("/Users")
@public
def create_user():
    return _resource(services.create_user(_body(), token=g.scim_token, base_url=_base_url()), 201)


@bp.get("/Users/<user_id>")
@public
def get_user(user_id):
    return _fetched(services.represent(services.get_user(user_id), _base_url()))


@bp.put("/Users/<user_id>")
@public
def replace_user(user_id):
    person = _user_to_change(user_id)
    return _resource(services.replace_user(person, _body(), token=g.scim_token, base_url=_base_url()))


@bp.patch("/Users/<user_id>")
@public
def patch_user(user_id):
    person = _user_to_change(user_id)
    return _resource(services.patch_user(person, _body(), token=g.scim_token, base_url=_base_url()))


@bp.delete("/Users/<user_id>")
@public
def delete_user(user_id):
    services.delete_user(_user_to_change(user_id), token=g.scim_token)
    return Response(status=204)


# --- Groups (read-only: they follow the admins' group mappings) -----------------------------------

@bp.get("/Groups")
@public
def list_groups():
    args = request.args
    page = services.group_page(_base_url(), filter_text=args.get("filter"), start_index=args.get("startIndex"),
                               count=args.get("count"))
    return _scim(schemas.list_response([_selected(r) for r in page.resources], total=page.total,
                                       start_index=page.start_index))


@bp.get("/Groups/<group_id>")
@public
def get_group(group_id):
    return _fetched(services.get_group(group_id, _base_url()))


@bp.route("/Groups", methods=["POST"])
@bp.route("/Groups/<group_id>", methods=["PUT", "PATCH", "DELETE"])
@public
def change_group(group_id=None):
    raise ScimError(501, "Groups are read-only here: membership follows the department and title group "
                         "mappings that administrators manage in itops.")
