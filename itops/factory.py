"""Wiring: configuration, extensions, request hooks, blueprints, error handlers, CLI.

Nothing here touches the database or the network; migrations run by `flask db upgrade`.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from flask import Flask, request, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from itops.config import PROJECT_ROOT, load_config
from itops.extensions import api, csrf, db, limiter, login_manager

MAX_ROW_ID = 2**31 - 1

SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer",
                   "description": "A personal API token from your account page: 'Authorization: Bearer itops_...'"},
    "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "itops_session",
                      "description": "A browser session; state-changing calls also need the X-CSRFToken header."},
}


class RowIdConverter(IntegerConverter):
    """`int` with an upper bound of 2**31 - 1 (the smallest id column we use), unless a route sets one."""

    def __init__(self, url_map, fixed_digits: int = 0, min: int | None = None, max: int | None = MAX_ROW_ID,
                 signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def build_app(overrides: dict | None = None) -> Flask:
    app = Flask("itops", template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config.from_mapping(load_config())
    app.config["API_SPEC_OPTIONS"] = {
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "components": {"securitySchemes": SECURITY_SCHEMES},
        "info": {"description": "The itops JSON API. Errors are application/problem+json (RFC 7807)."},
    }
    if overrides:
        app.config.update(overrides)
    app.permanent_session_lifetime = timedelta(hours=app.config["ITOPS_SESSION_HOURS"])
    logging.getLogger("itops").setLevel(app.config["ITOPS_LOG_LEVEL"])

    # Every <int:...> in a URL is a row id: a number too big for the database is simply not found.
    app.url_map.converters["int"] = RowIdConverter
    _init_extensions(app)
    api.register_converter(RowIdConverter, lambda converter: {"type": "integer", "minimum": converter.min or 0,
                                                              "maximum": converter.max})
    _install_request_hooks(app)
    _register_blueprints(app)
    _register_template_helpers(app)

    from itops.cli import register_cli

    register_cli(app)
    return app


def _init_extensions(app: Flask) -> None:
    from itops.core.database import configure_sqlite, forget_rolled_back_writes

    db.init_app(app)
    with app.app_context():
        configure_sqlite(db.engine)
    forget_rolled_back_writes()
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    api.init_app(app)
    _import_models()


def _import_models() -> None:
    """Every model module, so that metadata (and Alembic autogenerate) sees every table."""
    import itops.core.audit  # noqa: F401
    import itops.core.auth.models  # noqa: F401
    import itops.core.jobs  # noqa: F401
    import itops.core.outbox  # noqa: F401
    import itops.assets.models  # noqa: F401
    import itops.tickets.models  # noqa: F401
    import itops.directory.models  # noqa: F401
    import itops.directory.scim_models  # noqa: F401
    import itops.monitoring.models  # noqa: F401


def _install_request_hooks(app: Flask) -> None:
    from itops.core.auth.request_auth import install_request_auth
    from itops.core.errors import register_error_handlers
    from itops.core.ops import install_metrics
    from itops.core.policy import install_policy_guard
    from itops.core.security import install_security_headers
    from itops.tickets.attachments import install_cleanup as install_attachment_cleanup

    install_metrics(app)
    install_request_auth(app)  # authentication first: the policy guard reads current_user
    install_policy_guard(app)
    install_security_headers(app)
    register_error_handlers(app)  # after api.init_app, so ours replace flask-smorest's handler
    install_attachment_cleanup()  # an upload whose transaction rolls back leaves no file behind
    _connect_domain_reactions()

    @app.after_request
    def _commit_at_request_boundary(response):
        """Services only add and flush; a successful request commits, a failed one rolls back."""
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response


def _connect_domain_reactions() -> None:
    """Cross-domain reactions to signals (connecting the same receiver again is a no-op)."""
    from itops.assets.services import asset_checked_in
    from itops.directory.reactions import on_asset_checked_in

    asset_checked_in.connect(on_asset_checked_in)


def _register_blueprints(app: Flask) -> None:
    from itops.assets.api import agent_blp, blp as assets_api
    from itops.assets.views import bp as assets_bp
    from itops.core.admin.views import bp as admin_bp
    from itops.core.api import blp as jobs_api
    from itops.core.apidocs import bp as apidocs_bp
    from itops.core.auth.api import blp as auth_api
    from itops.core.auth.views import bp as auth_bp
    from itops.core.ops import bp as ops_bp
    from itops.core.views import bp as core_bp
    from itops.directory.scim import bp as scim_bp
    from itops.directory.views import bp as directory_bp
    from itops.monitoring.api import blp as monitoring_api
    from itops.monitoring.views import bp as monitoring_bp
    from itops.tickets.views import bp as tickets_bp
    from itops.tickets.api import blp as tickets_api

    for blueprint in (core_bp, auth_bp, admin_bp, ops_bp, apidocs_bp,
                      assets_bp, tickets_bp, monitoring_bp, directory_bp, scim_bp):
        app.register_blueprint(blueprint)
    for api_blueprint in (auth_api, jobs_api, assets_api, agent_blp, tickets_api, monitoring_api):
        api.register_blueprint(api_blueprint)


def format_when(value) -> str:
    """A time as people read it, in UTC; ISO strings (as agents report them) too."""
    if not value:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _register_template_helpers(app: Flask) -> None:
    from itops.core.policy import AREA_ROLES, Role, can_use
    from itops.core.templating import install_fast_html_params, select_options

    install_fast_html_params()

    area_labels = {"assets": "Assets", "tickets": "Tickets", "monitoring": "Monitoring",
                   "directory": "Directory", "admin": "Admin"}

    @app.context_processor
    def _navigation():
        # `me` is the signed-in user itself, not the current_user proxy: base.html reads it on every page.
        me = current_user._get_current_object()
        if not me.is_authenticated:
            return {"nav_areas": [], "me": me}
        return {"nav_areas": [(area, area_labels[area]) for area in AREA_ROLES if can_use(me, area)], "me": me}

    fixed_urls: dict[tuple, str] = {}

    def fixed_url(endpoint: str, **values) -> str:
        """url_for for links whose arguments are constants (navigation, static files), built once per
        script root: every page carries a dozen, and url_for costs tens of microseconds each."""
        key = (request.script_root, endpoint, *sorted(values.items()))
        url = fixed_urls.get(key)
        if url is None:
            url = fixed_urls[key] = url_for(endpoint, **values)
        return url

    app.jinja_env.globals["Role"] = Role
    app.jinja_env.globals["fixed_url"] = fixed_url
    app.jinja_env.globals["select_options"] = select_options
    app.jinja_env.filters["when"] = format_when
