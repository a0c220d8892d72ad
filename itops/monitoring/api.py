"""/api/v1/monitoring for IT staff and admins: health by state, checks per asset (add, pause, resume,
remove) and chart series. The same services and queries as the browser pages."""
from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint

from itops.assets import services as assets_services
from itops.core.policy import require_area
from itops.monitoring import queries, schemas, services

blp = Blueprint("monitoring_api", __name__, url_prefix="/api/v1/monitoring",
                description="Device health, checks and their history (IT staff and admins).")


@blp.get("/health")
@blp.arguments(schemas.HealthQuerySchema(), location="query")
@blp.response(200, schemas.HealthPageSchema)
@require_area("monitoring")
def health(args):
    """Monitored devices, the worst state first, a page at a time, with counts per state."""
    page = queries.board_page(queries.BoardFilters(state=args["state"]), cursor=args["cursor"], limit=args["limit"])
    return {"items": page.items, "next_cursor": page.next_cursor, "counts": queries.state_counts()}


@blp.get("/assets/<int:asset_id>/checks")
@blp.response(200, schemas.CheckSchema(many=True))
@require_area("monitoring")
def list_checks(asset_id: int):
    return queries.checks_of(assets_services.get_asset(asset_id).id)


@blp.post("/assets/<int:asset_id>/checks")
@blp.arguments(schemas.CheckCreateSchema())
@blp.response(201, schemas.CheckSchema)
@require_area("monitoring")
def add_check(body, asset_id: int):
    """Add a check; it runs at the next poll cycle. An SNMP community is stored encrypted and never shown."""
    return services.add_check(asset_id, body["kind"], params=body["params"], interval_seconds=body["interval_seconds"],
                              timeout_seconds=body["timeout_seconds"], by=current_user)


@blp.post("/checks/<int:check_id>/pause")
@blp.response(200, schemas.CheckSchema)
@require_area("monitoring")
def pause_check(check_id: int):
    return services.set_check_enabled(services.get_check(check_id), False, by=current_user)


@blp.post("/checks/<int:check_id>/resume")
@blp.response(200, schemas.CheckSchema)
@require_area("monitoring")
def resume_check(check_id: int):
    return services.set_check_enabled(services.get_check(check_id), True, by=current_user)


@blp.delete("/checks/<int:check_id>")
@blp.response(204)
@require_area("monitoring")
def delete_check(check_id: int):
    services.delete_check(services.get_check(check_id), by=current_user)


@blp.get("/checks/<int:check_id>/series")
@blp.arguments(schemas.SeriesQuerySchema(), location="query")
@blp.response(200, schemas.SeriesSchema)
@require_area("monitoring")
def series(args, check_id: int):
    return queries.series(services.get_check(check_id).id, args["period"])
