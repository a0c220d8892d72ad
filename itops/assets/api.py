"""/api/v1/assets (IT staff manage; employees read what they hold) and the inventory agent's endpoints."""
from __future__ import annotations

from flask import jsonify, request
from flask_login import current_user
from flask_smorest import Blueprint

from itops.assets import inventory, queries, schemas, services
from itops.core.policy import Role, public, require_area, require_role

blp = Blueprint("assets_api", __name__, url_prefix="/api/v1/assets",
                description="Assets: computers, phones and network devices, their lifecycle and history")
agent_blp = Blueprint("agent", __name__, url_prefix="/api/v1/agent",
                      description="The inventory agent (authenticated by enrollment and agent tokens)")


@blp.get("")
@blp.arguments(schemas.AssetListQuerySchema, location="query")
@blp.response(200, schemas.AssetPageSchema)
@require_area("assets")
def list_assets(args):
    """Assets matching the filters, a page at a time (employees: only what they hold)."""
    cursor, limit = args.pop("cursor"), args.pop("limit")
    filters = services.visible_to(current_user, queries.AssetFilters(**args))
    page = queries.asset_page(filters, cursor=cursor, limit=limit, shape=schemas.ASSET_ROW)
    return jsonify(schemas.dump_asset_page(page))  # a Response: flask-smorest skips its own, slower dump


@blp.post("")
@blp.arguments(schemas.AssetCreateSchema)
@blp.response(201, schemas.AssetDetailSchema)
@require_role(Role.IT_STAFF)
def create_asset(body):
    """Create an asset; leave out `tag` to get the next generated one."""
    return services.create_asset(body.pop("kind"), body, status=body.pop("status"), by=current_user)


@blp.get("/<int:asset_id>")
@blp.response(200, schemas.AssetDetailSchema)
@require_area("assets")
def get_asset(asset_id):
    """One asset, with what the agent reported and the statuses it may move to."""
    return services.get_asset_for(current_user, asset_id)


@blp.patch("/<int:asset_id>")
@blp.arguments(schemas.AssetFieldsSchema)
@blp.response(200, schemas.AssetDetailSchema)
@require_role(Role.IT_STAFF)
def update_asset(body, asset_id):
    """Change fields; kind, status and holder change through their own calls."""
    asset = services.get_asset(asset_id)
    services.update_asset(asset, body, by=current_user)
    return asset


@blp.post("/<int:asset_id>/retire")
@blp.arguments(schemas.StatusChangeSchema)
@blp.response(200, schemas.AssetDetailSchema)
@require_role(Role.IT_STAFF)
def retire_asset(body, asset_id):
    """Retire an asset (it must be checked in first)."""
    return services.retire(services.get_asset(asset_id), by=current_user, note=body["note"])


@blp.post("/<int:asset_id>/checkout")
@blp.arguments(schemas.CheckoutSchema)
@blp.response(200, schemas.AssetDetailSchema)
@require_role(Role.IT_STAFF)
def checkout_asset(body, asset_id):
    """Hand the asset to a person."""
    return services.checkout(services.get_asset(asset_id), services.resolve_holder(body["holder"]), by=current_user,
                             expected_return=body["expected_return"], condition=body["condition"])


@blp.post("/<int:asset_id>/checkin")
@blp.arguments(schemas.CheckinSchema)
@blp.response(200, schemas.AssetDetailSchema)
@require_role(Role.IT_STAFF)
def checkin_asset(body, asset_id):
    """Take the asset back from its holder."""
    return services.checkin(services.get_asset(asset_id), by=current_user, condition=body["condition"],
                            status=body["status"])


@blp.get("/<int:asset_id>/history")
@blp.response(200, schemas.EventSchema(many=True))
@require_area("assets")
def asset_history(asset_id):
    """What happened to the asset, newest first."""
    return services.history(services.get_asset_for(current_user, asset_id))


def _bearer() -> str:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise inventory.TokenRefused("Send the token as 'Authorization: Bearer <token>'.")
    return secret.strip()


def _report() -> dict:
    return inventory.check_report(inventory.read_body(request.get_data(cache=False),
                                                      request.headers.get("Content-Encoding")))


@agent_blp.post("/enroll")
@agent_blp.response(201, schemas.EnrollResponseSchema)
@agent_blp.doc(security=[{"bearerAuth": []}], description="Bearer: an enrollment token. Body: an inventory "
               "report (docs/agent-protocol.md), JSON, optionally gzip'd.")
@public  # authenticated by the enrollment token, not a session or a personal token
def enroll():
    """Register this machine and receive its agent token."""
    token = inventory.usable_enrollment_token(_bearer())  # the token first: no parsing for strangers
    asset, agent_token = inventory.enroll(token, _report())
    return {"asset_id": asset.id, "asset_tag": asset.tag, "agent_token": agent_token,
            "report_interval_seconds": inventory.REPORT_INTERVAL_SECONDS}


@agent_blp.post("/inventory")
@agent_blp.response(200, schemas.InventoryResponseSchema)
@agent_blp.doc(security=[{"bearerAuth": []}], description="Bearer: the machine's agent token. Body: an "
               "inventory report, JSON, optionally gzip'd.")
@public  # authenticated by the agent token, which can write only its own asset
def report_inventory():
    """Report this machine's inventory; changes since the last report become one history event."""
    asset = inventory.asset_for_agent_token(_bearer())
    changes = inventory.apply_report(asset, _report())
    return {"asset_id": asset.id, "asset_tag": asset.tag, "changes": len(changes),
            "report_interval_seconds": inventory.REPORT_INTERVAL_SECONDS}
