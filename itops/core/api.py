"""/api/v1/jobs: progress of long-running work, polled by the job page and by scripts."""
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from itops.core import jobs
from itops.core.policy import require_role

blp = Blueprint("jobs", __name__, url_prefix="/api/v1", description="Progress of long-running jobs")


class JobSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    title = fields.Str()
    state = fields.Str(metadata={"enum": [s.value for s in jobs.JobState]})
    total = fields.Int(allow_none=True)
    done = fields.Int()
    percent = fields.Int(allow_none=True)
    message = fields.Str(allow_none=True)
    result = fields.Dict(allow_none=True)
    error = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)


@blp.get("/jobs/<int:job_id>")
@blp.response(200, JobSchema)
@require_role()
def get_job(job_id):
    """One job's progress (its creator and administrators)."""
    return jobs.get_job_for(current_user, job_id)
