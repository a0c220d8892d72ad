"""How each request is authenticated: a session cookie (with CSRF) or an API bearer token.

Bearer tokens are accepted only on /api/ and bypass the session entirely, so a token request never
reads or writes a cookie and needs no CSRF token. Session requests must carry a CSRF token on
every state-changing method.
"""
from __future__ import annotations

import time

from flask import flash, g, redirect, request, session, url_for
from flask_login import current_user, logout_user

from itops.core.auth import services
from itops.core.errors import error_response, wants_json
from itops.extensions import csrf, login_manager

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Endpoints that check their own bearer tokens (the inventory agent's, SCIM's): no session, no personal token.
SELF_AUTHENTICATED_PREFIXES = ("/api/v1/agent/", "/scim/")
SESSION_STARTED_KEY = "_itops_auth_at"


def start_session() -> None:
    """Called right after login_user(): the session expires a fixed time after sign-in."""
    session.permanent = True
    session[SESSION_STARTED_KEY] = int(time.time())


def install_request_auth(app) -> None:
    login_manager.user_loader(services.load_session_user)
    login_manager.session_protection = "basic"
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def _unauthorized():
        if wants_json():
            return error_response(401, "Sign in, or send an API token as 'Authorization: Bearer <token>'.",
                                  headers={"WWW-Authenticate": 'Bearer realm="itops"'})
        flash(login_manager.login_message, "info")
        return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))

    @app.before_request
    def _authenticate():
        g.auth_method = None
        if request.path.startswith(SELF_AUTHENTICATED_PREFIXES):
            g.auth_method = "token"  # never a cookie, and no CSRF: there is no session to ride on
            return None
        header = request.headers.get("Authorization", "")
        if request.path.startswith("/api/") and header:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                return error_response(401, "The Authorization header must be 'Bearer <token>'.",
                                      headers={"WWW-Authenticate": 'Bearer realm="itops", error="invalid_request"'})
            user = services.user_for_token(secret.strip())
            if user is None:
                return error_response(401, "The API token is unknown, revoked, or belongs to a disabled account.",
                                      headers={"WWW-Authenticate": 'Bearer realm="itops", error="invalid_token"'})
            g._login_user = user  # what Flask-Login's current_user reads
            g.auth_method = "token"
            return None

        if current_user.is_authenticated:
            started = session.get(SESSION_STARTED_KEY, 0)
            if time.time() - started > app.config["ITOPS_SESSION_HOURS"] * 3600:
                logout_user()
                session.pop(SESSION_STARTED_KEY, None)
                if wants_json():
                    return error_response(401, "Your session has expired; sign in again.")
                flash("Your session has expired; please sign in again.", "warning")
                return redirect(url_for("auth.login", next=request.path))
            g.auth_method = "session"
        if request.method not in SAFE_METHODS:
            csrf.protect()
        return None

    @app.after_request
    def _no_cookie_for_token_calls(response):
        if g.get("auth_method") == "token":
            # A token call must not mint a session; drop anything Flask would have set.
            session.modified = False
        return response

