"""Roles and the one decorator that guards every view and API call.

Every endpoint must declare who may call it: `@require_role(...)` or `@public`. A before_request
hook (install_policy_guard) refuses any endpoint that declares neither, so a forgotten decorator
fails closed rather than open.
"""
from __future__ import annotations

import enum
from functools import wraps

from flask import abort, current_app, request
from flask_login import current_user


class Role(enum.StrEnum):
    EMPLOYEE = "employee"
    IT_STAFF = "it_staff"
    HR = "hr"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return {"employee": "Employee", "it_staff": "IT staff", "hr": "HR", "admin": "Administrator"}[self.value]


ALL_ROLES = frozenset(Role)

# What each area of the product is for; the navigation and the guards both read this table.
AREA_ROLES: dict[str, frozenset[Role]] = {
    "assets": frozenset({Role.EMPLOYEE, Role.IT_STAFF, Role.ADMIN}),
    "tickets": ALL_ROLES,
    "monitoring": frozenset({Role.IT_STAFF, Role.ADMIN}),
    "directory": frozenset({Role.HR, Role.ADMIN}),
    "admin": frozenset({Role.ADMIN}),
}

_POLICY_ATTR = "_itops_roles"
PUBLIC = "public"


def has_role(user, roles) -> bool:
    """Admins may do everything; anyone else needs one of `roles`."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.role == Role.ADMIN or user.role in roles


def can_use(user, area: str) -> bool:
    return has_role(user, AREA_ROLES[area])


def require_role(*roles: Role | str):
    """Allow signed-in users holding one of `roles` (admins always); 401 if not signed in, 403 otherwise."""
    allowed = frozenset(Role(r) for r in roles) or ALL_ROLES

    def decorate(view):
        @wraps(view)
        def guarded(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not has_role(current_user, allowed):
                abort(403, description="Your role does not allow this.")
            return view(*args, **kwargs)

        setattr(guarded, _POLICY_ATTR, allowed)
        return guarded

    return decorate


def require_area(area: str):
    return require_role(*AREA_ROLES[area])


def public(view):
    """Mark a view as callable without signing in (login page, health checks)."""
    setattr(view, _POLICY_ATTR, PUBLIC)
    return view


def declared_policy(view):
    """The roles a view declared, PUBLIC, or None when it declared nothing (wrappers are followed)."""
    while view is not None:
        policy = getattr(view, _POLICY_ATTR, None)
        if policy is not None:
            return policy
        view = getattr(view, "__wrapped__", None)
    return None


# Endpoints that extensions register; the OpenAPI document is public like most APIs' specs.
EXTENSION_PUBLIC_ENDPOINTS = frozenset({"static", "api-docs.openapi_json"})


def install_policy_guard(app) -> None:
    """Check every request against its endpoint's declared policy before any input is parsed.

    Runs after authentication; an endpoint that declares no policy is refused.
    """

    @app.before_request
    def _enforce_declared_policy():
        endpoint = request.endpoint
        if endpoint is None or endpoint in EXTENSION_PUBLIC_ENDPOINTS:
            return None
        policy = declared_policy(app.view_functions.get(endpoint))
        if policy is None:
            app.logger.error("endpoint %s has no access policy; refusing", endpoint)
            abort(403, description="This page has no access policy.")
        if policy == PUBLIC:
            return None
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()
        if not has_role(current_user, policy):
            abort(403, description="Your role does not allow this.")
        return None
