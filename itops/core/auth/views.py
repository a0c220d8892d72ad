"""Sign-in, sign-out and the signed-in user's own account page (API tokens)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from itops.core.auth import services
from itops.core.auth.forms import ConfirmForm, LoginForm, TokenForm
from itops.core.auth.request_auth import start_session
from itops.core.policy import public, require_role
from itops.extensions import limiter

bp = Blueprint("auth", __name__)

LOGIN_LIMIT_MESSAGE = "Too many failed sign-in attempts. Wait a minute before trying again."


def _login_limit() -> str:
    return current_app.config["ITOPS_LOGIN_RATE_LIMIT"]


def _login_username() -> str:
    return "login:" + services.normalise_username(request.form.get("username", ""))


def _failed(response) -> bool:
    return response.status_code in (401, 422)


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an attacker's absolute URL in ?next= must not be followed."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("core.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"], deduct_when=_failed, error_message=LOGIN_LIMIT_MESSAGE)
@limiter.limit(_login_limit, methods=["POST"], key_func=_login_username, deduct_when=_failed,
               error_message=LOGIN_LIMIT_MESSAGE)
@public
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("auth/login.html", form=form), 422
        try:
            user = services.authenticate(form.username.data, form.password.data)
        except services.AuthenticationFailed as exc:
            form.password.errors.append(exc.detail)
            return render_template("auth/login.html", form=form), 401
        login_user(user)
        start_session()
        flash(f"Welcome, {user.display_name}.", "success")
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form)


@bp.context_processor
def _sign_in_source():
    return {"directory_sign_in": current_app.config["ITOPS_LDAP"] is not None}


@bp.post("/logout")
@require_role()
def logout():
    logout_user()
    flash("You have signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/account")
@require_role()
def account():
    return render_template("auth/account.html", tokens=services.tokens_of(current_user), token_form=TokenForm(),
                           confirm=ConfirmForm(), new_secret=None)


@bp.post("/account/tokens")
@require_role()
def create_token():
    form = TokenForm()
    if not form.validate_on_submit():
        return render_template("auth/account.html", tokens=services.tokens_of(current_user), token_form=form,
                               confirm=ConfirmForm(), new_secret=None), 422
    issued = services.issue_token(current_user, form.name.data)
    # Rendered, not flashed: the flash would put the secret into the (signed, not encrypted) cookie.
    # A fresh, empty form: the name just used must not be offered again for a second token.
    page = render_template("auth/account.html", tokens=services.tokens_of(current_user),
                           token_form=TokenForm(formdata=None), confirm=ConfirmForm(), new_secret=issued.secret,
                           new_token=issued.token)
    # The secret is on this page once; keep it out of every cache and the browser's back/forward store.
    return page, 201, {"Cache-Control": "no-store"}


@bp.post("/account/tokens/<int:token_id>/revoke")
@require_role()
def revoke_token(token_id: int):
    token = services.get_token_of(current_user, token_id)
    services.revoke_token(token, by=current_user)
    flash(f"Token {token.name!r} revoked.", "success")
    return redirect(url_for("auth.account"))
