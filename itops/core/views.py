"""Home page and job progress pages."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from itops.core import jobs
from itops.core.policy import AREA_ROLES, can_use, require_area, require_role

bp = Blueprint("core", __name__)


@bp.get("/")
@require_role()
def home():
    areas = [area for area in AREA_ROLES if can_use(current_user, area)]
    return render_template("core/home.html", areas=areas)


@bp.get("/jobs/<int:job_id>")
@require_role()
def job(job_id: int):
    return render_template("core/job.html", job=jobs.get_job_for(current_user, job_id))


def area_blueprint(area: str) -> Blueprint:
    """A domain's blueprint under /<area>/ with its landing page, guarded by the area's roles."""
    blueprint = Blueprint(area, f"itops.{area}.views", url_prefix=f"/{area}")

    @require_area(area)
    def index():
        return render_template(f"{area}/index.html")

    blueprint.add_url_rule("/", "index", index, methods=["GET"])
    return blueprint
