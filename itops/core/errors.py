"""Domain errors, and the one place that turns any error into problem+json or a friendly HTML page.

Services raise the errors below; routes never build error responses themselves. JSON clients
(/api/, /scim/, or Accept: application/json) get RFC 7807 problem documents; browsers get pages.
"""
from __future__ import annotations

from flask import current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: dict | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class ValidationFailed(DomainError):
    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"


FRIENDLY = {
    400: ("Bad request", "The request could not be understood."),
    401: ("Sign-in required", "Please sign in to continue."),
    403: ("Not allowed", "You do not have access to this page."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    409: ("Conflict", "The change conflicts with the current state."),
    413: ("Too large", "The request is larger than this server accepts."),
    422: ("Invalid input", "Some of what you sent is not valid."),
    429: ("Too many attempts", "Too many requests. Wait a minute and try again."),
    500: ("Something went wrong", "An unexpected error happened. It has been logged."),
    503: ("Unavailable", "A service itops depends on is unavailable. Try again shortly."),
}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/scim/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json", "application/problem+json"])
    return best in ("application/json", "application/problem+json")


def problem_response(status: int, detail: str, *, title: str | None = None, errors=None, headers=None):
    body = {
        "type": "about:blank",
        "title": title or FRIENDLY.get(status, ("Error", ""))[0],
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(status: int, detail: str | None, *, title: str | None = None, errors=None, headers=None):
    friendly_title, friendly_detail = FRIENDLY.get(status, ("Error", "Something went wrong."))
    detail = detail or friendly_detail
    if wants_json():
        return problem_response(status, detail, title=title or friendly_title, errors=errors, headers=headers)
    html = render_template("errors/error.html", status=status, title=title or friendly_title, detail=detail,
                           errors=errors)
    return html, status, headers or {}


def _http_detail(exc: HTTPException) -> tuple[str, dict | None]:
    """webargs/flask-smorest put field messages in exc.data; surface them as `errors`."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if exc.code == 422 and messages:
        return "The request body or parameters are invalid; see errors.", messages
    if exc.code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return f"The request body is larger than the {limit} bytes this server accepts.", None
    if exc.code == 400 and messages:
        return "The request could not be parsed; see errors.", messages
    default = type(exc).description
    description = exc.description if exc.description != default else None
    return description, None


def found(row, what: str):
    """`row` as looked up (e.g. db.session.get), or NotFound("No such <what>.") when there is none."""
    if row is None:
        raise NotFound(f"No such {what}.")
    return row


def errors_onto_form(form, exc: ValidationFailed, *, fallback: str | None = None) -> None:
    """A service's field messages shown on the form's fields of the same names (each message once);
    messages for a name the form lacks go on the `fallback` field, if one is given."""
    for name, messages in (exc.errors or {}).items():
        field = form._fields.get(name) or (form._fields.get(fallback) if fallback else None)
        if field is not None:
            field.errors = list(field.errors or []) + [m for m in messages if m not in (field.errors or [])]


def require_valid(form) -> None:
    """A posted form that must validate: otherwise 422 naming each field and its messages."""
    if not form.validate_on_submit():
        raise ValidationFailed("Check the form: " + "; ".join(f"{name}: {' '.join(errors)}"
                                                               for name, errors in form.errors.items()),
                               errors=form.errors)


def _is_busy_database(exc: Exception) -> bool:
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def register_error_handlers(app) -> None:
    @app.errorhandler(DomainError)
    def _domain_error(exc: DomainError):
        return error_response(exc.status, exc.detail, title=exc.title, errors=exc.errors)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        detail, errors = _http_detail(exc)
        headers = {}
        if exc.code == 401 and request.path.startswith("/api/"):
            headers["WWW-Authenticate"] = 'Bearer realm="itops"'
        if exc.code == 429:
            retry = exc.get_response().headers.get("Retry-After")
            if retry:
                headers["Retry-After"] = retry
        return error_response(exc.code or 500, detail, errors=errors, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        if _is_busy_database(exc):
            # SQLite's single writer was busy for the whole busy timeout: a moment later it will not be.
            app.logger.warning("database busy on %s %s; answered 503", request.method, request.path)
            return error_response(503, "The server is busy; try again in a few seconds.", title=Unavailable.title,
                                  headers={"Retry-After": "5"})
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, None)

    @app.errorhandler(InternalServerError)
    def _internal(exc):
        app.logger.error("internal error on %s %s: %s", request.method, request.path, exc.original_exception)
        return error_response(500, None)
