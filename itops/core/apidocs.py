"""The browsable API documentation page (Swagger UI, served from static/vendor, no CDN)."""
from flask import Blueprint, render_template

from itops.core.policy import public

bp = Blueprint("apidocs", __name__)


@bp.get("/api/v1/docs")
@public
def docs():
    return render_template("api/docs.html")
