"""IT staff's monitoring pages: the live dashboard, a device's health page with charts, and the poll
cycles. The dashboard's body refreshes itself (htmx polls /monitoring/board). Employees and HR see
none of it: the whole area is for IT staff and admins."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from itops.assets import services as assets_services
from itops.core.policy import require_area
from itops.monitoring import queries, services
from itops.monitoring.choices import CheckKind, Health

bp = Blueprint("monitoring", __name__, url_prefix="/monitoring")
ID = "int(min=1, max=2147483647)"


def _board_context() -> dict:
    filters = queries.BoardFilters(state=request.args.get("state") or None)
    page = queries.board_page(filters, cursor=request.args.get("cursor"))
    assets = {a.id: a for a in assets_services.get_assets([h.asset_id for h in page.items])}
    return {"page": page, "filters": filters, "assets": assets, "counts": queries.state_counts(),
            "states": list(Health), "cycle": next(iter(queries.recent_cycles(1)), None)}


@bp.get("/")
@require_area("monitoring")
def index():
    return render_template("monitoring/index.html", **_board_context())


@bp.get("/board")
@require_area("monitoring")
def board():
    """The dashboard's body alone: what htmx swaps in every few seconds."""
    return render_template("monitoring/_board.html", **_board_context())


@bp.get(f"/assets/<{ID}:asset_id>")
@require_area("monitoring")
def device(asset_id: int):
    asset = assets_services.get_asset(asset_id)
    checks = queries.checks_of(asset.id)
    interfaces = next((c.last_details.get("interfaces") for c in checks
                       if c.last_details and c.last_details.get("interfaces")), None)
    return render_template("monitoring/device.html", asset=asset, health=services.current_health(asset.id),
                           checks=checks, interfaces=interfaces, kinds=CheckKind, periods=list(queries.PERIODS))


@bp.get(f"/checks/<{ID}:check_id>/series")
@require_area("monitoring")
def series(check_id: int):
    check = services.get_check(check_id)
    return jsonify(queries.series(check.id, request.args.get("period", "24h")))


@bp.get("/cycles")
@require_area("monitoring")
def cycles():
    return render_template("monitoring/cycles.html", cycles=queries.recent_cycles(30))

